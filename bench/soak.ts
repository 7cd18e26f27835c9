/**
 * `npm run bench:soak` — a long steady open-loop load (default 5,000
 * requests/s for 10 minutes) through one meshgate, sampling meshgate's RSS
 * and open file descriptors (/proc/PID/fd: sockets, files, pipes) every 10 s.
 *
 * Verdict "flat" when, against the first sample after warm-up (the first
 * minute, or a quarter of a shorter run):
 *   RSS  end <= warm × 1.10 + 20 MB
 *   fds  end <= warm × 1.05 + 10
 * and no request failed (any non-2xx or socket error counts).
 *
 *   npm run bench:soak -- [--minutes 10] [--rate 5000] [--interval 10] [--connections 50] [--json]
 *     [--workers N] [--meshgate-cores 0]
 *
 * Exit status 1 when not flat or when requests failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { coreBusySeconds, cpuSeconds, fdCount, parseCores, PINNING, rssMb, stop } from './harness/proc.ts';
import { runLoad } from './harness/run-load.ts';
import { createFixture, startFixtureMeshgate, warmUp } from './harness/setup.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' }, rate: { type: 'string', default: '5000' }, interval: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' }, json: { type: 'boolean', default: false }, workers: { type: 'string' },
    'meshgate-cores': { type: 'string', default: '0' },
  },
});
const log = (s: string): void => { if (!values.json) process.stderr.write(`${s}\n`); };
const seconds = Math.round(Number(values.minutes) * 60);
const intervalS = Number(values.interval);
if (!(seconds >= 2 * intervalS)) throw new Error('--minutes must cover at least two sampling intervals');
const warmupS = Math.min(60, Math.round(seconds / 4));

/**
 * One sample: meshgate's RSS and fds, its CPU use and other processes' use of
 * its cores over the last interval (%), how busy the load core was (load
 * generator + upstream + anything else: near 100% means latency was made on
 * the client side), and the load's latency in that interval.
 */
interface Sample { t: number; rssMb: number; fds: number; cpuPct: number; otherPct: number; loadCorePct: number; p99: number; max: number }
interface Window { p99: number; max: number }
interface Series { start: number; afterWarmup: number; end: number; max: number }

const series = (xs: readonly number[], warmIndex: number): Series => ({
  start: xs[0] as number, afterWarmup: xs[warmIndex] as number, end: xs.at(-1) as number, max: Math.max(...xs),
});

const dir = mkdtempSync(join(tmpdir(), 'meshgate-soak-'));
let exitCode = 0;
try {
  const fx = await createFixture(dir);
  const mg = await startFixtureMeshgate(fx, { cores: values['meshgate-cores'], ...(values.workers ? { workers: values.workers } : {}) });
  await warmUp(fx, mg.port);
  log(`bench:soak: ${values.rate} req/s for ${seconds} s, samples every ${intervalS} s, warm-up ${warmupS} s; pinning ${PINNING ? `on (meshgate core ${values['meshgate-cores']}, load+upstream core 1)` : 'OFF'}`);
  const samples: Sample[] = [];
  const cores = parseCores(values['meshgate-cores']);
  const loadCores = [1];
  let last = { at: performance.now(), cpu: cpuSeconds(mg.pid), busy: coreBusySeconds(cores), loadBusy: coreBusySeconds(loadCores) };
  let window: Window = { p99: 0, max: 0 };
  const t0 = performance.now();
  const sample = (): void => {
    const now = { at: performance.now(), cpu: cpuSeconds(mg.pid), busy: coreBusySeconds(cores), loadBusy: coreBusySeconds(loadCores) };
    const wall = (now.at - last.at) / 1000;
    const cpu = now.cpu - last.cpu;
    const s: Sample = {
      t: Math.round((now.at - t0) / 1000), rssMb: rssMb(mg.pid), fds: fdCount(mg.pid), cpuPct: (cpu / wall) * 100,
      otherPct: Math.max(0, ((now.busy - last.busy - cpu) / (wall * cores.length)) * 100), loadCorePct: ((now.loadBusy - last.loadBusy) / wall) * 100, ...window,
    };
    last = now;
    samples.push(s);
    log(`  t=${String(s.t).padStart(4)} s  RSS ${s.rssMb.toFixed(1)} MB  fds ${s.fds}  meshgate CPU ${s.cpuPct.toFixed(0)}%  other jobs ${s.otherPct.toFixed(0)}%  load core ${s.loadCorePct.toFixed(0)}%  latency p99 ${s.p99} ms max ${s.max} ms`);
  };
  let timer: NodeJS.Timeout | undefined;
  let failed = 0;
  const load = await runLoad({
    url: `https://127.0.0.1:${mg.port}/api/1/items`, connections: Number(values.connections), warmup: 0, duration: seconds,
    args: [...fx.tlsArgs, '--tokens', fx.tokensFile, '--rate', values.rate, '--fail-log', '--progress', String(intervalS)],
    // The last sample is taken at the end marker, while the load's connections are still open.
    onMarker: (m) => { if (m === 'start') timer = setInterval(sample, intervalS * 1000); else { clearInterval(timer); sample(); } },
    onLine: (l) => {
      if (l.startsWith('fail: ')) failed++;
      else if (l.startsWith('progress: ')) window = JSON.parse(l.slice(10)) as Window;
      else process.stderr.write(`${l}\n`);
    },
  });
  await stop(mg.child, 20_000);
  await stop(fx.upstream);

  const warmIndex = Math.max(0, samples.findIndex((s) => s.t >= warmupS));
  const rss = series(samples.map((s) => s.rssMb), warmIndex);
  const fds = series(samples.map((s) => s.fds), warmIndex);
  const rssFlat = rss.end <= rss.afterWarmup * 1.1 + 20;
  const fdsFlat = fds.end <= fds.afterWarmup * 1.05 + 10;
  const achieved = (load.requests + load.errors) / load.seconds;
  const busy = samples.filter((x) => x.otherPct > 10).length;
  const report = {
    rate: Number(values.rate), seconds: load.seconds, achievedRps: achieved, rateHeld: load.shed === 0 && achieved >= 0.95 * Number(values.rate),
    requests: load.requests, failedRequests: failed, p50: load.p50, p99: load.p99, rssMb: rss, fds, rssFlat, fdsFlat,
    verdict: rssFlat && fdsFlat && failed === 0 ? 'flat' : 'NOT flat', samplesWithOtherJobsOver10Pct: busy, samples,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    const f = (x: Series, d: number): string => `start ${x.start.toFixed(d)}, after warm-up ${x.afterWarmup.toFixed(d)}, end ${x.end.toFixed(d)}, max ${x.max.toFixed(d)}`;
    process.stdout.write(`
steady load: ${report.rate} req/s target, ${achieved.toFixed(0)} req/s completed${report.rateHeld ? '' : ' (TARGET RATE NOT HELD: ${load.shed} sends shed at the in-flight cap)'}, ${load.requests} requests, p50 ${load.p50.toFixed(2)} ms, p99 ${load.p99.toFixed(2)} ms, failed ${failed}
RSS MB: ${f(rss, 1)}  → ${rssFlat ? 'flat' : 'GROWING'} (end <= after-warm-up × 1.10 + 20 MB)
fds:    ${f(fds, 0)}  → ${fdsFlat ? 'flat' : 'GROWING'} (end <= after-warm-up × 1.05 + 10)
samples where other jobs used > 10% of meshgate's core: ${busy} of ${samples.length}
verdict: ${report.verdict}
`);
  }
  if (report.verdict !== 'flat') exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = exitCode;
