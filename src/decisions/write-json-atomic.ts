/**
 * Atomic JSON file replacement for the analyzer's state files
 * (decisions.json, cursor.json): readers — the gateway's quarantine watcher,
 * a restarting analyzer — see the old file or the new one, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** fsyncs a folder so a rename in it survives a crash (POSIX only; a no-op where folders cannot be opened). */
export async function syncFolder(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Windows and some file systems refuse fsync on a folder: the rename is still atomic.
  } finally {
    await fh?.close().catch(() => {});
  }
}

/**
 * Writes `text` to `file` via a temporary file in the same folder: write,
 * fsync, rename, fsync the folder. The temporary file is created with `mode`
 * from the start ('wx'), never through a wider mode; when running as root,
 * the replaced file's owner is kept.
 */
export async function writeTextAtomic(file: string, text: string, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const prior = await stat(file).catch(() => undefined);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      // `sudo meshgate decisions add` must not leave a root-owned file the
      // gateway can no longer read: keep the owner of the file we replace.
      if (prior && typeof process.getuid === 'function' && process.getuid() === 0) {
        await fh.chown(prior.uid, prior.gid).catch(() => {});
      }
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await syncFolder(dir);
}

/** `writeTextAtomic` of `JSON.stringify(value)` plus a newline. */
export function writeJsonAtomic(file: string, value: unknown, mode = 0o600): Promise<void> {
  return writeTextAtomic(file, `${JSON.stringify(value)}\n`, mode);
}
