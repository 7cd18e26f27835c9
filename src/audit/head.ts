/**
 * HEAD.json, the checkpoint: the newest record known to be durable. It is
 * what makes removal of the newest records detectable (docs/audit-events.md).
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { segmentNumber } from './chain.ts';
import { readTextIfExists } from '../core/read-if-exists.ts';

/** The checkpoint file in the audit dir. */
export const HEAD_FILE = 'HEAD.json';

const HEX64_RE = /^[0-9a-f]{64}$/;

/** The checkpoint in HEAD.json. */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
  readonly segment: string;
  readonly time: string;
}

/** Validates a parsed HEAD.json; returns a reason string when it is not a checkpoint. */
export function checkHead(value: unknown): AuditHead | string {
  if (typeof value !== 'object' || value === null) return 'HEAD is not a JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v['seq'] !== 'number' || !Number.isSafeInteger(v['seq']) || v['seq'] < 0) return 'HEAD "seq" is not a non-negative integer';
  if (typeof v['hash'] !== 'string' || !HEX64_RE.test(v['hash'])) return 'HEAD "hash" is not a 64-digit hex hash';
  if (typeof v['segment'] !== 'string' || segmentNumber(v['segment']) === undefined) return 'HEAD "segment" is not a segment file name';
  if (typeof v['time'] !== 'string') return 'HEAD "time" is missing';
  return { seq: v['seq'], hash: v['hash'], segment: v['segment'], time: v['time'] };
}

/**
 * Reads `dir/HEAD.json`: undefined when absent, a string reason when it is
 * present but not a valid checkpoint. Other I/O errors throw.
 */
export async function readHead(dir: string): Promise<AuditHead | string | undefined> {
  const text = await readTextIfExists(path.join(dir, HEAD_FILE));
  if (text === undefined) return undefined;
  try {
    return checkHead(JSON.parse(text));
  } catch {
    return 'HEAD is not valid JSON';
  }
}

/** fsyncs a directory so a created or renamed entry survives a crash; a no-op where unsupported. */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  } finally {
    await fh?.close();
  }
}

/** Atomically replaces `dir/HEAD.json`: tmp file, fsync, rename, dir fsync. */
export async function writeHead(dir: string, head: AuditHead): Promise<void> {
  const file = path.join(dir, HEAD_FILE);
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(head)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await syncDir(dir);
}
