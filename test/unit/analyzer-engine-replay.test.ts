/**
 * `meshgate analyzer replay`: audit dirs and segment files in, alerts out —
 * deterministic (byte-identical output), several sources merged by event
 * time, precise errors and exit codes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import { replay } from '../../src/analyzer/replay.ts';
import { loadRules } from '../../src/analyzer/rules/load.ts';
import { SHIPPED_DETECTIONS } from '../../src/config/load.ts';
import { event, tmpDir, writeAudit, type Ev } from './analyzer-engine-helpers.ts';

async function run(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const io: CliIO = { stdout, stderr, env: {}, cwd };
  const code = await main(argv, io);
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

const FAIL = { sub: null, decision: 'deny', reason: 'jwt_bad_signature', status: 401 } as const;
const ATTACKER = 'spiffe://mesh.local/ns/dev/sa/attacker';

/** A brute force (8 failures, 1 s apart), a forged alg:none and some normal traffic. */
function trace(): Ev[] {
  const evs: Ev[] = [];
  for (let i = 0; i < 8; i++) evs.push({ ...FAIL, spiffe: ATTACKER, at: i * 1000 });
  evs.push({ ...FAIL, reason: 'jwt_alg_not_allowed', spiffe: 'spiffe://mesh.local/ns/dev/sa/legacy', at: '30s' });
  for (let i = 0; i < 20; i++) evs.push({ at: i * 3000 });
  return evs.sort((a, b) => (a.at as number | string) > (b.at as number | string) ? 1 : -1);
}

async function logWith(t: { after: (fn: () => void) => void }, evs: Ev[], segmentBytes?: number): Promise<{ root: string; dir: string }> {
  const root = tmpDir(t);
  const dir = path.join(root, 'audit');
  const events = evs.map(event).sort((a, b) => a.time.localeCompare(b.time));
  await writeAudit(dir, events, segmentBytes);
  return { root, dir };
}

test('replay prints the alerts of an audit dir as a table, timing on stderr only', async (t) => {
  const { root } = await logWith(t, trace());
  const r = await run(['analyzer', 'replay', 'audit'], root);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^FIRST SEEN +RULE +SEVERITY +SCOPE +VALUE +COUNT +QUARANTINE +SUMMARY$/);
  assert.ok(lines.some((l) => l.includes('credential-brute-force') && l.includes(ATTACKER) && /\s8\s/.test(l) && l.includes('spiffe 10m (simulated)')));
  assert.ok(lines.some((l) => l.includes('forged-token-algorithm')));
  assert.match(r.stderr, /^29 events, \d+ alerts, \d+ quarantine orders in [\d.]+ s \(\d+ events\/s\)\n$/);
});

test('replay --json prints one final alert per line, byte-identical on every run', async (t) => {
  const { root } = await logWith(t, trace());
  const a = await run(['analyzer', 'replay', 'audit', '--json'], root);
  const b = await run(['analyzer', 'replay', 'audit', '--json'], root);
  assert.equal(a.code, 0);
  assert.equal(a.stdout, b.stdout);
  const alerts = a.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { rule: string; count: number; id: string; v: number });
  const bf = alerts.find((x) => x.rule === 'credential-brute-force');
  assert.equal(bf?.count, 8, 'the final state after the window (updates applied)');
  assert.equal(bf?.v, 1);
});

test('segment files and several audit dirs are merged by event time, as one stream', async (t) => {
  const evs = Array.from({ length: 6 }, (_, i) => ({ ...FAIL, spiffe: ATTACKER, at: i * 1000 }));
  // Two gateways saw alternate failures of the same attacker: only together do they overflow the bucket.
  const g1 = await logWith(t, evs.filter((_, i) => i % 2 === 0));
  const g2 = await logWith(t, evs.filter((_, i) => i % 2 === 1));
  const shipped = await loadRules(SHIPPED_DETECTIONS);
  const rules = { ...shipped, rules: shipped.rules.filter((r) => r.name === 'credential-brute-force') };
  const one = await replay([g1.dir], rules);
  assert.equal(one.alerts.length, 0);
  const both = await replay([g1.dir, path.join(g2.dir, 'audit-000001.jsonl')], rules);
  assert.deepEqual(both.alerts.map((a) => [a.rule, a.count]), [['credential-brute-force', 6]]);
  assert.equal(both.events, 6);
});

test('a multi-segment log replays like a single one, and a partial last line (write in progress) is skipped', async (t) => {
  const small = await logWith(t, trace(), 4096);
  assert.ok(fs.readdirSync(small.dir).filter((f) => f.endsWith('.jsonl')).length > 1);
  const big = await logWith(t, trace());
  const a = await run(['analyzer', 'replay', 'audit', '--json'], small.root);
  const b = await run(['analyzer', 'replay', 'audit', '--json'], big.root);
  assert.deepEqual(a.stdout.split('\n').map((l) => l && (JSON.parse(l) as { rule: string; count: number }).count), b.stdout.split('\n').map((l) => l && (JSON.parse(l) as { rule: string; count: number }).count));
  const segs = fs.readdirSync(small.dir).filter((f) => f.endsWith('.jsonl')).sort();
  fs.appendFileSync(path.join(small.dir, segs.at(-1) as string), '{"seq":99999,"prev":"');
  const c = await run(['analyzer', 'replay', 'audit', '--json'], small.root);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stdout, a.stdout);
});

test('a line that is not a record fails with its location (exit 2)', async (t) => {
  const { root, dir } = await logWith(t, trace());
  fs.appendFileSync(path.join(dir, 'audit-000001.jsonl'), 'garbage\n{"seq":1}\n');
  const r = await run(['analyzer', 'replay', 'audit'], root);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /audit-000001\.jsonl:30: line is not valid JSON/);
});

test('invalid rules are reported with file:line and exit 2', async (t) => {
  const { root } = await logWith(t, trace());
  fs.writeFileSync(path.join(root, 'rules.yaml'), 'version: 1\nrules:\n  - name: x\n    kind: single\n    bogus: 1\n');
  const r = await run(['analyzer', 'replay', 'audit', '--rules', 'rules.yaml'], root);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /rules\.yaml:5:5: rules\[0\]\.bogus: unknown key/);
  assert.equal(r.stdout, '');
});

test('--fail-on-alert exits 1 when an alert was raised and 0 when none was', async (t) => {
  const noisy = await logWith(t, trace());
  assert.equal((await run(['analyzer', 'replay', 'audit', '--fail-on-alert'], noisy.root)).code, 1);
  const quiet = await logWith(t, [{ at: 0 }, { at: 1000 }]);
  const r = await run(['analyzer', 'replay', 'audit', '--fail-on-alert'], quiet.root);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'no alerts\n');
});

test('usage errors: no input, a missing path, a bad --evidence (exit 2)', async (t) => {
  const root = tmpDir(t);
  for (const argv of [['analyzer', 'replay'], ['analyzer', 'replay', 'nope'], ['analyzer', 'replay', '.', '--evidence', '0'], ['analyzer', 'replay', '.', '--bogus'], ['analyzer', 'frobnicate']]) {
    const r = await run(argv, root);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.stderr, /meshgate analyzer: /);
  }
});

test('analyzer --help lists replay, and replay --help documents its options', async (t) => {
  const root = tmpDir(t);
  const h = await run(['analyzer', '--help'], root);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /replay +run the detection rules/);
  const r = await run(['analyzer', 'replay', '--help'], root);
  assert.equal(r.code, 0);
  for (const opt of ['--rules', '--json', '--evidence', '--fail-on-alert']) assert.ok(r.stdout.includes(opt), opt);
});
