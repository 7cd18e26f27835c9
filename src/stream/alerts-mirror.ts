/**
 * The alerts of the analyzer replicas, in the gateway's own
 * `<analyzer.dir>/alerts.jsonl`, so that `meshgate alerts list` and the
 * review UI show what the mesh raised (PRODUCT §1.8, §1.10). The gateway
 * (the primary with `workers` > 1) follows the alerts stream with an ordered
 * consumer — nothing is kept on the server — from its own persisted cursor,
 * `<analyzer.dir>/nats-alerts-cursor.json`.
 *
 * Exactly once, with the local analyzer's semantics (src/analyzer/service.ts):
 * alerts are appended to alerts.jsonl, fsynced, and only then is the cursor
 * (stream seq, and the length of alerts.jsonl at that point) saved. After a
 * crash the messages after the cursor are read again; the emissions already
 * in alerts.jsonl after the cursor's offset are recognised by the emission
 * key (id, count, lastSeen) and not written twice. A missing or damaged
 * cursor, or a stream that was re-created, starts over from the stream's
 * first message with every emission of the file as already written, so a
 * rebuild never duplicates either. The same key also drops a re-published
 * emission the stream's duplicate window let through.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { AlertsLog, emissionKey, readAlertLines } from '../analyzer/sinks/alerts-log.ts';
import type { Alert } from '../analyzer/types.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import type { ComponentStatus } from '../core/status.ts';
import { writeJsonAtomic } from '../decisions/write-json-atomic.ts';
import { ensureAlertsStream } from './analyzer-outputs.ts';
import { alertSubject } from './subjects.ts';

/** Cursor file name inside the analyzer state folder. */
export const ALERTS_MIRROR_CURSOR = 'nats-alerts-cursor.json';

export interface AlertsMirrorOptions {
  /** How often a running mirror checks that its stream was not deleted and created again (default 5000 ms). */
  readonly recreateCheckMs?: number;
  /** A reconnecting connection (a promise while NATS has not been reached yet). */
  readonly connection: NatsConnection | Promise<NatsConnection>;
  /** `audit.sink.nats.analyzer.alertsStream` and `alertsSubjectPrefix`. */
  readonly stream: string;
  readonly subjectPrefix: string;
  /** The analyzer state folder holding alerts.jsonl (`analyzer.dir`). */
  readonly dir: string;
  readonly log?: Logger;
  /** Save the cursor at least this often while messages flow (default 1000 ms; always when caught up). */
  readonly saveEveryMs?: number;
}

/** Counters of the mirror. */
export interface AlertsMirrorStats {
  /** Stream seq of the last message handled. */
  readonly seq: number;
  /** Alert emissions appended to alerts.jsonl since start. */
  readonly mirrored: number;
  /** Emissions already in alerts.jsonl (re-read after a restart, or re-published). */
  readonly duplicates: number;
  /** Messages that are not alerts (skipped). */
  readonly invalid: number;
}

/** A running mirror. */
export interface AlertsMirror {
  stats(): AlertsMirrorStats;
  status(): ComponentStatus;
  /** Resolves once every message up to stream seq `seq` is in alerts.jsonl (tests). */
  waitFor(seq: number, timeoutMs?: number): Promise<void>;
  /** Stops following, saves the cursor, closes alerts.jsonl. */
  close(): Promise<void>;
}

interface MirrorCursor {
  readonly v: 1;
  readonly stream: string;
  /** Creation time of the stream: a re-created stream starts its seqs over. */
  readonly created: string;
  readonly seq: number;
  /** Length of alerts.jsonl when the cursor was saved. */
  readonly alertsOffset: number;
}

async function readMirrorCursor(file: string, log: Logger): Promise<MirrorCursor | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ file, err: (err as Error).message }, 'alerts mirror cursor unreadable; rebuilding it');
    return undefined;
  }
  try {
    const c = JSON.parse(text) as Partial<MirrorCursor>;
    if (c.v === 1 && typeof c.stream === 'string' && typeof c.created === 'string' && Number.isSafeInteger(c.seq) && (c.seq as number) >= 0
      && Number.isSafeInteger(c.alertsOffset) && (c.alertsOffset as number) >= 0) return c as MirrorCursor;
  } catch {
    // fall through
  }
  // Safe to rebuild: every emission already in the file is recognised and skipped.
  log.warn({ file }, 'alerts mirror cursor damaged; rebuilding it from the stream');
  return undefined;
}

/** Largest alert message mirrored; an analyzer's alerts are a few KB (evidence is bounded). */
const MAX_ALERT_BYTES = 64 * 1024;
const SEVERITIES: ReadonlySet<string> = new Set(['low', 'medium', 'high', 'critical']);
const SCOPES: ReadonlySet<string> = new Set(['spiffe', 'sub', 'jti', 'cert', 'ip']);

const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;
const optStr = (v: unknown, max: number): boolean => v === undefined || str(v, max);

/**
 * The alert in a message of the alerts stream, rebuilt from its known members
 * only, or undefined. Anyone allowed to publish on the alerts subjects writes
 * into every gateway's alerts.jsonl (and so the UI and CLI): size, types and
 * lengths are checked, unknown members dropped, and the subject must be the
 * one the analyzer publishes that rule's alerts on.
 */
export function asAlert(data: Uint8Array, subject: string, subjectPrefix: string): Alert | undefined {
  if (data.byteLength > MAX_ALERT_BYTES) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const evidence = v['evidence'];
  const ok = v['v'] === 1 && str(v['id'], 256) && str(v['rule'], 256) && typeof v['severity'] === 'string' && SEVERITIES.has(v['severity'])
    && str(v['title'], 1024) && typeof v['scope'] === 'string' && SCOPES.has(v['scope']) && str(v['value'], 16 * 1024)
    && str(v['firstSeen'], 64) && str(v['lastSeen'], 64) && Number.isSafeInteger(v['count']) && (v['count'] as number) >= 0
    && Array.isArray(evidence) && evidence.length <= 1000 && evidence.every((e) => str(e, 256))
    && str(v['summary'], 4096) && optStr(v['decisionId'], 256) && optStr(v['windowEnd'], 64)
    && (v['revision'] === undefined || Number.isSafeInteger(v['revision']));
  if (!ok || subject !== alertSubject(subjectPrefix, v['rule'] as string)) return undefined;
  const keep = ['v', 'id', 'rule', 'severity', 'title', 'scope', 'value', 'firstSeen', 'lastSeen', 'count', 'evidence', 'decisionId', 'summary', 'windowEnd', 'revision'];
  const out: Record<string, unknown> = {};
  for (const k of keep) if (v[k] !== undefined) out[k] = v[k];
  return out as unknown as Alert;
}

/** Bounded memory of recent emission keys (a Set in insertion order). */
const RECENT = 8192;

/** Starts mirroring the alerts stream into `<dir>/alerts.jsonl`; resolves once alerts.jsonl is open (NATS may come later). */
export async function startAlertsMirror(opts: AlertsMirrorOptions): Promise<AlertsMirror> {
  const log = (opts.log ?? silentLogger).child({ component: 'alerts-mirror' });
  const cursorFile = path.join(opts.dir, ALERTS_MIRROR_CURSOR);
  // The analyzer state folder may not exist yet (no embedded analyzer, nothing written so far).
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  const alertsLog = await AlertsLog.open(opts.dir, { logger: log });
  const saveEveryMs = opts.saveEveryMs ?? 1000;
  let cursor = await readMirrorCursor(cursorFile, log);
  let seq = cursor?.seq ?? 0;
  let savedSeq = seq;
  let savedAt = Date.now();
  const recent = new Set<string>();
  const c = { mirrored: 0, duplicates: 0, invalid: 0 };
  let state = 'starting';
  let lastError: string | undefined;
  let closed = false;
  let messages: ConsumerMessages | undefined;
  let wake: (() => void) | undefined;
  const waiters: { seq: number; resolve: () => void }[] = [];

  const save = async (created: string): Promise<void> => {
    // fsync alerts.jsonl first: the cursor must never name alerts that are not durable.
    await alertsLog.flush();
    const next: MirrorCursor = { v: 1, stream: opts.stream, created, seq, alertsOffset: alertsLog.offset };
    await writeJsonAtomic(cursorFile, next);
    cursor = next;
    savedSeq = seq;
    savedAt = Date.now();
  };

  const remember = (key: string): void => {
    recent.add(key);
    if (recent.size > RECENT) recent.delete(recent.values().next().value as string);
  };

  /** One pass: from the cursor to the end of the stream and on, until the consumer ends or close(). */
  const session = async (nc: NatsConnection): Promise<void> => {
    const jsm = await jetstreamManager(nc);
    // The gateway may start before any analyzer replica: create the stream as a replica would.
    await ensureAlertsStream(jsm, opts.stream, opts.subjectPrefix);
    const info = await jsm.streams.info(opts.stream);
    const created = info.created;
    let replay = new Set<string>();
    let replayUntil = 0;
    if (cursor?.stream !== opts.stream || cursor.created !== created || seq > info.state.last_seq) {
      if (cursor) log.warn({ stream: opts.stream, cursorSeq: cursor.seq }, 'alerts stream re-created or cursor from another stream: mirroring it from the start');
      seq = 0;
      cursor = { v: 1, stream: opts.stream, created, seq: 0, alertsOffset: 0 };
    }
    // Emissions written after the saved cursor may come again: recognise them by key.
    for await (const l of readAlertLines(alertsLog.file, cursor.alertsOffset)) replay.add(emissionKey(l.alert));
    replayUntil = info.state.last_seq;
    // No subject filter: the stream holds alerts only (ensureAlertsStream), and filter_subjects needs nats-server 2.10.
    const consumer = await jetstream(nc).consumers.get(opts.stream, {
      ...(seq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
    const consumed = await consumer.consume({ max_messages: 256 });
    messages = consumed;
    if (closed) consumed.stop();
    state = 'ok';
    lastError = undefined;
    // A stream deleted and created again under a running ordered consumer stalls it
    // without an error: look every few seconds, and start over from the new stream's start.
    let recreated = false;
    const watchdog = setInterval(() => {
      void jsm.streams.info(opts.stream).then((i) => {
        if (i.created !== created) { recreated = true; consumed.stop(); }
      }, () => { /* unreachable now: the consumer reports that itself */ });
    }, opts.recreateCheckMs ?? 5000);
    try {
      for await (const m of consumed) {
        if (m.seq <= seq) continue;
        const alert = asAlert(m.data, m.subject, opts.subjectPrefix);
        if (!alert) {
          c.invalid++;
          log.error({ stream: opts.stream, seq: m.seq, subject: m.subject }, 'message in the alerts stream is not an alert; skipped');
        } else {
          const key = emissionKey(alert);
          if (replay.has(key) || recent.has(key)) c.duplicates++;
          else {
            alertsLog.emit(alert);
            c.mirrored++;
          }
          remember(key);
        }
        seq = m.seq;
        if (seq >= replayUntil && replay.size > 0) replay = new Set();
        // Awaited inside the loop: nothing is emitted between the flush and the offset the cursor records.
        if (m.info.pending === 0 || Date.now() - savedAt >= saveEveryMs) await save(created);
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i] as { seq: number; resolve: () => void };
          if (seq >= w.seq && savedSeq >= w.seq) { waiters.splice(i, 1); w.resolve(); }
        }
      }
    } finally {
      clearInterval(watchdog);
    }
    if (recreated) throw new Error('alerts stream re-created while mirroring');
    if (seq !== savedSeq) await save(created);
  };

  const loop = (async () => {
    const nc = await Promise.race([Promise.resolve(opts.connection), new Promise<undefined>((r) => { wake = () => r(undefined); })]);
    while (nc && !closed && !nc.isClosed()) {
      await session(nc).catch((err: unknown) => {
        lastError = (err as Error).message;
        state = 'degraded';
        log.warn({ err: lastError, stream: opts.stream }, 'alerts mirror interrupted; resuming from its cursor');
      });
      messages = undefined;
      if (!closed) await new Promise<void>((r) => { const t = setTimeout(r, 1000); wake = () => { clearTimeout(t); r(); }; });
    }
  })().catch(() => {});

  return {
    stats: () => ({ seq, ...c }),
    status: () => ({
      // Never takes the gateway out of service: alerts wait in the stream.
      name: 'alerts-mirror', ready: true, state, lastLoad: undefined, lastError, reloads: c.mirrored, reloadFailures: c.invalid, version: String(seq),
    }),
    waitFor: (target, timeoutMs = 10_000) => new Promise<void>((resolve, reject) => {
      if (savedSeq >= target) { resolve(); return; }
      const t = setTimeout(() => reject(new Error(`alerts mirror did not reach seq ${target}`)), timeoutMs);
      waiters.push({ seq: target, resolve: () => { clearTimeout(t); resolve(); } });
    }),
    close: async () => {
      if (closed) return;
      closed = true;
      messages?.stop();
      wake?.();
      await Promise.race([loop, new Promise((r) => setTimeout(r, 2000))]);
      await alertsLog.close().catch((err: unknown) => log.error({ err }, 'alerts.jsonl close failed'));
    },
  };
}
