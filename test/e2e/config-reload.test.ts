import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { Gateway } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/core/log.ts';
import { MODEL, POLICY } from '../helpers/gateway.ts';
import { makeTestPki, type TestPki } from '../helpers/pki.ts';

let dir: string;
let pki: TestPki;
let gw: Gateway;
let agent: Agent;
const file = (): string => join(dir, 'meshgate.yaml');

function yaml(routes: string): string {
  return `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstream: { url: "http://127.0.0.1:9" }
tls: { cert: certs/gateway.crt, key: certs/gateway.key, clientCa: certs/ca.crt, trustDomains: [mesh.local] }
authz: { model: model.conf, policy: policy.csv }
audit: { dir: audit }
analyzer: { enabled: false }
routes:
${routes}`;
}

/** Writes the config the way editors and ConfigMaps do: a new file renamed over the old. */
function writeConfig(text: string): void {
  writeFileSync(`${file()}.tmp`, text);
  renameSync(`${file()}.tmp`, file());
}

async function status(path: string): Promise<{ status: number; reason?: string }> {
  const r = await request(`https://localhost:${gw.address.port}${path}`, { dispatcher: agent });
  const body = await r.body.text();
  return { status: r.statusCode, reason: body ? (JSON.parse(body) as { reason?: string }).reason : undefined };
}

async function until(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function configStatus(): Promise<{ reloads: number; reloadFailures: number; lastError?: string }> {
  const r = await fetch(`http://127.0.0.1:${gw.adminAddress.port}/readyz`);
  const body = await r.json() as { components: { name: string; reloads: number; reloadFailures: number; lastError?: string }[] };
  return body.components.find((c) => c.name === 'config') as { reloads: number; reloadFailures: number; lastError?: string };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshgate-cfg-reload-'));
  pki = await makeTestPki(join(dir, 'certs'));
  writeFileSync(join(dir, 'model.conf'), MODEL);
  writeFileSync(join(dir, 'policy.csv'), POLICY);
  writeConfig(yaml('  - { name: healthz, match: { pathPrefix: /healthz }, auth: none }\n'));
  gw = await Gateway.start(await loadConfig(file()), { log: silentLogger, processMetrics: false, configFile: file() });
  agent = new Agent({ connect: { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem, servername: 'localhost' } });
});

after(async () => {
  await agent.close();
  await gw.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a route added to meshgate.yaml is live within a second, without a restart', async () => {
  assert.deepEqual(await status('/svc/x'), { status: 404, reason: 'route_not_found' });
  const started = Date.now();
  writeConfig(yaml('  - { name: healthz, match: { pathPrefix: /healthz }, auth: none }\n  - { name: svc, match: { pathPrefix: /svc/ }, auth: mtls }\n'));
  // The new route is matched and decided by the policy (upstream :9 is closed, so an allowed request ends in 502).
  await until(async () => (await status('/svc/x')).status !== 404);
  assert.ok(Date.now() - started < 1500, `reload took ${Date.now() - started} ms`);
  assert.deepEqual(await status('/svc/x'), { status: 502, reason: 'upstream_unavailable' });
  assert.equal((await configStatus()).reloads, 2);
});

test('a broken config edit is rejected with its location and the running routes stay', async () => {
  writeConfig(yaml('  - { name: healthz, match: { pathPrefix: /healthz }, auth: sometimes }\n'));
  await until(async () => (await configStatus()).reloadFailures === 1);
  const s = await configStatus();
  assert.match(s.lastError ?? '', /meshgate\.yaml:\d+:\d+: routes\[0\]\.auth/);
  assert.equal((await status('/svc/x')).status, 502, 'the last good route table keeps serving');
});
