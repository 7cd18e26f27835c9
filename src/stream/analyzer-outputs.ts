/**
 * Where an analyzer replica's results go, durably, before the events that
 * caused them are acknowledged or checkpointed:
 *
 * 1. quarantine orders → the decisions KV bucket (decisions-kv.ts), which
 *    assigns the decision id the alert then carries;
 * 2. alerts → the alerts stream, `<alertsSubjectPrefix>.<rule>`, with
 *    `Nats-Msg-Id` = `<alert id>:<count>`. Alert ids are deterministic and a
 *    replica that re-processes events after a takeover produces the very
 *    same emissions, which JetStream's duplicate window drops: an alert is
 *    never raised twice;
 * 3. local sinks (log, webhook) — best effort, after the above.
 *
 * Exceptions first, as the local analyzer does (src/analyzer/output-router.ts):
 * an alert an unexpired exception covers at its event time (`lastSeen`) is
 * neither published nor does its quarantine get ordered; an order is also
 * checked on its own (DecisionsKv.order). Exceptions live in the decisions
 * bucket, so without one (`decisions: false`) nothing is excepted.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Alert, RemediationOrder } from '../analyzer/types.ts';
import type { AlertSink } from '../analyzer/sinks/sink.ts';
import type { DecisionsKv } from './decisions-kv.ts';
import { alertSubject, subjectCovers } from './subjects.ts';

const NS = 1_000_000;

/** A quarantine order with the event time it was made at. */
export interface TimedOrder {
  readonly order: RemediationOrder;
  readonly atMs: number;
}

/** Creates the alerts stream when missing (file storage, 30 days, 2 min duplicate window); checks that it captures the subjects. */
export async function ensureAlertsStream(jsm: JetStreamManager, name: string, subjectPrefix: string): Promise<void> {
  try {
    const info = await jsm.streams.info(name);
    if (!info.config.subjects.some((s) => subjectCovers(s, `${subjectPrefix}.*`))) {
      throw new Error(`JetStream stream ${name} does not capture ${subjectPrefix}.> (subjects ${JSON.stringify(info.config.subjects)})`);
    }
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
  }
  await jsm.streams.add({
    name, description: 'meshgate alerts', subjects: [`${subjectPrefix}.>`],
    storage: 'file' as never, retention: 'limits' as never, discard: 'old' as never,
    max_age: 30 * 86_400_000 * NS, duplicate_window: 120_000 * NS,
  }).catch(async (err: unknown) => {
    // Created concurrently by another replica: fine when it exists now.
    await jsm.streams.info(name).catch(() => { throw err; });
  });
}

/** The event time an alert emission was made at: its last contributing event (now when unparsable). */
function eventTime(a: Alert): number {
  const t = Date.parse(a.lastSeen);
  return Number.isFinite(t) ? t : Date.now();
}

/** Delivers one batch's alerts and orders. */
export class AnalyzerOutputs {
  readonly #js: JetStreamClient;
  readonly #decisions: DecisionsKv | undefined;
  readonly #sinks: readonly AlertSink[];
  readonly #stream: string;
  readonly #prefix: string;
  published = 0;
  /** Alerts an exception suppressed (with their orders). */
  suppressed = 0;

  constructor(js: JetStreamClient, opts: { alertsStream: string; alertsSubjectPrefix: string; decisions?: DecisionsKv | undefined; sinks?: readonly AlertSink[] }) {
    this.#js = js;
    this.#decisions = opts.decisions;
    this.#sinks = opts.sinks ?? [];
    this.#stream = opts.alertsStream;
    this.#prefix = opts.alertsSubjectPrefix;
  }

  /** Resolves once every order and alert is stored by NATS; rejects otherwise (the batch is then not acknowledged). */
  async deliver(alerts: readonly Alert[], orders: readonly TimedOrder[]): Promise<void> {
    const suppressed = new Set<string>();
    const decisionOf = new Map<string, string>();
    let kept = alerts;
    if (this.#decisions) {
      const kv = this.#decisions;
      const excepted = await Promise.all(alerts.map((a) => kv.exceptionFor(a.rule, a.scope, a.value, eventTime(a))));
      kept = alerts.filter((a, i) => {
        if (excepted[i] === undefined) return true;
        suppressed.add(a.id);
        return false;
      });
      for (const o of orders) {
        if (suppressed.has(o.order.alertId)) continue;
        const r = await kv.order(o.order, o.atMs);
        if (r.status !== 'excepted') decisionOf.set(o.order.alertId, r.decision.id);
      }
    }
    this.suppressed += alerts.length - kept.length;
    const final = kept.map((a) => {
      const decisionId = a.decisionId ?? decisionOf.get(a.id);
      return decisionId === undefined ? a : { ...a, decisionId };
    });
    await Promise.all(final.map((a) =>
      this.#js.publish(alertSubject(this.#prefix, a.rule), JSON.stringify(a), { msgID: `${a.id}:${a.count}`, expect: { streamName: this.#stream } })));
    this.published += final.length;
    for (const a of final) for (const s of this.#sinks) s.emit(a);
  }
}
