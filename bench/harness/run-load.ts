/**
 * Runs bench/load.ts (pinned to the load core) against a URL and, when given
 * the server's pid, reads the server's CPU time over exactly the measured
 * window (between load.ts's measure:start and measure:end markers).
 */
import { join } from 'node:path';
import { coreBusySeconds, cpuSeconds, exited, parseCores, ROOT, spawnPinned } from './proc.ts';

/** What bench/load.ts prints, plus the server's CPU per request. */
export interface LoadResult {
  requests: number;
  errors: number;
  errorCodes: Record<string, number>;
  shed: number;
  statuses: Record<string, number>;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  tokensUsed: number;
  tokensExhausted: boolean;
  /** Server CPU µs (user + system, all threads) per request over the measured window. */
  cpuUsPerReq?: number;
  /**
   * Share (%) of the server's cores used by anything but the server over the
   * window: other jobs on a shared machine. Near 0 means the numbers are clean.
   */
  otherCpuPct?: number;
  /** The same for the load core: its use by anything but the load generator and `loadSidePids`. */
  otherLoadCpuPct?: number;
}

/** Options of one load run. */
export interface LoadRun {
  readonly url: string;
  /** Extra bench/load.ts arguments (TLS files, --tokens, --rate, …). */
  readonly args: readonly string[];
  readonly connections: number;
  readonly warmup: number;
  readonly duration: number;
  /** Core list for the load generator (default "1"). */
  readonly cores?: string;
  /** Server pid whose CPU time is read over the window. */
  readonly cpuPid?: number;
  /** The server's cores (taskset list), to report how much of them other processes used. */
  readonly serverCores?: string;
  /** Processes that belong on the load core besides the load generator (the upstream). */
  readonly loadSidePids?: readonly number[];
  /** Called at the measure:start / measure:end markers (the load's connections are still open at 'end'). */
  readonly onMarker?: (m: 'start' | 'end') => void;
  /** Called with each stderr line that is not a marker (fail:/progress: lines). */
  readonly onLine?: (line: string) => void;
}

/** Runs one load and returns its parsed result. */
export async function runLoad(o: LoadRun): Promise<LoadResult> {
  const child = spawnPinned([process.execPath, join(ROOT, 'bench/load.ts'), o.url, '--connections', String(o.connections),
    '--duration', String(o.duration), '--warmup', String(o.warmup), ...o.args], o.cores ?? '1');
  let out = '';
  let err = '';
  let cpu0 = 0;
  let cpu1 = 0;
  const cores = o.serverCores ? parseCores(o.serverCores) : [];
  let busy0 = 0;
  let busy1 = 0;
  const loadCores = parseCores(o.cores ?? '1');
  const loadPids = (): number => [child.pid as number, ...(o.loadSidePids ?? [])].reduce((n, p) => n + cpuSeconds(p), 0);
  let lbusy0 = 0;
  let lbusy1 = 0;
  let lcpu0 = 0;
  let lcpu1 = 0;
  child.stdout?.on('data', (c: Buffer) => { out += c; });
  child.stderr?.on('data', (c: Buffer) => {
    err += c;
    let i: number;
    while ((i = err.indexOf('\n')) >= 0) {
      const line = err.slice(0, i);
      err = err.slice(i + 1);
      if (line === 'measure:start') {
        if (o.cpuPid) cpu0 = cpuSeconds(o.cpuPid);
        if (cores.length) busy0 = coreBusySeconds(cores);
        lbusy0 = coreBusySeconds(loadCores);
        lcpu0 = loadPids();
        o.onMarker?.('start');
      } else if (line === 'measure:end') {
        if (o.cpuPid) cpu1 = cpuSeconds(o.cpuPid);
        if (cores.length) busy1 = coreBusySeconds(cores);
        lbusy1 = coreBusySeconds(loadCores);
        lcpu1 = loadPids();
        o.onMarker?.('end');
      } else if (o.onLine) o.onLine(line);
      else process.stderr.write(`${line}\n`);
    }
  });
  await exited(child);
  if (child.exitCode !== 0) throw new Error(`load generator exited ${child.exitCode}: ${err.slice(-500)}`);
  const result = JSON.parse(out.trim()) as LoadResult;
  if (o.cpuPid && result.requests > 0) result.cpuUsPerReq = ((cpu1 - cpu0) * 1e6) / result.requests;
  if (o.cpuPid && cores.length && result.seconds > 0) {
    result.otherCpuPct = Math.max(0, ((busy1 - busy0 - (cpu1 - cpu0)) / (result.seconds * cores.length)) * 100);
  }
  if (result.seconds > 0) result.otherLoadCpuPct = Math.max(0, ((lbusy1 - lbusy0 - (lcpu1 - lcpu0)) / (result.seconds * loadCores.length)) * 100);
  return result;
}
