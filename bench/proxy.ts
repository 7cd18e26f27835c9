/**
 * `npm run bench` — the request path, measured against a baseline in the same run.
 *
 * Scenarios (same load generator, same 50 keep-alive connections):
 *   direct    load → upstream (plain HTTP on loopback): the ceiling
 *   bare      load → a Node mTLS listener that only forwards with undici
 *             (bench/bare-proxy.ts): what TLS + HTTP + forwarding cost alone
 *   meshgate  load → meshgate (mTLS + ES256 JWT from a pool of 100 live tokens
 *             + Casbin with a 100-line RBAC policy + audit log on) → upstream
 *
 * meshgate is pinned to core 0; the load generator and the upstream to core 1
 * (taskset, when present), so "requests/s on one core" means what it says.
 * Prints requests/s, p50/p99 latency, the ratio to direct, and meshgate's CPU
 * µs per request (from /proc utime+stime over the measured window).
 *
 *   npm run bench -- [--duration 10] [--warmup 3] [--connections 50] [--json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mintToken } from '../src/pki/mint-token.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' }, warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' }, json: { type: 'boolean', default: false },
    rules: { type: 'string', default: '100' },
  },
});
const log = (s: string): void => { if (!values.json) process.stderr.write(`${s}\n`); };
const pinning = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const pin = (core: number, args: string[]): [string, string[]] => (pinning ? ['taskset', ['-c', String(core), ...args]] : [args[0] as string, args.slice(1)]);

function run(cmd: string[], core: number, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const [c, a] = pin(core, cmd);
  return spawn(c, a, { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((res, rej) => {
    let buf = '';
    child.stdout?.on('data', (c: Buffer) => { buf += c; const i = buf.indexOf('\n'); if (i >= 0) res(buf.slice(0, i)); });
    child.once('exit', (code) => rej(new Error(`exited ${code} before printing`)));
  });
}

/** CPU seconds (user + system) of a process from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (CLK_TCK = 100 on Linux)
}

interface LoadResult { requests: number; errors: number; statuses: Record<string, number>; rps: number; p50: number; p99: number; cpuUsPerReq?: number }

async function load(url: string, extra: string[], cpuPid?: number): Promise<LoadResult> {
  const child = run([process.execPath, join(ROOT, 'bench/load.ts'), url, '--connections', values.connections, '--duration', values.duration, '--warmup', values.warmup, ...extra], 1);
  let out = '';
  let cpu0 = 0;
  let cpu1 = 0;
  child.stdout?.on('data', (c: Buffer) => { out += c; });
  child.stderr?.on('data', (c: Buffer) => {
    const s = c.toString();
    if (cpuPid && s.includes('measure:start')) cpu0 = cpuSeconds(cpuPid);
    if (cpuPid && s.includes('measure:end')) cpu1 = cpuSeconds(cpuPid);
    if (!s.startsWith('measure:')) process.stderr.write(s);
  });
  await new Promise((r) => child.once('exit', r));
  const result = JSON.parse(out.trim()) as LoadResult;
  if (cpuPid && result.requests > 0) result.cpuUsPerReq = ((cpu1 - cpu0) * 1e6) / result.requests;
  return result;
}

function policy(rules: number): string {
  // Shaped like casbin's RBAC benchmark: users in roles, roles on path patterns.
  const lines: string[] = [];
  const roles = Math.max(1, Math.floor(rules / 10));
  for (let i = 0; lines.length < rules / 2; i++) lines.push(`p, role-${i % roles}, /api/${i}/*, GET, allow`);
  for (let i = 0; lines.length < rules; i++) lines.push(`g, user-${i}, role-${i % roles}`);
  return `${lines.join('\n')}\n`;
}

const dir = mkdtempSync(join(tmpdir(), 'meshgate-bench-'));
const children: ChildProcess[] = [];
try {
  const certs = join(dir, 'certs');
  const cli = (args: string[]): void => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/meshgate.js'), ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`meshgate ${args.join(' ')}: ${r.stderr}`);
  };
  cli(['certs', 'init', '--dir', certs]);
  cli(['certs', 'issue', '--dir', certs, '--name', 'client', '--spiffe', 'spiffe://mesh.local/ns/bench/sa/load']);
  writeFileSync(join(dir, 'model.conf'), readFileSync(join(ROOT, 'test/fixtures/bench/model.conf')));
  writeFileSync(join(dir, 'policy.csv'), policy(Number(values.rules)));
  // user-1 is in role-1, which may GET /api/1/* (rule lines are distinct per path).
  const keyPem = readFileSync(join(certs, 'jwt.key'), 'utf8');
  const tokens = await Promise.all(Array.from({ length: 100 }, () => mintToken({ keyPem, sub: 'user-1', aud: 'orders', ttlSeconds: 3600 })));
  writeFileSync(join(dir, 'tokens.txt'), tokens.join('\n'));

  const upstream = run([process.execPath, join(ROOT, 'bench/upstream.ts')], 1);
  children.push(upstream);
  const upPort = Number(await firstLine(upstream));
  writeFileSync(join(dir, 'meshgate.yaml'), `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstream: { url: "http://127.0.0.1:${upPort}" }
tls: { cert: certs/gateway.crt, key: certs/gateway.key, clientCa: certs/ca.crt, crl: certs/ca.crl, mode: strict, trustDomains: [mesh.local] }
jwt:
  issuers:
    - { issuer: "https://issuer.mesh.local", audiences: [orders], jwksFile: certs/jwks.json, algorithms: [ES256] }
authz: { model: model.conf, policy: policy.csv }
routes:
  - { match: { pathPrefix: / }, auth: mtls+jwt }
audit: { dir: audit }
log: { level: info }
`);
  const gw = run([process.execPath, join(ROOT, 'bin/meshgate.js'), 'run', '-c', join(dir, 'meshgate.yaml')], 0);
  children.push(gw);
  const gwPort = await new Promise<number>((res, rej) => {
    let buf = '';
    gw.stdout?.on('data', (c: Buffer) => {
      buf += c;
      const m = /"listen":\{"host":"[^"]+","port":(\d+)\}/.exec(buf);
      if (m) res(Number(m[1]));
    });
    gw.stderr?.on('data', (c: Buffer) => process.stderr.write(c));
    gw.once('exit', (code) => rej(new Error(`meshgate exited ${code}`)));
  });
  log(`bench: ${values.rules}-line policy, ${values.connections} connections, ${values.warmup}s warm-up + ${values.duration}s per scenario, pinning ${pinning ? 'on (meshgate core 0; load+upstream core 1)' : 'OFF (taskset missing)'}`);

  const bare = run([process.execPath, join(ROOT, 'bench/bare-proxy.ts'), join(certs, 'gateway.crt'), join(certs, 'gateway.key'), join(certs, 'ca.crt'), `http://127.0.0.1:${upPort}`], 0);
  children.push(bare);
  const barePort = Number(await firstLine(bare));

  const direct = await load(`http://127.0.0.1:${upPort}/api/1/items`, []);
  const tls = ['--ca', join(certs, 'ca.crt'), '--cert', join(certs, 'client.crt'), '--key', join(certs, 'client.key'), '--tokens', join(dir, 'tokens.txt')];
  const bareRun = await load(`https://127.0.0.1:${barePort}/api/1/items`, tls, bare.pid);
  bare.kill('SIGTERM');
  const mesh = await load(`https://127.0.0.1:${gwPort}/api/1/items`, tls, gw.pid);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gw.pid}/status`, 'utf8'))?.[1] ?? 0);
  const light = await load(`https://127.0.0.1:${gwPort}/api/1/items`, [...tls, '--rate', '200']);
  const lightDirect = await load(`http://127.0.0.1:${upPort}/api/1/items`, ['--rate', '200']);

  const okMesh = mesh.statuses['200'] ?? 0;
  if (okMesh !== mesh.requests) throw new Error(`meshgate answered non-200: ${JSON.stringify(mesh.statuses)} errors=${mesh.errors}`);
  const report = {
    node: process.version, rules: Number(values.rules), connections: Number(values.connections), pinning,
    direct: { rps: direct.rps, p50: direct.p50, p99: direct.p99, errors: direct.errors },
    bareTlsForwarder: { rps: bareRun.rps, p50: bareRun.p50, p99: bareRun.p99, errors: bareRun.errors, cpuUsPerReq: bareRun.cpuUsPerReq },
    meshgate: { rps: mesh.rps, p50: mesh.p50, p99: mesh.p99, errors: mesh.errors, cpuUsPerReq: mesh.cpuUsPerReq, rssMb: rssKb / 1024 },
    ratioToDirect: mesh.rps / direct.rps,
    lightLoad200rps: { meshgateP50: light.p50, directP50: lightDirect.p50, addedP50Ms: light.p50 - lightDirect.p50 },
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const f = (n: number | undefined, d = 0): string => (n === undefined ? '-' : n.toFixed(d));
    process.stdout.write(`
scenario                      requests/s   p50 ms   p99 ms   CPU µs/req   RSS MB
direct (plain HTTP upstream)  ${f(direct.rps).padStart(10)}   ${f(direct.p50, 2).padStart(6)}   ${f(direct.p99, 2).padStart(6)}
bare mTLS forwarder (no checks)${f(bareRun.rps).padStart(9)}   ${f(bareRun.p50, 2).padStart(6)}   ${f(bareRun.p99, 2).padStart(6)}   ${f(bareRun.cpuUsPerReq, 1).padStart(10)}
meshgate (mTLS+JWT+authz)     ${f(mesh.rps).padStart(10)}   ${f(mesh.p50, 2).padStart(6)}   ${f(mesh.p99, 2).padStart(6)}   ${f(mesh.cpuUsPerReq, 1).padStart(10)}   ${f(rssKb / 1024).padStart(6)}
ratio meshgate/direct         ${f(report.ratioToDirect, 3).padStart(10)}
light load 200 req/s          p50 meshgate ${f(light.p50, 3)} ms, direct ${f(lightDirect.p50, 3)} ms, added ${f(report.lightLoad200rps.addedP50Ms, 3)} ms
`);
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  rmSync(dir, { recursive: true, force: true });
}
