/**
 * Acknowledgements of alerts: `<analyzer.dir>/acks.json`, changed only by
 * read-modify-write under a lock and replaced atomically (the same helpers
 * as decisions.json), so two admins acknowledging at once both count and a
 * reader never sees half a file. The analyzer never reads it: acknowledging
 * is a reviewer's note, not a detection input.
 *
 *   { "v": 1, "acks": { "<alert id>": { "at": ISO, "by": "token" | "spiffe://…", "note"?: "…", "falsePositive"?: {…} } } }
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { systemClock, type Clock } from '../../core/clock.ts';
import { withFileLock } from '../../decisions/file-lock.ts';
import { writeJsonAtomic } from '../../decisions/write-json-atomic.ts';

/** File name inside the analyzer state folder. */
export const ACKS_FILE = 'acks.json';

/** One acknowledgement. */
export interface Ack {
  readonly at: string;
  /** Who: `token` (signed in with the admin token) or the admin's SPIFFE ID. */
  readonly by: string;
  readonly note?: string;
  /** Set when the alert was marked a false positive: the exception created and the decision removed. */
  readonly falsePositive?: { readonly exceptionId: string; readonly removedDecisionId: string | null };
}

interface AcksDoc {
  readonly v: 1;
  readonly acks: Readonly<Record<string, Ack>>;
}

/** acks.json exists but is not an acks document: refuse to overwrite what we cannot read. */
export class AcksFileError extends Error {
  constructor(file: string, why: string) {
    super(`${file}: ${why}`);
    this.name = 'AcksFileError';
  }
}

function validate(file: string, v: unknown): AcksDoc {
  if (typeof v !== 'object' || v === null) throw new AcksFileError(file, 'not a JSON object');
  const d = v as { v?: unknown; acks?: unknown };
  if (d.v !== 1) throw new AcksFileError(file, 'unknown version (expected "v": 1)');
  if (typeof d.acks !== 'object' || d.acks === null || Array.isArray(d.acks)) throw new AcksFileError(file, '"acks" must be an object');
  for (const [id, a] of Object.entries(d.acks as Record<string, unknown>)) {
    const x = a as { at?: unknown; by?: unknown } | null;
    if (typeof x !== 'object' || x === null || typeof x.at !== 'string' || typeof x.by !== 'string') throw new AcksFileError(file, `ack of ${id} lacks "at" or "by"`);
  }
  return d as AcksDoc;
}

/** Reads and changes acks.json in one analyzer state folder. */
export class AckStore {
  readonly file: string;
  readonly #clock: Clock;

  constructor(analyzerDir: string, opts: { clock?: Clock } = {}) {
    this.file = path.join(analyzerDir, ACKS_FILE);
    this.#clock = opts.clock ?? systemClock;
  }

  /** Every acknowledgement by alert id (empty when the file does not exist yet). */
  async all(): Promise<Readonly<Record<string, Ack>>> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new AcksFileError(this.file, 'not valid JSON');
    }
    return validate(this.file, v).acks;
  }

  /** Records (or replaces) the acknowledgement of `alertId`; returns it. */
  async ack(alertId: string, by: string, extra: { note?: string; falsePositive?: Ack['falsePositive'] } = {}): Promise<Ack> {
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    return withFileLock(this.file, async () => {
      const acks = await this.all();
      const a: Ack = {
        at: new Date(this.#clock.now()).toISOString(), by,
        ...(extra.note !== undefined ? { note: extra.note } : {}),
        ...(extra.falsePositive !== undefined ? { falsePositive: extra.falsePositive } : {}),
      };
      const doc: AcksDoc = { v: 1, acks: { ...acks, [alertId]: a } };
      await writeJsonAtomic(this.file, doc);
      return a;
    });
  }
}
