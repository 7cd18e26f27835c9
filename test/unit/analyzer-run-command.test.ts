import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { AuditWriter } from '../../src/audit/writer.ts';
import { runAnalyzer } from '../../src/analyzer/run-command.ts';
import type { AnalyzerService } from '../../src/analyzer/service.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { silentLogger } from '../../src/core/log.ts';
import { auditEvent } from './analyzer-run-fake-engine.ts';

const FAKE = path.resolve('test/unit/analyzer-run-fake-engine.ts');

function io(cwd: string): { io: CliIO; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  stdout.on('data', (b: Buffer) => o.push(b));
  stderr.on('data', (b: Buffer) => e.push(b));
  return { io: { stdout, stderr, env: {}, cwd }, out: () => Buffer.concat(o).toString(), err: () => Buffer.concat(e).toString() };
}

async function log(dir: string, n: number): Promise<void> {
  const w = new AuditWriter({ dir, segmentBytes: 1 << 20, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 10_000 });
  await w.open();
  for (let i = 1; i <= n; i++) w.append(auditEvent(i));
  await w.close();
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-analyzer-cmd-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('analyzer run follows the given audit dirs until stopped, then exits 0 with a summary', async (t) => {
  const root = tmp(t);
  await log(path.join(root, 'a'), 40);
  await log(path.join(root, 'b'), 10);
  const ac = new AbortController();
  const c = io(root);
  let svc: AnalyzerService | undefined;
  const code = runAnalyzer(['a', 'b', '--dir', 'state', '--rules', 'unused.yaml'], c.io, {
    signal: ac.signal, engineModule: FAKE, logger: silentLogger, onStarted: (s) => { svc = s; },
  });
  while (!svc) await new Promise((r) => setTimeout(r, 10));
  await Promise.all([svc.whenProcessed(40, path.join(root, 'a')), svc.whenProcessed(10, path.join(root, 'b'))]);
  ac.abort();
  assert.equal(await code, 0, c.err());
  assert.match(c.err(), /following .*\/a, .*\/b with .*unused\.yaml; state in .*\/state/);
  assert.match(c.err(), /stopped after 50 events: \d+ alerts, \d+ decisions/);
  const cursor = JSON.parse(fs.readFileSync(path.join(root, 'state', 'cursor.json'), 'utf8')) as { dirs: Record<string, number> };
  assert.deepEqual(cursor.dirs, { [path.join(root, 'a')]: 40, [path.join(root, 'b')]: 10 });
  assert.ok(fs.statSync(path.join(root, 'state', 'alerts.jsonl')).size > 0);
});

test('with -c the audit dir, state dir and rules come from the config', async (t) => {
  const root = tmp(t);
  fs.writeFileSync(path.join(root, 'meshgate.yaml'), `
upstream: { url: "http://127.0.0.1:8080" }
tls: { cert: c.crt, key: c.key, clientCa: ca.crt, trustDomains: [mesh.local] }
authz: { model: m.conf, policy: p.csv }
routes: [{ match: { pathPrefix: / }, auth: none }]
audit: { dir: audit }
analyzer: { rules: my-rules.yaml }
`);
  await log(path.join(root, 'audit'), 12);
  const ac = new AbortController();
  const c = io(root);
  let svc: AnalyzerService | undefined;
  const code = runAnalyzer(['-c', 'meshgate.yaml'], c.io, { signal: ac.signal, engineModule: FAKE, logger: silentLogger, onStarted: (s) => { svc = s; } });
  while (!svc) await new Promise((r) => setTimeout(r, 10));
  await svc.whenProcessed(12);
  ac.abort();
  assert.equal(await code, 0);
  assert.match(c.err(), /my-rules\.yaml; state in .*\/audit\/analyzer/);
  assert.ok(fs.existsSync(path.join(root, 'audit', 'analyzer', 'cursor.json')));
});

test('analyzer run exits 2 on invalid rules (every error listed), no audit dir, or a state dir in use', async (t) => {
  const root = tmp(t);
  fs.writeFileSync(path.join(root, 'bad.yaml'), 'version: 1\nrules:\n  - name: x\n    kind: leaky\n');
  const c = io(root);
  assert.equal(await runAnalyzer(['audit', '--rules', 'bad.yaml'], c.io, { signal: new AbortController().signal, logger: silentLogger }), 2);
  assert.match(c.err(), /invalid detection rules .*bad\.yaml \(\d+ errors?\)/);
  await assert.rejects(runAnalyzer([], io(root).io, { signal: new AbortController().signal }), /give the AUDIT_DIR/);
  // Two analyzers on one state dir: the second is refused.
  await log(path.join(root, 'audit'), 1);
  const ac = new AbortController();
  let svc: AnalyzerService | undefined;
  const first = runAnalyzer(['audit', '--dir', 'st'], io(root).io, { signal: ac.signal, engineModule: FAKE, logger: silentLogger, onStarted: (s) => { svc = s; } });
  while (!svc) await new Promise((r) => setTimeout(r, 10));
  const c2 = io(root);
  assert.equal(await runAnalyzer(['audit', '--dir', 'st'], c2.io, { signal: new AbortController().signal, engineModule: FAKE, logger: silentLogger }), 2);
  assert.match(c2.err(), /in use/);
  ac.abort();
  assert.equal(await first, 0);
});
