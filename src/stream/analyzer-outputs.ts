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

/** Delivers one batch's alerts and orders. */
export class AnalyzerOutputs {
  readonly #js: JetStreamClient;
  readonly #decisions: DecisionsKv | undefined;
  readonly #sinks: readonly AlertSink[];
  readonly #stream: string;
  readonly #prefix: string;
  published = 0;

  constructor(js: JetStreamClient, opts: { alertsStream: string; alertsSubjectPrefix: string; decisions?: DecisionsKv | undefined; sinks?: readonly AlertSink[] }) {
    this.#js = js;
    this.#decisions = opts.decisions;
    this.#sinks = opts.sinks ?? [];
    this.#stream = opts.alertsStream;
    this.#prefix = opts.alertsSubjectPrefix;
  }

  /** Resolves once every order and alert is stored by NATS; rejects otherwise (the batch is then not acknowledged). */
  async deliver(alerts: readonly Alert[], orders: readonly TimedOrder[]): Promise<void> {
    const decisionOf = new Map<string, string>();
    if (this.#decisions) {
      for (const o of orders) {
        const r = await this.#decisions.order(o.order, o.atMs);
        decisionOf.set(o.order.alertId, r.decision.id);
      }
    }
    const final = alerts.map((a) => {
      const decisionId = a.decisionId ?? decisionOf.get(a.id);
      return decisionId === undefined ? a : { ...a, decisionId };
    });
    await Promise.all(final.map((a) =>
      this.#js.publish(alertSubject(this.#prefix, a.rule), JSON.stringify(a), { msgID: `${a.id}:${a.count}`, expect: { streamName: this.#stream } })));
    this.published += final.length;
    for (const a of final) for (const s of this.#sinks) s.emit(a);
  }
}
