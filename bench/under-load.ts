/**
 * `npm run bench:reload` — under a steady open-loop load (default 5,000
 * requests/s for 40 s) through one meshgate, replace in turn:
 *   1. the server certificate (a new gateway cert from the same CA),
 *   2. the client CA bundle (the same CA re-written plus a second CA appended,
 *      and that CA's CRL put into the second CRL slot: with CRL checking on,
 *      OpenSSL refuses clients of a CA it has no CRL for),
 *   3. the JWKS file (a second key added; tokens are then minted with it),
 *   4. the policy (a rule added),
 * each with an atomic rename, the way config managers write files. Reports
 * the failed requests of the steady load (goal: 0 — any non-2xx answer or
 * socket error counts) and, per change, the time from the write until the new
 * material is in use (goal: < 2 s): the new serial seen by a fresh TLS
 * connection, a client certificate of the second CA accepted, a token signed
 * with the new key accepted, a request only the new rule allows answered 200.
 * Before each change a probe checks that the new material is NOT yet in use,
 * so a pass cannot come from a probe that would always succeed. Probes use
 * their own client certificates, so an analyzer alert about a probe (a token
 * of a not-yet-known key looks forged) can never quarantine the steady load.
 *
 *   npm run bench:reload -- [--rate 5000] [--duration 40] [--connections 50] [--json]
 *     [--workers N] [--meshgate-cores 0]
 *
 * Exit status 1 when a goal is missed.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { gatewaySpiffeId } from '../src/pki/dev-pki.ts';
import { issueCert } from '../src/pki/issue-cert.ts';
import { normalizeSerialHex } from '../src/pki/serial-number.ts';
import { writeFileAtomic } from '../src/pki/write-file-atomic.ts';
import { BENCH_AUDIENCE, BENCH_ISSUER } from './harness/meshgate.ts';
import { cli, PINNING, sleep, stop } from './harness/proc.ts';
import { runLoad, type LoadResult } from './harness/run-load.ts';
import { createFixture, firstKid, startFixtureMeshgate, warmUp } from './harness/setup.ts';
import { es256Signer } from './harness/tokens.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '5000' }, duration: { type: 'string', default: '40' }, connections: { type: 'string', default: '50' },
    json: { type: 'boolean', default: false }, workers: { type: 'string' }, 'meshgate-cores': { type: 'string', default: '0' },
  },
});
const log = (s: string): void => { if (!values.json) process.stderr.write(`${s}\n`); };
const GOAL_MS = 2000;
const PROBE_TIMEOUT_MS = 6000;

/** A change, and how long until it was in use (undefined: not within PROBE_TIMEOUT_MS). */
interface StepResult { name: string; notYetBefore: boolean; msUntilInUse?: number; atSecond: number; passed: boolean }

interface Tls { ca: Buffer; cert: Buffer; key: Buffer }
/** One bench/load.ts progress line: latency of the requests completed in the last 2 s. */
interface Window { t: number; p50: number; p99: number; max: number }

/** The serial of the server certificate a fresh TLS connection sees (normalized hex), or undefined. */
function serialSeen(port: number, t: Tls): Promise<string | undefined> {
  return new Promise((res) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...t }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      res(serial ? normalizeSerialHex(serial) : undefined);
    });
    s.once('error', () => res(undefined));
    s.setTimeout(2000, () => { s.destroy(); res(undefined); });
  });
}

/** Status of one GET over a fresh connection, or 0 on a socket/TLS error. */
async function statusOf(port: number, t: Tls, path: string, token: string): Promise<number> {
  const c = new Client(`https://127.0.0.1:${port}`, { connect: { ...t, servername: 'localhost' }, headersTimeout: 2000, bodyTimeout: 2000 });
  try {
    const r = await c.request({ path, method: 'GET', headers: { authorization: `Bearer ${token}` } });
    await r.body.dump();
    return r.statusCode;
  } catch {
    return 0;
  } finally {
    await c.destroy();
  }
}

/** Polls `inUse` every 25 ms; resolves with the ms elapsed since `t0` when it holds, or undefined after the timeout. */
async function until(t0: number, inUse: () => Promise<boolean>): Promise<number | undefined> {
  while (performance.now() - t0 < PROBE_TIMEOUT_MS) {
    if (await inUse()) return performance.now() - t0;
    await sleep(25);
  }
  return undefined;
}

const dir = mkdtempSync(join(tmpdir(), 'meshgate-reload-'));
let exitCode = 0;
try {
  const fx = await createFixture(dir);
  const c = (n: string): string => join(fx.certs, n);
  // A second CA (and a second JWT key) from our own CLI; a client of that CA in the same trust domain.
  const certs2 = join(dir, 'certs2');
  cli(['certs', 'init', '--dir', certs2]);
  cli(['certs', 'issue', '--dir', certs2, '--name', 'client2', '--spiffe', 'spiffe://mesh.local/ns/bench/sa/other-ca']);
  const probe = (name: string): Tls => {
    cli(['certs', 'issue', '--dir', fx.certs, '--name', name, '--spiffe', `spiffe://mesh.local/ns/bench/sa/${name}`]);
    return { ca: readFileSync(c('ca.crt')), cert: readFileSync(c(`${name}.crt`)), key: readFileSync(c(`${name}.key`)) };
  };
  const tlsCert = probe('probe-cert');
  const tlsJwks = probe('probe-jwks');
  const tlsPolicy = probe('probe-policy');
  const tls2: Tls = { ca: tlsCert.ca, cert: readFileSync(join(certs2, 'client2.crt')), key: readFileSync(join(certs2, 'client2.key')) };
  const sign1 = es256Signer(fx.jwtKeyPem, fx.kid);
  const sign2 = es256Signer(readFileSync(join(certs2, 'jwt.key'), 'utf8'), firstKid(join(certs2, 'jwks.json')));
  const claims = (sub: string): { iss: string; sub: string; aud: string; ttlSeconds: number } => ({ iss: BENCH_ISSUER, sub, aud: BENCH_AUDIENCE, ttlSeconds: 3600 });
  // A fresh token per probe: one jti seen from two certificates would (rightly) raise a token-replay alert.
  const userToken = (): string => sign1(claims('user-1'));

  // A second CRL slot, holding a copy of CA 1's CRL until CA 2 arrives.
  copyFileSync(c('ca.crl'), c('next-ca.crl'));
  const mg = await startFixtureMeshgate(fx, { crl: '[certs/ca.crl, certs/next-ca.crl]', cores: values['meshgate-cores'], ...(values.workers ? { workers: values.workers } : {}) });
  await warmUp(fx, mg.port);
  const rate = Number(values.rate);
  const duration = Number(values.duration);
  log(`bench:reload: ${rate} req/s open loop for ${duration} s over ${values.connections} connections; pinning ${PINNING ? `on (meshgate core ${values['meshgate-cores']}, load+upstream core 1)` : 'OFF'}`);

  const failures: { ms: number; what: string }[] = [];
  const windows: Window[] = [];
  const loadStart = performance.now();
  const loadDone: Promise<LoadResult> = runLoad({
    url: `https://127.0.0.1:${mg.port}/api/1/items`, connections: Number(values.connections), warmup: 1, duration,
    args: [...fx.tlsArgs, '--tokens', fx.tokensFile, '--rate', String(rate), '--fail-log', '--progress', '2'],
    onLine: (l) => {
      const m = /^fail: (\d+) (\S+)/.exec(l);
      if (m) failures.push({ ms: Number(m[1]), what: m[2] as string });
      else if (l.startsWith('progress: ')) windows.push(JSON.parse(l.slice(10)) as Window);
      else process.stderr.write(`${l}\n`);
    },
  });

  const steps: StepResult[] = [];
  const step = async (name: string, at: number, notYet: () => Promise<boolean>, change: () => void, inUse: () => Promise<boolean>): Promise<void> => {
    const wait = at * 1000 - (performance.now() - loadStart);
    if (wait > 0) await sleep(wait);
    const notYetBefore = await notYet();
    const t0 = performance.now();
    change();
    const ms = await until(t0, inUse);
    const atSecond = (t0 - loadStart) / 1000;
    steps.push({ name, notYetBefore, ...(ms !== undefined ? { msUntilInUse: ms } : {}), atSecond, passed: notYetBefore && ms !== undefined && ms < GOAL_MS });
    log(`  ${name} at ${atSecond.toFixed(1)} s: ${ms === undefined ? `NOT in use after ${PROBE_TIMEOUT_MS} ms` : `in use after ${ms.toFixed(0)} ms`}${notYetBefore ? '' : ' (probe passed BEFORE the change: invalid)'}`);
  };
  const gap = Math.max(6, Math.floor((duration - 6) / 4));

  // 1. Server certificate: a new gateway cert from the same CA (key first, then cert, both renamed into place).
  const ca1 = { certPem: readFileSync(c('ca.crt'), 'utf8'), keyPem: readFileSync(c('ca.key'), 'utf8') };
  const gw = issueCert({ ca: ca1, commonName: 'meshgate', spiffeIds: [gatewaySpiffeId('mesh.local')], dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], serverAuth: true, clientAuth: true, days: 365 });
  const newSerial = normalizeSerialHex(gw.serialNumber);
  await step('server certificate', 5, async () => (await serialSeen(mg.port, tlsCert)) !== newSerial, () => {
    writeFileAtomic(c('gateway.key'), gw.keyPem, 0o600);
    writeFileAtomic(c('gateway.crt'), gw.certPem);
  }, async () => (await serialSeen(mg.port, tlsCert)) === newSerial);

  // 2. CA bundle: CA 1 re-written with CA 2 appended; a client of CA 2 must get in.
  await step('client CA bundle', 5 + gap, async () => (await statusOf(mg.port, tls2, '/api/0/items', userToken())) !== 200, () => {
    writeFileAtomic(c('next-ca.crl'), readFileSync(join(certs2, 'ca.crl'), 'utf8'));
    writeFileAtomic(c('ca.crt'), `${ca1.certPem.trim()}\n${readFileSync(join(certs2, 'ca.crt'), 'utf8').trim()}\n`);
  }, async () => (await statusOf(mg.port, tls2, '/api/0/items', userToken())) === 200);

  // 3. JWKS: key 2 added beside key 1; tokens minted with key 2 must be accepted.
  const jwks = { keys: [...JSON.parse(readFileSync(c('jwks.json'), 'utf8')).keys, ...JSON.parse(readFileSync(join(certs2, 'jwks.json'), 'utf8')).keys] };
  const token2 = (): string => sign2(claims('user-1'));
  await step('JWKS (second key)', 5 + 2 * gap, async () => (await statusOf(mg.port, tlsJwks, '/api/0/items', token2())) !== 200, () => {
    writeFileAtomic(c('jwks.json'), `${JSON.stringify(jwks, null, 2)}\n`);
  }, async () => (await statusOf(mg.port, tlsJwks, '/api/0/items', token2())) === 200);

  // 4. Policy: a rule added that grants role-0 a new path.
  const policy = readFileSync(join(dir, 'policy.csv'), 'utf8');
  await step('policy (rule added)', 5 + 3 * gap, async () => (await statusOf(mg.port, tlsPolicy, '/reload/items', userToken())) !== 200, () => {
    writeFileAtomic(join(dir, 'policy.csv'), `p, role-0, /reload/*, GET, allow\n${policy}`);
  }, async () => (await statusOf(mg.port, tlsPolicy, '/reload/items', userToken())) === 200);

  const load = await loadDone;
  const totalSent = load.requests + load.errors;
  const achieved = totalSent / load.seconds;
  const warnings = mg.logs.filter((l) => /"level":(4|5|6)\d/.test(l)).map((l) => l.slice(0, 300));
  await stop(mg.child, 20_000);
  await stop(fx.upstream);
  const rateHeld = load.shed === 0 && achieved >= 0.95 * rate;
  const report = {
    rate, seconds: load.seconds, achievedRps: achieved, rateHeld, requests: load.requests, p50: load.p50, p99: load.p99, max: load.max,
    failedRequests: failures.length, failuresByKind: failures.reduce<Record<string, number>>((m, f) => ({ ...m, [f.what]: (m[f.what] ?? 0) + 1 }), {}),
    firstFailuresAtMs: failures.slice(0, 10).map((f) => f.ms), shed: load.shed, steps, latencyWindows: windows, meshgateWarnings: warnings,
    passed: failures.length === 0 && steps.length === 4 && steps.every((s) => s.passed),
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(`
steady load: ${rate} req/s target, ${achieved.toFixed(0)} req/s completed${rateHeld ? '' : ' (TARGET RATE NOT HELD: the server or the load core was saturated)'}, p50 ${load.p50.toFixed(2)} ms, p99 ${load.p99.toFixed(2)} ms
failed requests: ${failures.length}${failures.length ? ` ${JSON.stringify(report.failuresByKind)}` : ''}   (goal 0)
${steps.map((s) => `${s.name.padEnd(22)} in use after ${s.msUntilInUse === undefined ? '  never' : `${s.msUntilInUse.toFixed(0).padStart(5)} ms`}   (goal < ${GOAL_MS} ms) ${s.passed ? 'ok' : 'FAILED'}`).join('\n')}
latency per 2 s window (t s: p99/max ms): ${windows.map((w) => `${w.t}: ${w.p99.toFixed(1)}/${w.max.toFixed(0)}`).join(', ')}
meshgate warnings/errors logged: ${warnings.length}${warnings.length ? `\n  ${warnings.slice(0, 5).join('\n  ')}` : ''}
verdict: ${report.passed ? 'PASS' : 'FAIL'}
`);
  }
  if (!report.passed) exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = exitCode;
