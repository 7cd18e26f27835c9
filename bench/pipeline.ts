/**
 * Micro-benchmark of meshgate's own per-request work, without sockets:
 * admit() (peer, hygiene, normalize, route, JWT cache hit, authz) plus the
 * audit event and metrics of finishRequest. Reports CPU µs per request, so
 * it is meaningful even on a busy machine. `node bench/pipeline.ts [N]`
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics } from '../src/admin/metrics.ts';
import { AuditWriter } from '../src/audit/writer.ts';
import { newEventId } from '../src/audit/event.ts';
import { createPolicyStore } from '../src/authz/policy-store.ts';
import { configSchema } from '../src/config/schema.ts';
import { silentLogger } from '../src/core/log.ts';
import { JwtVerifier } from '../src/jwt/verifier.ts';
import { finishRequest } from '../src/proxy/handler.ts';
import { createPipeline } from '../src/proxy/pipeline.ts';
import { RequestState } from '../src/proxy/state.ts';
import { compileRoutes } from '../src/routes/table.ts';
import { makeTestPki } from '../test/helpers/pki.ts';
import { MODEL } from '../test/helpers/gateway.ts';

const N = Number(process.argv[2] ?? 200_000);
const dir = mkdtempSync(join(tmpdir(), 'meshgate-bench-pipe-'));
const pki = await makeTestPki(join(dir, 'certs'));
writeFileSync(join(dir, 'model.conf'), MODEL);
const lines: string[] = [];
for (let i = 0; i < 50; i++) lines.push(`p, role-${i % 10}, /api/${i}/*, GET, allow`);
for (let i = 0; i < 50; i++) lines.push(`g, user-${i}, role-${i % 10}`);
writeFileSync(join(dir, 'policy.csv'), `${lines.join('\n')}\n`);
const cfg = configSchema.parse({
  upstream: { url: 'http://127.0.0.1:9' },
  tls: { cert: pki.paths.gatewayCert, key: pki.paths.gatewayKey, clientCa: pki.paths.caCert, trustDomains: ['mesh.local'] },
  jwt: { issuers: [{ issuer: 'https://issuer.mesh.local', audiences: ['orders'], jwksFile: pki.paths.jwks, algorithms: ['ES256'] }] },
  authz: { model: join(dir, 'model.conf'), policy: join(dir, 'policy.csv') },
  routes: [{ match: { pathPrefix: '/' }, auth: 'mtls+jwt' }],
  audit: { dir: join(dir, 'audit') },
});
const policy = await createPolicyStore({ modelPath: cfg.authz.model, policyPath: cfg.authz.policy, decisionCacheEntries: 10_000, watch: false });
const jwt = await JwtVerifier.create(cfg.jwt!, { logger: silentLogger });
const audit = new AuditWriter(cfg.audit, { logger: silentLogger });
await audit.open();
const metrics = new Metrics({ components: () => [], audit: () => audit.stats(), inflight: () => 0, certNotAfter: () => undefined }, false);
const routes = compileRoutes(cfg.routes);
const admit = createPipeline({
  routes: () => routes, authorizer: () => policy.current(), jwt, trustedForwarders: new Set(), encodedSlash: 'reject',
  maxHeaders: 100, maxBodyBytes: 1 << 30, forwardClaims: [], setClientCertHeader: true, gatewayId: 'spiffe://mesh.local/meshgate',
});
const tokens = await Promise.all(Array.from({ length: 100 }, () => pki.mintToken({ sub: 'user-1', ttlSeconds: 3600 })));
const peer = { kind: 'peer' as const, peer: { spiffeId: 'spiffe://mesh.local/ns/bench/sa/load', trustDomain: 'mesh.local', fingerprint256: 'ab'.repeat(32), x5tS256: 'x', serialNumber: '01' } };
const headersFor = (t: string) => ({ host: 'localhost:8443', connection: 'keep-alive', authorization: `Bearer ${t}`, 'user-agent': 'bench', accept: '*/*' });
const deps = { audit, metrics, log: silentLogger };

async function once(i: number, record: boolean): Promise<void> {
  const input = { method: 'GET', rawTarget: '/api/1/items?x=1', headers: headersFor(tokens[i % 100] as string), headerCount: 5, peer, source: { ip: '127.0.0.1', port: 5000 }, websocket: false };
  const state = new RequestState(newEventId(), input, Date.now(), process.hrtime.bigint());
  await admit(state);
  state.status = 200;
  if (record) finishRequest(deps, state);
}

for (let i = 0; i < 20_000; i++) await once(i, true); // warm-up: caches, JIT
async function measure(record: boolean): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await once(i, record);
  await audit.flush();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / N;
}
const admitOnly = await measure(false);
const full = await measure(true);
process.stdout.write(`pipeline micro-bench, ${N} requests, CPU µs/request:\n  admit (peer→hygiene→normalize→route→JWT hit→authz hit→identity headers): ${admitOnly.toFixed(2)}\n  + audit event, append, chain+write, metrics:                          ${full.toFixed(2)}\n`);
await audit.close();
jwt.close();
policy.close();
rmSync(dir, { recursive: true, force: true });
