/**
 * Audit events by id (an event page, an alert's evidence), through the one
 * query library. Event ids are UUIDv7 (src/audit/event.ts): their first 48
 * bits are the millisecond the gateway started handling the request, the
 * same instant `time` records. So a scan limited to a window around those
 * times lets the prefilter skip nearly every line unparsed; an id not found
 * there (a foreign writer, a skewed clock) is looked for in a full scan.
 */
import type { AuditRecord } from '../../audit/event.ts';
import { queryAudit, type AuditFilter, type DamagedLine } from '../../audit/query/index.ts';

/** How far `time` may sit from the id's timestamp and still be found by the fast scan. */
const WINDOW_MS = 5 * 60_000;

/** The epoch ms in a UUIDv7, or undefined for another kind of id. */
export function uuidv7Millis(id: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7/.test(id)) return undefined;
  const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** Found events (in log order) and the ids that are not in the log. */
export interface FoundEvents {
  readonly events: AuditRecord[];
  readonly missing: string[];
  /** Damaged lines met on the way (reported, not skipped silently). */
  readonly damaged: DamagedLine[];
}

async function scan(dir: string, filter: AuditFilter, want: Set<string>, found: Map<string, AuditRecord>, damaged: DamagedLine[], signal: AbortSignal | undefined): Promise<void> {
  const q = queryAudit(dir, filter, { ...(signal ? { signal } : {}), onDamaged: (d) => { if (damaged.length < 20) damaged.push(d); } });
  for await (const hit of q) {
    const id = hit.record.id;
    if (want.has(id) && !found.has(id)) {
      found.set(id, hit.record);
      if (found.size === want.size) return;
    }
  }
}

/** Looks up `ids` in the audit log in `dir`. A missing log finds nothing; an unreadable one throws. */
export async function findEvents(dir: string, ids: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<FoundEvents> {
  const want = new Set(ids);
  const found = new Map<string, AuditRecord>();
  const damaged: DamagedLine[] = [];
  if (want.size === 0) return { events: [], missing: [], damaged };
  try {
    const times = [...want].map(uuidv7Millis);
    if (times.every((t) => t !== undefined)) {
      const ms = times as number[];
      const since = Math.min(...ms) - WINDOW_MS;
      const until = Math.max(...ms) + WINDOW_MS;
      await scan(dir, { since, until }, want, found, damaged, opts.signal);
    }
    if (found.size < want.size) await scan(dir, {}, want, found, damaged, opts.signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const events = [...found.values()].sort((a, b) => a.seq - b.seq);
  return { events, missing: ids.filter((id) => !found.has(id)), damaged };
}
