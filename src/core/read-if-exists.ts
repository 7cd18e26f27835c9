/**
 * The text of `file`, or undefined when it does not exist. Any other failure
 * (permissions, I/O) throws: for cursors and checkpoints "missing" means
 * "start fresh", but "unreadable" must never be mistaken for it.
 */
import { readFile } from 'node:fs/promises';

export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
