import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { GENESIS_HASH, openRecord, recordHash, scanRecord, sealRecord, segmentFileName, segmentNumber } from '../../src/audit/chain.ts';
import { checkHead } from '../../src/audit/head.ts';
import { RAW_PATH_MAX, auditRawPath, newEventId, type AuditEvent } from '../../src/audit/event.ts';

const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function event(over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    v: 1, type: 'request', id: newEventId(), time: '2026-01-01T00:00:00.000Z', requestId: 'req-1',
    source: { ip: '127.0.0.1', port: 5000 }, peer: null, principal: null, jti: null, tokenHash: null,
    method: 'GET', path: '/a', rawPath: null, route: 'r', decision: 'allow', reason: 'allowed', rule: null,
    policyVersion: null, status: 200, bytesIn: 0, bytesOut: 0, latencyMs: 0.5, shadow: null, ...over,
  };
}

test('event ids are UUIDv7 strings carrying the millisecond timestamp', () => {
  const t = Date.UTC(2026, 4, 1, 12, 0, 0, 123);
  const id = newEventId(t + 10_000_000); // ahead of any id made so far in this process
  assert.match(id, UUID7);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), t + 10_000_000);
});

test('event ids made in the same millisecond are unique and sort in creation order', () => {
  const t = Date.now() + 20_000_000;
  const ids = Array.from({ length: 10_000 }, () => newEventId(t));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  for (const id of ids) assert.match(id, UUID7);
});

test('event ids keep increasing when the clock goes backwards', () => {
  const t = Date.now() + 30_000_000;
  const a = newEventId(t);
  const b = newEventId(t - 5000);
  assert.ok(b > a, `${b} should sort after ${a}`);
});

test('rawPath is omitted when equal to the canonical path and truncated to 2048 characters', () => {
  assert.equal(auditRawPath('/a/b', '/a/b'), null);
  assert.equal(auditRawPath('/a//b', '/a/b'), '/a//b');
  const long = `/${'x'.repeat(5000)}`;
  assert.equal(auditRawPath(long, '/x')?.length, RAW_PATH_MAX);
});

test('a sealed record hashes prev, a newline and the JSON text without the hash member', () => {
  const ev = event();
  const { line, hash } = sealRecord(1, GENESIS_HASH, ev);
  assert.ok(line.endsWith('\n'));
  const text = line.slice(0, -1);
  const parsed = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed).slice(0, 2), ['seq', 'prev']);
  assert.equal(Object.keys(parsed).at(-1), 'hash');
  assert.equal(parsed['hash'], hash);
  // Independent computation from the documented definition.
  const body = JSON.stringify({ seq: 1, prev: GENESIS_HASH, ...ev });
  assert.equal(hash, createHash('sha256').update(`${GENESIS_HASH}\n${body}`).digest('hex'));
  const opened = openRecord(text);
  assert.ok(opened.ok);
  assert.equal(opened.body, body);
  assert.equal(recordHash(opened.prev, opened.body), opened.hash);
});

test('an event cannot override the chain fields it is sealed with', () => {
  const sneaky = { ...event(), seq: 99, prev: 'f'.repeat(64), hash: 'e'.repeat(64) } as unknown as AuditEvent;
  const { line, hash } = sealRecord(3, GENESIS_HASH, sneaky);
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.equal(parsed['seq'], 3);
  assert.equal(parsed['prev'], GENESIS_HASH);
  assert.equal(parsed['hash'], hash);
  assert.equal(line.match(/"hash"/g)?.length, 1);
});

test('lines that are not records are rejected with a reason', () => {
  const { line } = sealRecord(1, GENESIS_HASH, event());
  const good = line.slice(0, -1);
  const cases: [string, RegExp][] = [
    ['', /hash/],
    ['garbage', /hash/],
    [good.replace(/"hash":"[0-9a-f]+"/, '"hash":"XYZ"'), /hash/],
    [good.replace('{"seq":1', '["seq",1').replace(/}$/, ']'), /hash|JSON/],
    [good.replace('"seq":1', '"seq":0'), /seq/],
    [good.replace('"seq":1', '"seq":"1"'), /seq/],
    [good.replace(`"prev":"${GENESIS_HASH}"`, '"prev":"nope"'), /prev/],
    [good.replace('{"seq"', '{{"seq"'), /JSON/],
  ];
  for (const [text, reason] of cases) {
    const r = openRecord(text);
    assert.equal(r.ok, false, text.slice(0, 40));
    if (!r.ok) assert.match(r.reason, reason);
  }
});

test('segment names sort by number and HEAD checkpoints are validated', () => {
  assert.equal(segmentFileName(1), 'audit-000001.jsonl');
  assert.equal(segmentFileName(1234567), 'audit-1234567.jsonl');
  assert.equal(segmentNumber('audit-000042.jsonl'), 42);
  assert.equal(segmentNumber('audit-000042.jsonl.torn-2026'), undefined);
  assert.equal(segmentNumber('HEAD.json'), undefined);
  assert.deepEqual(checkHead({ seq: 1, hash: 'a'.repeat(64), segment: 'audit-000001.jsonl', time: 't' }), { seq: 1, hash: 'a'.repeat(64), segment: 'audit-000001.jsonl', time: 't' });
  assert.match(checkHead({ seq: -1, hash: 'a'.repeat(64), segment: 'audit-000001.jsonl', time: 't' }) as string, /seq/);
  assert.match(checkHead({ seq: 1, hash: 'A'.repeat(64), segment: 'audit-000001.jsonl', time: 't' }) as string, /hash/);
  assert.match(checkHead({ seq: 1, hash: 'a'.repeat(64), segment: '../x', time: 't' }) as string, /segment/);
  assert.match(checkHead(null) as string, /object/);
});

test('the positional scan used by verify reads the same chain fields as a full parse and rejects other layouts', () => {
  const { line } = sealRecord(42, 'c'.repeat(64), event());
  const text = line.slice(0, -1);
  const full = openRecord(text);
  const fast = scanRecord(text);
  assert.ok(full.ok && fast.ok);
  assert.deepEqual({ seq: fast.seq, prev: fast.prev, hash: fast.hash, body: fast.body }, { seq: full.seq, prev: full.prev, hash: full.hash, body: full.body });
  const reordered = text.replace(`{"seq":42,"prev":"${'c'.repeat(64)}",`, `{"prev":"${'c'.repeat(64)}","seq":42,`);
  assert.equal(openRecord(reordered).ok, true);
  assert.equal(scanRecord(reordered).ok, false);
  for (const bad of [text.replace('"seq":42', '"seq":042'), text.replace('"seq":42', '"seq":0'), text.replace('"seq":42', '"seq":99999999999999999'), 'x', text.slice(0, -2)]) {
    assert.equal(scanRecord(bad).ok, false, bad.slice(0, 30));
  }
});
