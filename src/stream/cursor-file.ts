/**
 * The shipper's persisted cursor: the last audit record JetStream
 * acknowledged, where the next one starts, and the log id. Written by
 * temp file + rename (a crash leaves the old cursor or the new one, never
 * half of one). A cursor that lags behind the stream is harmless — the
 * shipper reconciles with the stream and JetStream drops duplicates by
 * event id; a cursor that ran ahead would lose events, so it is only ever
 * advanced after acknowledgements.
 */
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { LogPosition } from './log-tail.ts';
import { readTextIfExists } from '../core/read-if-exists.ts';

/** The cursor file's content. */
export interface ShipperCursor {
  readonly v: 1;
  /** Log id the cursor belongs to (subjects carry it). */
  readonly logId: string;
  /** seq of the last acknowledged record (0: none yet). */
  readonly seq: number;
  /** Event id of that record: a log that was rewritten under the cursor is detected by it. */
  readonly id: string;
  /** Where record seq + 1 starts (a hint; the log is searched when it is wrong). */
  readonly next: LogPosition;
}

/** Default cursor file beside the segments (the audit verifier ignores non-segment files). */
export const CURSOR_FILE = 'nats-cursor.json';

const cursorSchema = z.strictObject({
  v: z.literal(1),
  logId: z.string().regex(/^[0-9a-f]{12}$/),
  seq: z.number().int().min(0),
  id: z.string(),
  next: z.strictObject({ segment: z.number().int().min(0), offset: z.number().int().min(0) }),
});

/** Reads the cursor; undefined when there is none. A damaged file is an Error naming it (never silently reset). */
export async function readCursor(file: string): Promise<ShipperCursor | undefined> {
  const text = await readTextIfExists(file);
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file}: shipper cursor is not valid JSON (delete it to re-ship from the stream's last event of this log)`);
  }
  const r = cursorSchema.safeParse(parsed);
  if (!r.success) throw new Error(`${file}: not a shipper cursor (${r.error.issues[0]?.message ?? 'invalid'})`);
  return r.data;
}

/** Replaces the cursor file atomically (0600). Durable by rename; fsync is skipped on purpose: a lagging cursor only costs a reconcile. */
export async function writeCursor(file: string, cursor: ShipperCursor): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(cursor)}\n`);
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}
