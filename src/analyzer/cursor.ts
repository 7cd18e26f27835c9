/**
 * `<analyzer.dir>/cursor.json`: how far the analyzer got, and the engine
 * state at exactly that point, so a restart continues as if it had never
 * stopped. Written atomically, and only after the alerts raised up to that
 * point are fsynced in alerts.jsonl (whose length then is `alertsOffset`).
 */
import path from 'node:path';
import { writeJsonAtomic } from '../decisions/write-json-atomic.ts';
import { readTextIfExists } from '../core/read-if-exists.ts';

/** File name inside the analyzer state folder. */
export const CURSOR_FILE = 'cursor.json';

export interface Cursor {
  readonly v: 1;
  /** Last processed seq of the first followed audit dir (the only one in embedded mode). */
  readonly seq: number;
  /** Last processed seq per followed audit dir (absolute path). */
  readonly dirs: Readonly<Record<string, number>>;
  /** `DetectionEngine.snapshot()` after processing exactly those records. */
  readonly engineState: unknown;
  /** Length of alerts.jsonl when the cursor was written: alerts after it may be re-raised by re-processing. */
  readonly alertsOffset: number;
  readonly updatedAt: string;
}

/** Path of the cursor file in `dir`. */
export function cursorPath(dir: string): string {
  return path.join(dir, CURSOR_FILE);
}

/**
 * Reads the cursor; undefined when there is none yet. A cursor that exists but
 * cannot be read throws: starting over would re-raise every alert, and
 * silently skipping ahead would miss attacks — an operator must decide.
 */
export async function readCursor(dir: string): Promise<Cursor | undefined> {
  const file = cursorPath(dir);
  const text = await readTextIfExists(file);
  if (text === undefined) return undefined;
  let c: Partial<Cursor>;
  try {
    c = JSON.parse(text) as Partial<Cursor>;
  } catch {
    throw new Error(`${file} is not valid JSON; move it aside to re-analyze the log from the start`);
  }
  const dirsOk = typeof c.dirs === 'object' && c.dirs !== null && Object.values(c.dirs).every((s) => Number.isSafeInteger(s) && s >= 0);
  if (c.v !== 1 || !Number.isSafeInteger(c.seq) || !dirsOk || !Number.isSafeInteger(c.alertsOffset) || (c.alertsOffset as number) < 0) {
    throw new Error(`${file} is not an analyzer cursor; move it aside to re-analyze the log from the start`);
  }
  return c as Cursor;
}

/** Replaces the cursor atomically. */
export function writeCursor(dir: string, cursor: Cursor): Promise<void> {
  return writeJsonAtomic(cursorPath(dir), cursor);
}
