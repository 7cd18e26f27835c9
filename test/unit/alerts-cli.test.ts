import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { newEventId } from '../../src/audit/event.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import type { Alert } from '../../src/analyzer/types.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import { auditEvent } from './analyzer-run-fake-engine.ts';

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

const ago = (ms: number): string => new Date(Date.now() - ms).toISOString();
const MIN = 60_000;

function alert(id: string, over: Partial<Alert>): Alert {
  return {
    v: 1, id, rule: 'brute-force', severity: 'high', title: 'Credential brute force', scope: 'sub', value: 'mallory',
    firstSeen: ago(10 * MIN), lastSeen: ago(9 * MIN), count: 6, evidence: [], summary: '6 failed logins in 50s', ...over,
  };
}

/** State dir with alerts.jsonl and an audit dir holding the evidence of the first alert. */
async function fixture(t: { after: (fn: () => void) => void }): Promise<{ root: string; evidence: string[] }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-alerts-cli-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const w = new AuditWriter({ dir: path.join(root, 'audit'), segmentBytes: 1 << 20, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 1000 });
  await w.open();
  const evidence: string[] = [];
  for (let i = 1; i <= 5; i++) {
    const id = newEventId();
    if (i <= 3) evidence.push(id);
    w.append(auditEvent(i, { id, principal: { iss: 'i', sub: 'mallory' }, decision: 'deny', reason: 'jwt_bad_signature', status: 401 }));
  }
  await w.close();
  const lines = [
    alert('aaaa1111bbbb2222cccc3333dddd4444', { evidence: [...evidence.slice(0, 2)], count: 5 }),
    alert('eeee5555ffff6666aaaa7777bbbb8888', { rule: 'probing', severity: 'medium', scope: 'spiffe', value: 'spiffe://mesh.local/ns/a/sa/b', lastSeen: ago(3 * 60 * MIN), firstSeen: ago(4 * 60 * MIN), evidence: ['e-x'] }),
    alert('cccc9999dddd0000eeee1111ffff2222', { rule: 'token-replay', severity: 'critical', scope: 'jti', value: 'jti-1', lastSeen: ago(2 * MIN), decisionId: 'd-123', evidence: [] }),
    // The update of the first alert when its window closed: same id, final count and evidence.
    alert('aaaa1111bbbb2222cccc3333dddd4444', { evidence, count: 7, lastSeen: ago(8 * MIN) }),
  ];
  fs.mkdirSync(path.join(root, 'state'));
  fs.writeFileSync(path.join(root, 'state', 'alerts.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return { root, evidence };
}

test('alerts list shows each alert once (its last emission), oldest first', async (t) => {
  const { root } = await fixture(t);
  const r = await run(['alerts', 'list', '--dir', 'state'], root);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split('\n');
  assert.match(rows[0] as string, /^LAST SEEN\s+SEVERITY\s+RULE\s+SCOPE\s+VALUE\s+COUNT\s+ID\s+DECISION$/);
  assert.equal(rows.length, 4);
  assert.match(rows[1] as string, /medium\s+probing\s+spiffe\s+spiffe:\/\/mesh.local\/ns\/a\/sa\/b/);
  assert.match(rows[2] as string, /high\s+brute-force\s+sub\s+mallory\s+7\s+aaaa1111/);
  assert.match(rows[3] as string, /critical\s+token-replay\s+jti\s+jti-1\s+6\s+cccc9999\S+\s+d-123$/);
  const json = JSON.parse((await run(['alerts', 'list', '--dir', 'state', '--json'], root)).stdout) as Alert[];
  assert.deepEqual(json.map((a) => a.id.slice(0, 4)), ['eeee', 'aaaa', 'cccc']);
});

test('alerts list filters by --since, --rule and --severity (at least)', async (t) => {
  const { root } = await fixture(t);
  const ids = async (...args: string[]): Promise<string[]> => {
    const r = await run(['alerts', 'list', '--dir', 'state', '--json', ...args], root);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as Alert[]).map((a) => a.id.slice(0, 4));
  };
  assert.deepEqual(await ids('--since', '1h'), ['aaaa', 'cccc']);
  assert.deepEqual(await ids('--since', '5m'), ['cccc']);
  assert.deepEqual(await ids('--rule', 'probing'), ['eeee']);
  assert.deepEqual(await ids('--severity', 'high'), ['aaaa', 'cccc']);
  assert.deepEqual(await ids('--severity', 'critical', '--since', '1d'), ['cccc']);
  assert.deepEqual(await ids('--rule', 'nope'), []);
  assert.equal((await run(['alerts', 'list', '--dir', 'state', '--rule', 'nope'], root)).stdout, 'no alerts\n');
});

test('alerts show prints one alert with its evidence ids, and with --audit the evidence events', async (t) => {
  const { root, evidence } = await fixture(t);
  const plain = await run(['alerts', 'show', 'aaaa1111', '--dir', 'state'], root);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^id:\s+aaaa1111bbbb2222cccc3333dddd4444$/m);
  assert.match(plain.stdout, /^scope:\s+sub=mallory$/m);
  assert.match(plain.stdout, /^count:\s+7$/m);
  assert.match(plain.stdout, /evidence \(3 events\):/);
  for (const id of evidence) assert.ok(plain.stdout.includes(`  ${id}\n`));
  const withAudit = await run(['alerts', 'show', 'aaaa1111bbbb2222cccc3333dddd4444', '--dir', 'state', '--audit', 'audit', '--json'], root);
  assert.equal(withAudit.code, 0, withAudit.stderr);
  const out = JSON.parse(withAudit.stdout) as { alert: Alert; events: { id: string; reason: string }[] };
  assert.equal(out.alert.count, 7);
  assert.deepEqual(out.events.map((e) => e.id), evidence);
  assert.ok(out.events.every((e) => e.reason === 'jwt_bad_signature'));
  const text = await run(['alerts', 'show', 'cccc9999dddd', '--dir', 'state', '--audit', 'audit'], root);
  assert.match(text.stdout, /^decision:\s+d-123$/m);
});

test('alerts show fails with 1 for an unknown id, 2 for a too-short id or missing state dir', async (t) => {
  const { root } = await fixture(t);
  const unknown = await run(['alerts', 'show', 'ffffffff', '--dir', 'state'], root);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no alert with id ffffffff/);
  assert.equal((await run(['alerts', 'show', 'aaa', '--dir', 'state'], root)).code, 2);
  assert.equal((await run(['alerts', 'show', 'aaaa1111'], root)).code, 2);
  assert.equal((await run(['alerts', 'list', '--dir', 'state', '--since', 'soon'], root)).code, 2);
  assert.equal((await run(['alerts', 'list', '--dir', 'state', '--severity', 'urgent'], root)).code, 2);
});

test('alerts list on a state dir without alerts says so; --help exits 0', async (t) => {
  const { root } = await fixture(t);
  fs.mkdirSync(path.join(root, 'empty'));
  assert.equal((await run(['alerts', 'list', '--dir', 'empty'], root)).stdout, 'no alerts\n');
  const help = await run(['alerts', 'show', '--help'], root);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /meshgate alerts show ID \[--audit DIR\] \[--json\]/);
});
