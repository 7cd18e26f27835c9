/**
 * Child processes for the benchmarks: CPU pinning with taskset, reading a
 * port from a child's first stdout line, and /proc readings (CPU time, RSS,
 * open file descriptors) of the process under test.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** The repository root (bench/harness/..). */
export const ROOT = resolve(import.meta.dirname, '../..');

/** True when `taskset` works here, so "one core" in a result means one core. */
export const PINNING = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** Whether `cmd` is an executable on PATH. */
export function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Spawns `cmd` pinned to `cores` (e.g. "0", "1", "0-1") when taskset works. */
export function spawnPinned(cmd: readonly string[], cores: string, opts: SpawnOptions = {}): ChildProcess {
  const argv = PINNING ? ['taskset', '-c', cores, ...cmd] : [...cmd];
  return spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Resolves with the first stdout line of `child`; rejects if it exits first. */
export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((res, rej) => {
    let buf = '';
    child.stdout?.on('data', (c: Buffer) => { buf += c; const i = buf.indexOf('\n'); if (i >= 0) res(buf.slice(0, i)); });
    child.once('exit', (code) => rej(new Error(`${child.spawnfile} exited ${code} before printing`)));
  });
}

/** Resolves when `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** Sends SIGTERM and waits up to `ms` for the exit, then SIGKILL. */
export async function stop(child: ChildProcess, ms = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited(child);
  clearTimeout(t);
}

/** The process and its descendants (cluster workers count as the server under test). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const kids = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    } catch { /* gone */ }
  }
  return out;
}

// CLK_TCK is 100 on Linux (sysconf(_SC_CLK_TCK)); node has no binding for it.
const CLK_TCK = 100;

/** CPU seconds (user + system, all threads) of a process tree from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
    } catch { /* exited between listing and reading */ }
  }
  return total;
}

/** Resident set size in MB of a process tree (sum of VmRSS). */
export function rssMb(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try { kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0); } catch { /* gone */ }
  }
  return kb / 1024;
}

/** Open file descriptors (sockets, files, pipes) of a process tree. */
export function fdCount(pid: number): number {
  let n = 0;
  for (const p of processTree(pid)) {
    try { n += readdirSync(`/proc/${p}/fd`).length; } catch { /* gone */ }
  }
  return n;
}

/** Runs the meshgate CLI synchronously; throws with its stderr when it fails. */
export function cli(args: readonly string[]): string {
  const r = spawnSync(process.execPath, [resolve(ROOT, 'bin/meshgate.js'), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshgate ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The cores named by a taskset list ("0", "0-1", "0,2"). */
export function parseCores(list: string): number[] {
  return list.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

/**
 * Busy CPU seconds (user, nice, system, irq, softirq, steal) of the given
 * cores since boot, from /proc/stat. Compared with the server's own CPU time
 * over a window it shows how much of "its" core other jobs took.
 */
export function coreBusySeconds(cores: readonly number[]): number {
  let total = 0;
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m || !cores.includes(Number(m[1]))) continue;
    const f = (m[2] as string).trim().split(/\s+/).map(Number);
    total += ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / CLK_TCK;
  }
  return total;
}
