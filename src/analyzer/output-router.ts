/**
 * What the analyzer does with one engine output: exceptions first (they
 * silence both the alert and its quarantine), then the quarantine orders
 * (so the alert can name its decision), then the alerts to every sink —
 * except emissions already written before a crash (see service.ts).
 */
import type { Logger } from '../core/log.ts';
import type { DecisionStore } from '../decisions/decision-store.ts';
import { emissionKey } from './sinks/alerts-log.ts';
import type { AlertSink } from './sinks/sink.ts';
import type { Alert, EngineOutput } from './types.ts';

/** Counters the router keeps (read by AnalyzerService.stats). */
export interface RouterCounters {
  alerts: number;
  suppressed: number;
  deduplicated: number;
  decisions: number;
  excepted: number;
}

/** Routes engine outputs to the decisions store and the alert sinks. */
export class OutputRouter {
  readonly counters: RouterCounters = { alerts: 0, suppressed: 0, deduplicated: 0, decisions: 0, excepted: 0 };
  readonly #store: DecisionStore;
  readonly #sinks: readonly AlertSink[];
  readonly #seen: ReadonlySet<string>;
  readonly #log: Logger;

  /** `seen`: emission keys already in alerts.jsonl after the cursor (not emitted again). */
  constructor(store: DecisionStore, sinks: readonly AlertSink[], seen: ReadonlySet<string>, log: Logger) {
    this.#store = store;
    this.#sinks = sinks;
    this.#seen = seen;
    this.#log = log;
  }

  /**
   * Handles `out`, produced by an event at event time `at` (ms). Rejects when
   * the decisions store fails: the caller must not move its cursor past the
   * event, so a restart orders the quarantine again instead of losing it.
   */
  async route(out: EngineOutput, at: number): Promise<void> {
    const c = this.counters;
    const suppressed = new Set<string>();
    for (const a of out.alerts) {
      if (await this.#store.exceptionFor(a.rule, a.scope, a.value, at)) suppressed.add(a.id);
    }
    const decisionOf = new Map<string, string>();
    for (const order of out.remediations) {
      if (suppressed.has(order.alertId)) {
        c.excepted++;
        continue;
      }
      const r = await this.#store.add(order, { at });
      if (r.status === 'excepted') {
        c.excepted++;
        continue;
      }
      decisionOf.set(order.alertId, r.decision.id);
      if (r.status === 'created') {
        c.decisions++;
        const d = r.decision;
        this.#log.warn({ decision: { id: d.id, scope: d.scope, value: d.value, expiresAt: d.expiresAt, simulated: d.simulated, offence: d.offence, rule: d.origin } },
          d.simulated ? 'simulated quarantine recorded (would block)' : 'quarantine ordered');
      }
    }
    for (const a of out.alerts) {
      if (suppressed.has(a.id)) {
        c.suppressed++;
        continue;
      }
      // An update of an alert (same id, e.g. when its window closes) keeps naming its decision.
      const decisionId = decisionOf.get(a.id) ?? a.decisionId ?? (await this.#store.decisionForAlert(a.id))?.id;
      const alert: Alert = decisionId === undefined ? a : { ...a, decisionId };
      if (this.#seen.has(emissionKey(alert))) {
        c.deduplicated++;
        continue;
      }
      c.alerts++;
      for (const s of this.#sinks) s.emit(alert);
    }
  }
}
