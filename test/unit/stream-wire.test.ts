/**
 * The pieces of the scale-out path that need no broker: names and
 * partitions on the wire, reading record lines, following a rotating log,
 * the cursor file, stream checks, lease assignment and the config section.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { configSchema } from '../../src/config/schema.ts';
import { auditStreamSpec, checkAuditStream, describedPartitions } from '../../src/stream/audit-stream.ts';
import { readCursor, writeCursor } from '../../src/stream/cursor-file.ts';
import { assignPartitions } from '../../src/stream/leases.ts';
import { lineFields } from '../../src/stream/line-fields.ts';
import { AuditLogTail, LogTailError } from '../../src/stream/log-tail.ts';
import { parseAckSubject } from '../../src/stream/puller.ts';
import { auditSubject, decisionKey, partitionFilter, partitionOf, subjectCovers } from '../../src/stream/subjects.ts';
import { testEvent, testIdentity } from '../helpers/nats.ts';

const root = mkdtempSync(path.join(tmpdir(), 'meshgate-stream-wire-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function writeLog(events: Parameters<AuditWriter['append']>[0][], segmentBytes = 1 << 20): Promise<string> {
  const dir = path.join(root, `log-${++n}`);
  const w = new AuditWriter({ dir, segmentBytes, fsyncInterval: 50, checkpointInterval: 1000, queueLimit: 100_000 });
  await w.open();
  for (const e of events) w.append(e);
  await w.close();
  return dir;
}

function natsSection(over: Record<string, unknown> = {}) {
  return configSchema.shape.audit.safeParse({ dir: '/a', sink: { nats: { servers: ['nats://127.0.0.1:4222'], service: 'orders', ...over } } });
}

describe('names on the wire', () => {
  test('partitionOf is FNV-1a mod partitions: stable, in range, and spreads identities evenly', () => {
    assert.equal(partitionOf('a', 2 ** 32 - 1), 0xe40c292c % (2 ** 32 - 1));
    assert.equal(partitionOf('spiffe://mesh.local/ns/a/sa/b', 16), partitionOf('spiffe://mesh.local/ns/a/sa/b', 16));
    const counts = new Array(16).fill(0) as number[];
    for (let i = 0; i < 16_000; i++) counts[partitionOf(`user-${i}`, 16)] = (counts[partitionOf(`user-${i}`, 16)] ?? 0) + 1;
    for (const c of counts) assert.ok(c > 800 && c < 1200, `partition share ${c}`);
    assert.throws(() => partitionOf('x', 0), TypeError);
  });

  test('subjects and consumer filters agree, and wildcard coverage is decided token by token', () => {
    const s = auditSubject('meshgate.audit', 'orders', '0123456789ab', 7);
    assert.equal(s, 'meshgate.audit.orders.0123456789ab.p7');
    assert.ok(subjectCovers(partitionFilter('meshgate.audit', 7), s));
    assert.ok(!subjectCovers(partitionFilter('meshgate.audit', 1), s));
    const table: [string, string, boolean][] = [
      ['meshgate.audit.>', 'meshgate.audit.*.*.*', true],
      ['>', 'meshgate.audit.*.*.*', true],
      ['meshgate.*.>', 'meshgate.audit.*.*.*', true],
      ['meshgate.audit.*', 'meshgate.audit.*.*.*', false],
      ['meshgate.audit.orders.>', 'meshgate.audit.*.*.*', false],
      ['meshgate.alerts.>', 'meshgate.audit.*.*.*', false],
      ['a.b', 'a.b', true],
      ['a.*', 'a.>', false],
    ];
    for (const [cover, pattern, want] of table) assert.equal(subjectCovers(cover, pattern), want, `${cover} covers ${pattern}`);
  });

  test('decision keys are valid KV keys for any value, and simulated decisions get their own key', () => {
    for (const v of ['spiffe://mesh.local/ns/a/sa/b', '2001:db8::1', 'ü ser/"x"', 'a'.repeat(300)]) {
      const k = decisionKey('spiffe', v, false);
      assert.match(k, /^[-/_=.a-zA-Z0-9]+$/);
      assert.equal(Buffer.from(k.slice('spiffe.'.length), 'base64url').toString('utf8'), v);
    }
    assert.equal(decisionKey('ip', '10.0.0.1', true), `${decisionKey('ip', '10.0.0.1', false)}.sim`);
  });

  test('a value too long for a subject token (a kilobytes-long token sub) is keyed by its hash: short, distinct, stable', () => {
    const long = (c: string): string => c.repeat(6000);
    const a = decisionKey('sub', long('a'), false);
    assert.ok(a.length < 100, `key length ${a.length}`);
    assert.match(a, /^sub\.h\.[-_a-zA-Z0-9]{43}$/);
    assert.equal(decisionKey('sub', long('a'), false), a);
    assert.notEqual(decisionKey('sub', long('b'), false), a);
    assert.equal(decisionKey('sub', long('a'), true), `${a}.sim`);
  });

  test('ack subjects of both JetStream formats are parsed; anything else is refused', () => {
    assert.deepEqual(parseAckSubject('$JS.ACK.AUDIT.c-p1.1.42.7.1700000000123456789.3'), { deliveries: 1, streamSeq: 42, deliverySeq: 7, storedAtMs: 1700000000123, pending: 3 });
    assert.deepEqual(parseAckSubject('$JS.ACK.hub.ACC123.AUDIT.c-p1.2.42.7.1700000000123456789.0.r4nd'), { deliveries: 2, streamSeq: 42, deliverySeq: 7, storedAtMs: 1700000000123, pending: 0 });
    assert.equal(parseAckSubject('_INBOX.abc.1'), undefined);
    assert.equal(parseAckSubject('$JS.ACK.AUDIT.c.x.y.z.w.v'), undefined);
  });
});

describe('record lines', () => {
  test('the fields read from the bytes equal those of a full JSON parse, for odd values too', async () => {
    const events = [
      testEvent(0, { who: 0 }), testEvent(1, { who: 1 }), testEvent(2, { who: 2 }),
      { ...testEvent(3, { who: 1 }), principal: { iss: 'i', sub: 'quo"te\\back\u2028ünï' } },
      { ...testEvent(4, { who: 0 }), peer: { spiffeId: '', fingerprint: 'ff'.repeat(32) }, principal: { iss: 'i', sub: 'after-empty-spiffe' } },
      { ...testEvent(5, { who: 2 }), type: 'tls_handshake' as const, peer: null, principal: null, method: null, path: null, route: null, tls: { error: 'peer_cert_untrusted' } },
      { ...testEvent(6, { who: 2 }), source: { ip: '2001:db8::7', port: 1 } },
      // Members in an unusual order (a future schema, another writer): found all the same.
      (({ peer, source, id, ...rest }) => ({ ...rest, principal: { sub: 'moved-sub', iss: 'i' }, peer, source, id }))(testEvent(7, { who: 0 })),
      (({ principal, source, ...rest }) => ({ ...rest, principal, source: { port: 2, ip: '10.9.9.9' } }))({ ...testEvent(8, { who: 1 }), peer: null }),
    ];
    const dir = await writeLog(events);
    const lines = readFileSync(path.join(dir, 'audit-000001.jsonl'), 'utf8').trimEnd().split('\n');
    let i = 0;
    for await (const r of readAuditEvents(dir)) {
      const f = lineFields(Buffer.from(lines[i++] as string));
      assert.ok(f);
      assert.equal(f.seq, r.seq);
      assert.equal(f.prev, r.prev);
      assert.equal(f.hash, r.hash);
      assert.equal(f.id, r.id);
      assert.equal(f.timeMs, Date.parse(r.time));
      assert.equal(f.identity, testIdentity(r));
    }
    assert.equal(i, events.length);
  });

  test('a line that is not a record yields undefined', () => {
    for (const bad of ['', 'garbage', '{"seq":1}', '[1,2,3]', '{"seq":"x","prev":"y","id":"z","hash":"h"}']) assert.equal(lineFields(Buffer.from(bad)), undefined);
  });
});

describe('following the audit log', () => {
  test('records come in seq order across segment rotations, from any seq, with or without a position hint', async () => {
    const dir = await writeLog(Array.from({ length: 600 }, (_, i) => testEvent(i)), 16 * 1024);
    const t = new AuditLogTail(dir);
    const all = [];
    for (let batch = await t.read(100); batch.length > 0; batch = await t.read(100)) all.push(...batch);
    assert.deepEqual(all.map((r) => r.fields.seq), Array.from({ length: 600 }, (_, i) => i + 1));
    assert.ok(all[599]?.next.segment && all[599].next.segment > 3, 'the log rotated several times');
    const mid = all[299]!;
    await t.seek(300, mid.next);
    assert.equal((await t.read(1))[0]?.fields.seq, 301);
    await t.seek(450);
    assert.equal((await t.read(1))[0]?.fields.seq, 451);
    await t.seek(450, { segment: 1, offset: 0 }); // a wrong hint is detected and ignored
    assert.equal((await t.read(1))[0]?.fields.seq, 451);
    await t.seek(10_000);
    assert.equal(t.lastSeq, 600, 'a seek past the end stops at the end');
    await t.close();
  });

  test('a partial last line is not read until it is complete', async () => {
    const dir = await writeLog([testEvent(0), testEvent(1)]);
    const file = path.join(dir, 'audit-000001.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, `${lines[0]}\n${(lines[1] as string).slice(0, 40)}`);
    const t = new AuditLogTail(dir);
    assert.equal((await t.read(10)).length, 1);
    appendFileSync(file, `${(lines[1] as string).slice(40)}\n`);
    assert.equal((await t.read(10))[0]?.fields.seq, 2);
    await t.close();
  });

  test('a partial record left in a segment the writer has moved on from stops the tail with LogTailError', async () => {
    const dir = await writeLog([testEvent(0), testEvent(1)]);
    const file = path.join(dir, 'audit-000001.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, `${lines[0]}\n${(lines[1] as string).slice(0, 40)}`);
    writeFileSync(path.join(dir, 'audit-000002.jsonl'), '');
    const t = new AuditLogTail(dir);
    await assert.rejects(t.read(10), (e: Error) => e instanceof LogTailError && /audit-000001\.jsonl at byte \d+: partial record/.test(e.message));
    await t.close();
  });

  test('a log that does not chain stops the tail with LogTailError', async () => {
    const dir = await writeLog([testEvent(0), testEvent(1), testEvent(2)]);
    const other = await writeLog([testEvent(3), testEvent(4), testEvent(5)]);
    const file = path.join(dir, 'audit-000001.jsonl');
    const mine = readFileSync(file, 'utf8').split('\n');
    const theirs = readFileSync(path.join(other, 'audit-000001.jsonl'), 'utf8').split('\n');
    writeFileSync(file, `${mine[0]}\n${theirs[1]}\n`); // seq 2 of another log: right seq, wrong chain
    const t = new AuditLogTail(dir);
    await assert.rejects(t.read(10), (e: Error) => e instanceof LogTailError && /does not chain/.test(e.message));
    await t.close();
  });
});

describe('cursor file', () => {
  test('round-trips, and a damaged cursor is an error naming the file, never a silent reset', async () => {
    const file = path.join(root, 'cursor.json');
    assert.equal(await readCursor(file), undefined);
    const c = { v: 1 as const, logId: '0123456789ab', seq: 42, id: 'x', next: { segment: 1, offset: 900 } };
    await writeCursor(file, c);
    assert.deepEqual(await readCursor(file), c);
    writeFileSync(file, '{"v":1,"seq":"x"');
    await assert.rejects(readCursor(file), new RegExp(file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    writeFileSync(file, '{"v":2}');
    await assert.rejects(readCursor(file), /not a shipper cursor/);
  });
});

describe('stream checks', () => {
  const spec = auditStreamSpec(natsSection().data?.sink?.nats as never);
  const good = { subjects: ['meshgate.audit.>'], storage: 'file', retention: 'limits', duplicate_window: 120e9, max_age: 7 * 86_400e9, max_bytes: -1, num_replicas: 1, description: 'meshgate audit events (partitions=16)' } as const;

  test('a stream made from the config passes', () => {
    assert.deepEqual(checkAuditStream(good as never, spec), { errors: [], warnings: [] });
    assert.equal(describedPartitions(good.description), 16);
  });

  test('each broken guarantee is an error; mere limit differences are warnings', () => {
    const cases: [Record<string, unknown>, RegExp, 'errors' | 'warnings'][] = [
      [{ subjects: ['meshgate.audit.orders.>'] }, /do not capture/, 'errors'],
      [{ storage: 'memory' }, /storage is memory/, 'errors'],
      [{ retention: 'workqueue' }, /retention is workqueue/, 'errors'],
      [{ duplicate_window: 5e9 }, /shorter than the shipper's retry horizon/, 'errors'],
      [{ description: 'partitions=4' }, /partitioned 4 ways/, 'errors'],
      [{ description: undefined }, /does not record a partition count/, 'warnings'],
      [{ max_age: 86_400e9 }, /max_age/, 'warnings'],
      [{ num_replicas: 3 }, /num_replicas/, 'warnings'],
    ];
    for (const [over, re, kind] of cases) {
      const r = checkAuditStream({ ...good, ...over } as never, spec);
      assert.equal(r[kind].length, 1, JSON.stringify(over));
      assert.match(r[kind][0] as string, re);
    }
  });
});

describe('partition assignment', () => {
  test('every partition has exactly one owner, and a member leaving moves only its own partitions', () => {
    const three = assignPartitions(['r1', 'r2', 'r3'], 64);
    const owned = [...three.values()].flat().sort((a, b) => a - b);
    assert.deepEqual(owned, Array.from({ length: 64 }, (_, i) => i));
    for (const ps of three.values()) assert.ok(ps.length > 10, 'roughly balanced');
    const two = assignPartitions(['r1', 'r3'], 64);
    for (const m of ['r1', 'r3']) for (const p of three.get(m) ?? []) assert.ok(two.get(m)?.includes(p), `${m} keeps p${p}`);
    assert.deepEqual(assignPartitions(['r3', 'r1'], 64), two, 'independent of list order');
    assert.equal(assignPartitions([], 8).size, 0);
  });
});

describe('audit.sink.nats config', () => {
  test('defaults fill in everything but servers and service', () => {
    const r = natsSection();
    assert.ok(r.success);
    const c = r.data.sink?.nats;
    assert.equal(c?.stream, 'MESHGATE_AUDIT');
    assert.equal(c?.subjectPrefix, 'meshgate.audit');
    assert.equal(c?.partitions, 16);
    assert.equal(c?.duplicateWindow, 120_000);
    assert.equal(c?.analyzer.leaseTtl, 10_000);
    assert.equal(c?.decisionsBucket, 'meshgate_decisions');
  });

  test('authentication is exactly one of the supported forms', () => {
    for (const auth of [{ user: 'u', password: 'p' }, { user: 'u', passwordFile: '/s' }, { token: 't' }, { tokenFile: '/t' }, { nkeySeedFile: '/n' }]) assert.ok(natsSection({ auth }).success, JSON.stringify(auth));
    for (const auth of [{ user: 'u' }, { token: 't', nkeySeedFile: '/n' }, { password: 'p' }]) assert.ok(!natsSection({ auth }).success, JSON.stringify(auth));
  });

  test('bad names, a lone TLS cert and wildcard prefixes are rejected', () => {
    assert.ok(!natsSection({ service: 'or.ders' }).success);
    assert.ok(!natsSection({ subjectPrefix: 'meshgate.*' }).success);
    assert.ok(!natsSection({ servers: ['http://x:1'] }).success);
    assert.ok(!natsSection({ tls: { cert: '/c' } }).success);
    assert.ok(natsSection({ tls: { ca: '/ca', cert: '/c', key: '/k' }, servers: ['tls://nats:4222'] }).success);
  });
});
