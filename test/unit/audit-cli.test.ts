import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openRecord, sealRecord } from '../../src/audit/chain.ts';
import { newEventId, type AuditEvent } from '../../src/audit/event.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function event(i: number): AuditEvent {
  return {
    v: 1, type: 'request', id: newEventId(), time: new Date(Date.UTC(2026, 0, 1) + i).toISOString(), requestId: `req-${i}`,
    source: { ip: '10.0.0.1', port: 40000 + i }, peer: null, principal: { iss: 'https://issuer', sub: 'alice' }, jti: `j-${i}`,
    tokenHash: 'aGFzaA', method: 'POST', path: `/pay/${i}`, rawPath: null, route: 'pay', decision: 'allow', reason: 'allowed',
    rule: 'p, alice, /pay/*, POST', policyVersion: 'v1', status: 201, bytesIn: 50, bytesOut: 10, latencyMs: 3, shadow: null,
  };
}

async function makeLog(t: { after: (fn: () => void) => void }): Promise<{ root: string; dir: string }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-audit-cli-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'audit');
  const w = new AuditWriter({ dir, segmentBytes: 4096, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  for (let i = 0; i < 20; i++) w.append(event(i));
  await w.close();
  return { root, dir };
}

async function run(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const io: CliIO = { stdout, stderr, env: {}, cwd };
  const code = await main(argv, io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

const SEG2 = 'audit-000002.jsonl';
const read = (dir: string, seg = SEG2): string[] => fs.readFileSync(path.join(dir, seg), 'utf8').split('\n').slice(0, -1);
const write = (dir: string, ls: string[], seg = SEG2): void => fs.writeFileSync(path.join(dir, seg), `${ls.join('\n')}\n`);
const lastSeg = (dir: string): string => fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort().at(-1) as string;

test('audit verify exits 0 on an intact log and prints records, segments and the chain head', async (t) => {
  const { root, dir } = await makeLog(t);
  const r = await run(['audit', 'verify', 'audit'], root);
  assert.equal(r.code, 0, r.stderr);
  const head = JSON.parse(fs.readFileSync(path.join(dir, 'HEAD.json'), 'utf8')) as { hash: string };
  assert.match(r.stdout, /^ok: 20 records in \d+ segments, chain head [0-9a-f]{16}\n$/);
  assert.ok(r.stdout.includes(head.hash.slice(0, 16)));
});

const TAMPERS: { name: string; kind: string; line: number; seg?: (dir: string) => string; tamper: (dir: string) => void }[] = [
  { name: 'an edited field', kind: 'modified', line: 2, tamper: (d) => { const ls = read(d); ls[1] = (ls[1] as string).replace('"alice"', '"mallory"'); write(d, ls); } },
  { name: 'a deleted line', kind: 'deleted', line: 3, tamper: (d) => { const ls = read(d); ls.splice(2, 1); write(d, ls); } },
  { name: 'two swapped lines', kind: 'reordered', line: 1, tamper: (d) => { const ls = read(d); [ls[0], ls[1]] = [ls[1] as string, ls[0] as string]; write(d, ls); } },
  {
    name: 'an inserted forged line with a recomputed hash', kind: 'inserted', line: 4,
    tamper: (d) => {
      const ls = read(d);
      const prev = openRecord(ls[2] as string);
      assert.ok(prev.ok);
      ls.splice(3, 0, sealRecord(prev.seq + 1, prev.hash, event(99)).line.trimEnd());
      write(d, ls);
    },
  },
  {
    name: 'a truncated tail', kind: 'truncated', line: 0, seg: lastSeg,
    tamper: (d) => { const s = lastSeg(d); const ls = read(d, s); write(d, ls.slice(0, -1), s); },
  },
];

for (const c of TAMPERS) {
  test(`audit verify exits 1 on ${c.name} and names the ${c.kind} record's segment and line`, async (t) => {
    const { root, dir } = await makeLog(t);
    const seg = c.seg ? c.seg(dir) : SEG2;
    const expectedLine = c.kind === 'truncated' ? read(dir, seg).length : c.line;
    c.tamper(dir);
    const r = await run(['audit', 'verify', dir], root);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^FAILED: ${c.kind} at ${seg.replace('.', '\\.')}:${expectedLine} \\(seq \\d+\\): `));
    const j = await run(['audit', 'verify', dir, '--json'], root);
    assert.equal(j.code, 1);
    const parsed = JSON.parse(j.stdout) as { ok: boolean; problem: { kind: string; segment: string; line: number } };
    assert.deepEqual({ ok: parsed.ok, kind: parsed.problem.kind, segment: parsed.problem.segment, line: parsed.problem.line }, { ok: false, kind: c.kind, segment: seg, line: expectedLine });
  });
}

test('audit verify --json on an intact log prints the full result', async (t) => {
  const { root } = await makeLog(t);
  const r = await run(['audit', 'verify', '--json', 'audit'], root);
  assert.equal(r.code, 0);
  const j = JSON.parse(r.stdout) as { ok: boolean; records: number; lastSeq: number; head: { seq: number } };
  assert.deepEqual({ ok: j.ok, records: j.records, lastSeq: j.lastSeq, head: j.head.seq }, { ok: true, records: 20, lastSeq: 20, head: 20 });
});

test('audit verify --anchor checks against a checkpoint kept outside the dir', async (t) => {
  const { root, dir } = await makeLog(t);
  fs.copyFileSync(path.join(dir, 'HEAD.json'), path.join(root, 'anchor.json'));
  const ok = await run(['audit', 'verify', 'audit', '--anchor', 'anchor.json'], root);
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /anchored at seq 20/);
  fs.writeFileSync(path.join(root, 'bad-anchor.json'), '{"seq":1}');
  const bad = await run(['audit', 'verify', 'audit', '--anchor', 'bad-anchor.json'], root);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a checkpoint/);
});

test('audit verify exits 2 on usage errors and a missing or non-directory DIR', async (t) => {
  const { root } = await makeLog(t);
  fs.writeFileSync(path.join(root, 'file'), 'x');
  for (const argv of [['audit', 'verify'], ['audit', 'verify', 'a', 'b'], ['audit', 'verify', 'audit', '--bogus'], ['audit', 'verify', 'nope'], ['audit', 'verify', 'file'], ['audit', 'frobnicate'], ['audit']]) {
    const r = await run(argv, root);
    assert.equal(r.code, 2, argv.join(' '));
  }
  const missing = await run(['audit', 'verify', 'nope'], root);
  assert.match(missing.stderr, /cannot read audit dir .*nope: ENOENT/);
});

test('audit --help and audit verify --help print usage and exit 0', async (t) => {
  const { root } = await makeLog(t);
  const top = await run(['audit', '--help'], root);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /verify/);
  const sub = await run(['audit', 'verify', '--help'], root);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /^Usage: meshgate audit verify DIR/);
  assert.match(sub.stdout, /Exit codes: 0 intact, 1 tampering/);
});

test('the meshgate executable exits 1 on a tampered log and 0 on an intact one', async (t) => {
  const { dir } = await makeLog(t);
  const node = process.execPath;
  const bin = path.join(ROOT, 'bin/meshgate.js');
  const good = spawnSync(node, [bin, 'audit', 'verify', dir], { encoding: 'utf8' });
  assert.equal(good.status, 0, good.stderr);
  const ls = read(dir);
  ls[0] = (ls[0] as string).replace('"status":201', '"status":200');
  write(dir, ls);
  const bad = spawnSync(node, [bin, 'audit', 'verify', dir], { encoding: 'utf8' });
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stdout, /FAILED: modified at audit-000002\.jsonl:1/);
});
