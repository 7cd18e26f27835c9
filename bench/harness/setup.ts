/**
 * The common fixture of the load benches: a dev PKI made with our own CLI
 * (`certs init`, `certs issue`), the bench RBAC model and policy, a pool of
 * 100 live tokens, an upstream on the load core and meshgate on core 0.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_AUDIENCE, BENCH_ISSUER, startMeshgate, writeMeshgateConfig, type MeshgateProcess } from './meshgate.ts';
import { allowedRequest, rbacPolicy, rbacShape } from './policy.ts';
import { cli, firstLine, ROOT, spawnPinned } from './proc.ts';
import { runLoad } from './run-load.ts';
import { writeTokenFile, type TokenLine } from './tokens.ts';

/** Paths and keys of a bench fixture. */
export interface BenchFixture {
  readonly dir: string;
  readonly certs: string;
  /** load.ts TLS arguments (--ca, --cert, --key) for the client certificate. */
  readonly tlsArgs: readonly string[];
  readonly jwtKeyPem: string;
  readonly kid: string;
  /** 100 live tokens (`PATH TOKEN` lines, users 0..89 of the policy). */
  readonly tokensFile: string;
  readonly upstream: ChildProcess;
  readonly upstreamPort: number;
}

/** The `kid` of the first key of a JWKS file. */
export function firstKid(jwksFile: string): string {
  return (JSON.parse(readFileSync(jwksFile, 'utf8')) as { keys: { kid: string }[] }).keys[0]?.kid ?? '';
}

/** Token-file lines for users `from .. from+n-1` (wrapped into the shared users). */
export function tokenLines(n: number, ttlSeconds = 3600, from = 0): TokenLine[] {
  return Array.from({ length: n }, (_, i) => {
    const a = allowedRequest(from + i);
    return { path: a.path, claims: { iss: BENCH_ISSUER, sub: a.sub, aud: BENCH_AUDIENCE, ttlSeconds } };
  });
}

/** Creates the PKI, model, a `rules`-line policy and the token pool in `dir`, and starts the upstream. */
export async function createFixture(dir: string, rules = 100): Promise<BenchFixture> {
  const certs = join(dir, 'certs');
  cli(['certs', 'init', '--dir', certs]);
  cli(['certs', 'issue', '--dir', certs, '--name', 'client', '--spiffe', 'spiffe://mesh.local/ns/bench/sa/load']);
  writeFileSync(join(dir, 'model.conf'), readFileSync(join(ROOT, 'test/fixtures/bench/model.conf')));
  writeFileSync(join(dir, 'policy.csv'), rbacPolicy(rbacShape(rules)));
  const jwtKeyPem = readFileSync(join(certs, 'jwt.key'), 'utf8');
  const kid = firstKid(join(certs, 'jwks.json'));
  const tokensFile = join(dir, 'tokens.txt');
  await writeTokenFile(tokensFile, jwtKeyPem, kid, tokenLines(100));
  const upstream = spawnPinned([process.execPath, join(ROOT, 'bench/upstream.ts')], '1');
  const upstreamPort = Number(await firstLine(upstream));
  return {
    dir, certs, jwtKeyPem, kid, tokensFile, upstream, upstreamPort,
    tlsArgs: ['--ca', join(certs, 'ca.crt'), '--cert', join(certs, 'client.crt'), '--key', join(certs, 'client.key')],
  };
}

/** Writes the fixture's meshgate.yaml and starts meshgate on `cores`. */
export function startFixtureMeshgate(f: BenchFixture, opts: { cores?: string; workers?: string; idleTimeout?: string; crl?: string; prefix?: readonly string[] } = {}): Promise<MeshgateProcess> {
  const cfg = writeMeshgateConfig({
    dir: f.dir, certs: 'certs', upstreamPort: f.upstreamPort, model: 'model.conf', policy: 'policy.csv',
    ...(opts.idleTimeout ? { idleTimeout: opts.idleTimeout } : {}), ...(opts.crl ? { crl: opts.crl } : {}), extraYaml: opts.workers ? `workers: ${opts.workers}` : '',
  });
  return startMeshgate(cfg, opts.cores ?? '0', opts.prefix ?? []);
}

/**
 * Warms a freshly started server's request path (JIT, caches, upstream pool)
 * with a short closed-loop run, so an open-loop run does not start with a
 * backlog built while the code was still cold.
 */
export async function warmUp(f: BenchFixture, port: number, seconds = 3): Promise<void> {
  await runLoad({ url: `https://127.0.0.1:${port}/api/1/items`, connections: 10, warmup: 0, duration: seconds, args: [...f.tlsArgs, '--tokens', f.tokensFile] });
}
