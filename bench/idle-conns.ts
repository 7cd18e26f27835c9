/**
 * `npm run bench:idle` — meshgate's memory with many idle keep-alive mTLS
 * connections: opens 1,000 and then 10,000 connections (each completes one
 * authorized request, so it is a real HTTP keep-alive connection, then stays
 * idle) and reports meshgate's RSS and open file descriptors with none, with
 * each count, and after they are closed.
 *
 * 10,000 connections need 10,000+ file descriptors on each side. meshgate is
 * started under `prlimit --nofile=65536` when the inherited limit is lower
 * (raising the hard limit needs CAP_SYS_RESOURCE); this process raises its own soft limit to its hard limit (Node does
 * that at start-up) and the run stops with a clear message when that is too
 * low (`ulimit -n 30000` before running, or run as root). listen.idleTimeout
 * is raised to 10m so meshgate does not close the idle connections mid-run.
 *
 *   npm run bench:idle -- [--counts 1000,10000] [--settle 3] [--json] [--meshgate-cores 0]
 *     [--target bare]   the same against bench/bare-proxy.ts: Node's own cost per TLS connection
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { fdCount, firstLine, onPath, PINNING, ROOT, rssMb, sleep, spawnPinned, stop } from './harness/proc.ts';
import { createFixture, startFixtureMeshgate, warmUp } from './harness/setup.ts';

const { values } = parseArgs({
  options: {
    counts: { type: 'string', default: '1000,10000' }, settle: { type: 'string', default: '3' }, json: { type: 'boolean', default: false },
    'meshgate-cores': { type: 'string', default: '0' }, target: { type: 'string', default: 'meshgate' },
  },
});
const log = (s: string): void => { if (!values.json) process.stderr.write(`${s}\n`); };
const counts = values.counts.split(',').map(Number).sort((a, b) => a - b);
const most = counts.at(-1) ?? 0;
const NOFILE = 65_536;

/** This process's soft RLIMIT_NOFILE (what `ulimit -n` says in a child shell, which inherits it). */
function ownFdLimit(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const n = r.stdout.trim();
  return n === 'unlimited' ? Number.POSITIVE_INFINITY : Number(n);
}

const dir = mkdtempSync(join(tmpdir(), 'meshgate-idle-'));
const sockets: TLSSocket[] = [];
let exitCode = 0;
try {
  if (ownFdLimit() < most + 200) throw new Error(`this process may open only ${ownFdLimit()} files; ${most} connections need more: raise it (ulimit -n ${most + 1000}) or pass smaller --counts`);
  const fx = await createFixture(dir);
  // Raise meshgate's limit only when the inherited one is too low (prlimit needs CAP_SYS_RESOURCE to go past the hard limit).
  const prefix = ownFdLimit() < most + 1000 && onPath('prlimit') ? ['prlimit', `--nofile=${NOFILE}:${NOFILE}`] : [];
  let server: { pid: number; port: number; child: ChildProcess };
  if (values.target === 'bare') {
    const child = spawnPinned([...prefix, process.execPath, join(ROOT, 'bench/bare-proxy.ts'), join(fx.certs, 'gateway.crt'), join(fx.certs, 'gateway.key'), join(fx.certs, 'ca.crt'), `http://127.0.0.1:${fx.upstreamPort}`], values['meshgate-cores']);
    server = { child, pid: child.pid as number, port: Number(await firstLine(child)) };
  } else {
    server = await startFixtureMeshgate(fx, { cores: values['meshgate-cores'], idleTimeout: '10m', prefix });
  }
  const mg = server;
  const limit = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${mg.pid}/limits`, 'utf8'))?.[1];
  log(`bench:idle: ${values.target} may open ${limit} files; pinning ${PINNING ? `on (meshgate core ${values['meshgate-cores']})` : 'OFF'}`);
  // Warm the request path (JIT, caches, upstream pool) the way a serving sidecar is, then measure.
  await warmUp(fx, mg.port);
  await sleep(Number(values.settle) * 1000);

  const tls = { ca: readFileSync(join(fx.certs, 'ca.crt')), cert: readFileSync(join(fx.certs, 'client.crt')), key: readFileSync(join(fx.certs, 'client.key')) };
  const lines = readFileSync(fx.tokensFile, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]);
  let failed = 0;
  /** Opens one connection, completes one request on it, and leaves it open and idle. */
  const open = (i: number): Promise<void> => new Promise((res) => {
    const [path, token] = lines[i % lines.length] as [string, string];
    const s = connect({ host: '127.0.0.1', port: mg.port, servername: 'localhost', ...tls }, () => {
      s.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${token}\r\n\r\n`);
    });
    let head = '';
    const onData = (c: Buffer): void => {
      head += c.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        s.off('data', onData);
        if (!head.startsWith('HTTP/1.1 200')) failed++;
        sockets.push(s);
        res();
      }
    };
    s.on('data', onData);
    s.once('error', () => { failed++; res(); });
  });

  const measure = (connections: number): { connections: number; rssMb: number; fds: number } => ({ connections, rssMb: rssMb(mg.pid), fds: fdCount(mg.pid) });
  const rows = [measure(0)];
  log(`  0 connections: RSS ${rows[0]!.rssMb.toFixed(1)} MB, fds ${rows[0]!.fds}`);
  for (const n of counts) {
    const t = performance.now();
    for (let i = sockets.length; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => open(i + j)));
    await sleep(Number(values.settle) * 1000);
    const open_ = sockets.filter((s) => !s.destroyed).length;
    rows.push(measure(open_));
    log(`  ${open_} idle connections (opened in ${((performance.now() - t) / 1000).toFixed(1)} s, ${failed} failed so far): RSS ${rows.at(-1)!.rssMb.toFixed(1)} MB, fds ${rows.at(-1)!.fds}`);
  }
  for (const s of sockets.splice(0)) s.destroy();
  await sleep(Number(values.settle) * 1000);
  const after = measure(0);
  log(`  all closed: RSS ${after.rssMb.toFixed(1)} MB, fds ${after.fds}`);
  await stop(mg.child, 20_000);
  await stop(fx.upstream);

  const base = rows[0]!;
  const report = {
    fdLimit: Number(limit), failedConnections: failed, rows: rows.map((r) => ({ ...r, kbPerConnection: r.connections ? ((r.rssMb - base.rssMb) * 1024) / r.connections : undefined })), afterClose: after,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    process.stdout.write(`
idle keep-alive mTLS connections   ${values.target.padStart(8)} RSS MB   fds     KB/connection over none
${report.rows.map((r) => `${String(r.connections).padStart(32)}   ${r.rssMb.toFixed(1).padStart(15)}   ${String(r.fds).padStart(5)}   ${r.kbPerConnection === undefined ? '-' : r.kbPerConnection.toFixed(1)}`).join('\n')}
${'after closing them'.padStart(32)}   ${after.rssMb.toFixed(1).padStart(15)}   ${String(after.fds).padStart(5)}
failed connections: ${failed}
`);
  }
  if (failed > 0) exitCode = 1;
} finally {
  for (const s of sockets) s.destroy();
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = exitCode;
