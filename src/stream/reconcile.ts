/**
 * Where shipping resumes after a start, a crash or a broker outage.
 *
 * The cursor file may lag behind what JetStream stored (it is written every
 * few hundred ms, and PubAcks can be lost with the connection). Re-publishing
 * the gap is harmless while the duplicate window still remembers those event
 * ids, but an outage can outlast that window. So the shipper asks the stream
 * for the last event of *this log* on each partition subject
 * (`last_by_subj`): JetStream stores one connection's publishes in order, so
 * everything before the newest stored record was stored too, and shipping
 * resumes after it.
 *
 * Both sources are checked against the local log by event id before they
 * are trusted: after a machine crash the writer may have lost its last
 * unsynced records (at most audit.fsyncInterval) and reused their seq numbers
 * for new events; trusting the seq alone would then skip new events.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { readHead } from '../audit/head.ts';
import type { Logger } from '../core/log.ts';
import type { ShipperCursor } from './cursor-file.ts';
import { lineFields } from './line-fields.ts';
import { AuditLogTail } from './log-tail.ts';
import { auditSubject } from './subjects.ts';

/** Event id of the record with `seq` in the log in `dir`, or undefined when the log has no such record. */
export async function localIdAt(dir: string, seq: number): Promise<string | undefined> {
  if (seq <= 0) return undefined;
  const t = new AuditLogTail(dir);
  try {
    await t.seek(seq - 1);
    const [r] = await t.read(1);
    return r?.fields.seq === seq ? r.fields.id : undefined;
  } finally {
    await t.close();
  }
}

/** The cursor seq that the local log confirms (by event id); falls back to the durable checkpoint when the log was rewritten after the cursor. */
export async function confirmedCursor(dir: string, cursor: ShipperCursor | undefined, log: Logger): Promise<number> {
  if (!cursor || cursor.seq === 0) return 0;
  if ((await localIdAt(dir, cursor.seq)) === cursor.id) return cursor.seq;
  const head = await readHead(dir).catch(() => undefined);
  const durable = typeof head === 'object' ? head.seq : 0;
  const seq = Math.min(cursor.seq, durable);
  log.warn({ cursorSeq: cursor.seq, resumeAfter: seq }, 'audit log does not hold the event the shipper cursor names (records lost in a crash were rewritten); resuming from the last durable checkpoint');
  return seq;
}

/** The last record of this log that the stream holds (by seq, confirmed by id), or `base` when none is newer. */
export async function reconcileWithStream(opts: {
  jsm: JetStreamManager; stream: string; prefix: string; service: string; logId: string; partitions: number; dir: string; base: number; log: Logger;
}): Promise<number> {
  const found: { seq: number; id: string }[] = [];
  await Promise.all(Array.from({ length: opts.partitions }, async (_, p) => {
    const m = await opts.jsm.streams.getMessage(opts.stream, { last_by_subj: auditSubject(opts.prefix, opts.service, opts.logId, p) });
    if (!m) return;
    const f = lineFields(Buffer.from(m.data));
    if (f) found.push({ seq: f.seq, id: f.id });
  }));
  found.sort((a, b) => b.seq - a.seq);
  for (const c of found) {
    if (c.seq <= opts.base) break;
    if ((await localIdAt(opts.dir, c.seq)) === c.id) return c.seq;
    opts.log.warn({ seq: c.seq }, 'the stream holds a different event under this log\'s seq (log rewritten after a crash); not resuming past it');
  }
  return opts.base;
}
