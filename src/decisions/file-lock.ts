/**
 * A short-held lock around read-modify-write of decisions.json. Two kinds of
 * writers share that file — the analyzer (possibly a worker thread of the
 * gateway) and `meshgate decisions` in another process — and without a lock
 * one would silently overwrite the other's change.
 *
 * The lock is a `<file>.lock` created with O_EXCL holding "pid token". It is
 * held for milliseconds; one left behind by a crash is taken over when its
 * process is gone or when it is older than `staleMs` (a live holder never
 * keeps it that long). Inside one thread, callers queue on a promise chain
 * first so they do not spin against each other.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat, unlink, writeFile } from 'node:fs/promises';

export interface FileLockOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** A lock file older than this is considered abandoned (default 30 s). */
  readonly staleMs?: number;
}

const queues = new Map<string, Promise<unknown>>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryTakeOver(lockFile: string, staleMs: number): Promise<void> {
  let text: string;
  let mtimeMs: number;
  try {
    text = await readFile(lockFile, 'utf8');
    mtimeMs = (await stat(lockFile)).mtimeMs;
  } catch {
    return; // released meanwhile
  }
  const pid = Number.parseInt(text, 10);
  // Same pid may be another thread of this process: only age proves it abandoned.
  const deadHolder = Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid);
  if (deadHolder || Date.now() - mtimeMs > staleMs) {
    // Re-read right before unlinking: only remove the lock we judged stale.
    const again = await readFile(lockFile, 'utf8').catch(() => undefined);
    if (again === text) await unlink(lockFile).catch(() => {});
  }
}

async function acquire(lockFile: string, opts: FileLockOptions): Promise<() => Promise<void>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const staleMs = opts.staleMs ?? 30_000;
  const token = `${process.pid} ${randomBytes(8).toString('hex')}\n`;
  const deadline = Date.now() + timeoutMs;
  let wait = 5;
  for (;;) {
    try {
      await writeFile(lockFile, token, { flag: 'wx', mode: 0o600 });
      return async () => {
        const cur = await readFile(lockFile, 'utf8').catch(() => undefined);
        if (cur === token) await unlink(lockFile).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    await tryTakeOver(lockFile, staleMs);
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lockFile}`);
    await new Promise((r) => setTimeout(r, wait + Math.random() * wait));
    wait = Math.min(wait * 2, 100);
  }
}

/** Runs `fn` while holding `<file>.lock`; the lock is released however `fn` ends. */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, opts: FileLockOptions = {}): Promise<T> {
  const lockFile = `${file}.lock`;
  const prev = queues.get(lockFile) ?? Promise.resolve();
  const run = prev.catch(() => {}).then(async () => {
    const release = await acquire(lockFile, opts);
    try {
      return await fn();
    } finally {
      await release();
    }
  });
  const tail = run.catch(() => {});
  queues.set(lockFile, tail);
  void tail.then(() => {
    if (queues.get(lockFile) === tail) queues.delete(lockFile);
  });
  return run;
}
