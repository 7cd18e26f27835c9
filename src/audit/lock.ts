/**
 * One writer per audit dir. Two processes appending to the same chain (e.g.
 * several workers pointed at one `audit.dir`) would interleave seq numbers
 * and break the chain for good, so the writer takes `dir/LOCK` first.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The lock file name inside the audit dir. */
export const LOCK_FILE = 'LOCK';

/** Lock files held by this process: a second writer in the same process is refused too. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates `dir/LOCK` holding this pid; a lock left by a dead process (or by
 * an earlier life of this pid, as PID 1 in a restarted container) is taken
 * over. Throws when a live process holds it. Resolves to the release function.
 */
export async function acquireDirLock(dir: string): Promise<() => Promise<void>> {
  const file = path.resolve(dir, LOCK_FILE);
  if (held.has(file)) throw new Error(`audit dir ${dir} is already open in this process`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      held.add(file);
      return async () => {
        held.delete(file);
        await unlink(file).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw new Error(`audit dir ${dir} is in use by process ${holder} (${file}); each meshgate process needs its own audit dir`);
    }
    await unlink(file).catch(() => {});
  }
  throw new Error(`could not take the audit dir lock ${file}`);
}
