/**
 * workers > 1: several processes share the listener, yet the gateway
 * behaves as one — one verifiable audit chain holding every request, metrics
 * aggregated on the primary's admin port, hot reload and quarantine reaching
 * every worker, and a clean drain on SIGTERM.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { verifyAuditDir } from '../../src/audit/verify.ts';
import { DecisionStore } from '../../src/decisions/decision-store.ts';
import { freshRequest, spawnCluster } from '../helpers/cluster.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';

let dir: string;
let pki: TestPki;
let upstream: Server;
let child: ChildProcess;
let port = 0;
let adminPort = 0;
let sent = 0;
let output = '';

async function fresh(path: string, token: string): Promise<{ status: number; reason?: string | undefined }> {
  const r = await freshRequest(pki, port, path, token);
  sent++;
  return r;
}

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met in time; output:\n${output.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshgate-cluster-'));
  pki = await makeTestPki(join(dir, 'certs'));
  upstream = createServer((req, res) => { req.resume(); res.end('ok'); }).listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  child = spawnCluster(dir, (upstream.address() as AddressInfo).port, '{ dir: audit }', (t) => { output += t; });
  await until(async () => {
    const listening = output.split('\n').filter((l) => l.includes('"meshgate listening"'));
    const primary = /"meshgate primary started".*|.*"meshgate primary started"/.exec(output)?.[0] ?? '';
    adminPort = Number(/"admin":\{"host":"[^"]+","port":(\d+)\}/.exec(primary)?.[1] ?? 0);
    port = Number(/"listen":\{"host":"[^"]+","port":(\d+)\}/.exec(listening[0] ?? '')?.[1] ?? 0);
    return listening.length === 2 && adminPort > 0;
  }, 15_000);
});

after(async () => {
  if (child.exitCode === null) { child.kill('SIGKILL'); await once(child, 'exit'); }
  upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

test('two workers serve one listener; /readyz and /metrics on the primary cover both', async () => {
  const token = await pki.mintToken({ sub: 'alice' });
  const statuses = [];
  for (let i = 0; i < 12; i++) statuses.push((await fresh('/orders', token)).status);
  assert.deepEqual(new Set(statuses), new Set([200]));
  const ready = await (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).json() as { ready: boolean; components: { name: string; ready: boolean }[] };
  assert.equal(ready.ready, true);
  assert.equal(ready.components.filter((c) => c.name.startsWith('worker-') && c.ready).length, 2);
  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const total = metrics.split('\n').filter((l) => l.startsWith('meshgate_requests_total{')).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  assert.equal(total, 12, 'the aggregate counts every worker\'s requests');
  assert.match(metrics, /^meshgate_workers 2$/m);
  const helps = metrics.split('\n').filter((l) => l.startsWith('# HELP '));
  assert.equal(new Set(helps).size, helps.length, 'no metric is exposed twice');
});

test('a policy edit and a quarantine decision reach every worker', async () => {
  const token = await pki.mintToken({ sub: 'alice' });
  writeFileSync(join(dir, 'policy.csv'), 'p, reader, /orders, GET, allow\np, reader, /reports, GET, allow\ng, alice, reader\n');
  await until(async () => {
    const got = await Promise.all(Array.from({ length: 6 }, () => fresh('/reports', token)));
    return got.every((g) => g.status === 200);
  });
  const store = await DecisionStore.open(join(dir, 'audit', 'analyzer'));
  await store.add({ scope: 'sub', value: 'alice', durationMs: 60_000 });
  await until(async () => {
    const got = await Promise.all(Array.from({ length: 6 }, () => fresh('/orders', token)));
    return got.every((g) => g.status === 403 && g.reason === 'quarantined');
  });
});

test('SIGTERM drains every worker and leaves one intact audit chain with every request', async () => {
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit') as [number];
  assert.equal(code, 0);
  const v = await verifyAuditDir(join(dir, 'audit'));
  assert.equal(v.ok, true);
  assert.equal(v.records, sent);
});
