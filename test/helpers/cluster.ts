/**
 * A `workers: 2` gateway run as `meshgate run` in a child process, for the
 * cluster e2e tests: writes model, policy and meshgate.yaml into `dir`
 * (which holds `certs/` from makeTestPki) and spawns the binary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { MODEL } from './gateway.ts';
import type { TestPki } from './pki.ts';

const BIN = new URL('../../bin/meshgate.js', import.meta.url).pathname;

/** Starts the cluster; `audit` is the YAML value of the `audit` key. Its output is appended to `onOutput`. */
export function spawnCluster(dir: string, upstreamPort: number, audit: string, onOutput: (text: string) => void): ChildProcess {
  writeFileSync(join(dir, 'model.conf'), MODEL);
  writeFileSync(join(dir, 'policy.csv'), 'p, reader, /orders, GET, allow\ng, alice, reader\n');
  writeFileSync(join(dir, 'meshgate.yaml'), `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0, token: t }
upstream: { url: "http://127.0.0.1:${upstreamPort}" }
tls: { cert: certs/gateway.crt, key: certs/gateway.key, clientCa: certs/ca.crt, trustDomains: [mesh.local] }
jwt:
  issuers:
    - { issuer: "https://issuer.mesh.local", audiences: [orders], jwksFile: certs/jwks.json, algorithms: [ES256] }
authz: { model: model.conf, policy: policy.csv }
routes: [{ match: { pathPrefix: / }, auth: mtls+jwt }]
audit: ${audit}
analyzer: { enabled: false }
workers: 2
`);
  const child = spawn(process.execPath, [BIN, 'run', '-c', join(dir, 'meshgate.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (c: Buffer) => onOutput(c.toString()));
  child.stderr?.on('data', (c: Buffer) => onOutput(c.toString()));
  return child;
}

/**
 * One GET over a new mTLS connection (so that the cluster spreads requests
 * over its workers, round robin): the status and, for a refusal, its reason.
 */
export async function freshRequest(pki: TestPki, port: number, path: string, token: string): Promise<{ status: number; reason?: string | undefined }> {
  const agent = new Agent({ connect: { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem, servername: 'localhost' } });
  try {
    const r = await request(`https://localhost:${port}${path}`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
    const body = await r.body.text();
    return { status: r.statusCode, reason: r.statusCode >= 400 ? (JSON.parse(body) as { reason: string }).reason : undefined };
  } finally {
    await agent.close();
  }
}
