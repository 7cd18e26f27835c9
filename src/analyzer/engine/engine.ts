/**
 * The detection engine (PRODUCT §1.8): audit records in, alerts and
 * quarantine orders out — the same code for the live analyzer, replay and
 * the tests. Deterministic in event time: it reads the record's `time`,
 * never a clock, so the same records always give byte-identical output.
 *
 * Event time and order: records arrive in seq (write) order, and `time` is
 * when each request started, so a slow request is written after faster,
 * later ones. The engine keeps a watermark (the latest time seen): windows
 * close and idle state is evicted against it, and each detector treats its
 * group's time as non-decreasing, so a late event counts at the group's
 * current time instead of rewinding buckets.
 */
import type { AuditRecord } from '../../audit/event.ts';
import type { RuleSet } from '../rules/schema.ts';
import type { DetectionEngine, EngineOutput, RemediationOrder, Alert } from '../types.ts';
import { EventView, scopeValue } from './fields.ts';
import { TimeParser } from './time.ts';
import { alertId, toAlert, type OpenAlert } from './open-alert.ts';
import { GLOBAL_KEY, RuleRuntime } from './rule-runtime.ts';
import { restoreRules, snapshotRules, type EngineSnapshot } from './snapshot.ts';

export interface EngineOptions {
  /** Most event ids kept per alert (default 20). */
  readonly evidenceLimit?: number;
}

/** Per-rule counters. */
export interface RuleStats {
  readonly matched: number;
  readonly alerts: number;
  readonly updates: number;
  readonly remediations: number;
  readonly groups: number;
  readonly openAlerts: number;
  /** Group states dropped: idle past the rule's idle time, or over maxGroups. */
  readonly evictions: number;
}

export interface EngineStats {
  readonly events: number;
  /** Records whose `time` could not be parsed (not evaluated). */
  readonly badTime: number;
  readonly watermark: string | null;
  readonly rules: Readonly<Record<string, RuleStats>>;
}

const EMPTY: EngineOutput = Object.freeze({ alerts: Object.freeze([]) as readonly Alert[], remediations: Object.freeze([]) as readonly RemediationOrder[] });

interface RuleBook {
  readonly rt: RuleRuntime;
  readonly open: Map<string, OpenAlert>;
  /** Open alerts in firing order: windows close (nearly) in this order. */
  queue: OpenAlert[];
  alerts: number;
  updates: number;
  remediations: number;
  /** Global rules: key of the alert fired last (contributions without a trigger update it). */
  lastGlobal: string | undefined;
}

/** The rule engine. Create with `createEngine`. */
export class RuleEngine implements DetectionEngine {
  readonly #books: RuleBook[];
  readonly #evidenceLimit: number;
  #watermark = -Infinity;
  /** Earliest windowEnd among open alerts (Infinity when none). */
  #nextClose = Infinity;
  #events = 0;
  #badTime = 0;
  /** One view, reset per event: no allocation on the hot path (detectors never keep it). */
  readonly #view = new EventView();
  readonly #time = new TimeParser();

  constructor(rules: RuleSet, options: EngineOptions = {}) {
    const limit = options.evidenceLimit ?? 20;
    if (!Number.isInteger(limit) || limit < 1) throw new TypeError('evidenceLimit must be a positive integer');
    this.#evidenceLimit = limit;
    this.#books = rules.rules
      .filter((r) => r.enabled)
      .map((r) => ({ rt: new RuleRuntime(r, limit), open: new Map(), queue: [], alerts: 0, updates: 0, remediations: 0, lastGlobal: undefined }));
  }

  process(record: AuditRecord): EngineOutput {
    const t = typeof record.time === 'string' ? this.#time.parse(record.time) : Number.NaN;
    if (!Number.isFinite(t)) {
      this.#badTime++;
      return EMPTY;
    }
    this.#events++;
    let alerts: Alert[] | undefined;
    let orders: RemediationOrder[] | undefined;
    if (t > this.#watermark) {
      this.#watermark = t;
      if (t >= this.#nextClose) alerts = this.#closeDue(t, []);
    }
    const wm = this.#watermark;
    const e = this.#view.reset(record, t);
    for (const b of this.#books) {
      const rt = b.rt;
      if (!rt.pred(e) || !rt.locate(e)) continue;
      rt.matched++;
      const obs = rt.detector.stateful ? rt.detector.observe(rt.touch(e, wm).s, e) : rt.detector.observe(null, e);
      // Fast path: nothing fired and no alert of this rule is open to update.
      if (obs === false || (obs === true && b.open.size === 0)) continue;
      // A global rule's alerts are about the identity it attributes the anomaly to.
      let key: string;
      if (!rt.global) key = `${rt.scope}:${rt.value}`;
      else if (typeof obs === 'object' && obs.attribution) key = `${obs.attribution.scope}:${obs.attribution.value}`;
      else key = b.lastGlobal ?? GLOBAL_KEY;
      const open = b.open.get(key);
      if (open) {
        open.count += 1;
        if (t > open.lastSeen) open.lastSeen = t;
        if (t < open.firstSeen) open.firstSeen = t;
        if (open.evidence.length < this.#evidenceLimit) open.evidence.push(record.id);
        b.updates++;
        continue;
      }
      if (obs === true) continue;
      const scope = obs.attribution?.scope ?? rt.scope;
      const value = obs.attribution?.value ?? rt.value;
      const o: OpenAlert = {
        id: alertId(rt.spec.name, scope, value, t),
        key,
        scope,
        value,
        windowStart: t,
        windowEnd: t + rt.dedupMs,
        firstSeen: Math.min(obs.firstSeen, t),
        lastSeen: t,
        count: obs.count,
        firedCount: obs.count,
        evidence: obs.evidence.slice(0, this.#evidenceLimit),
        summary: obs.summary,
      };
      b.open.set(key, o);
      b.queue.push(o);
      if (rt.global) b.lastGlobal = key;
      if (o.windowEnd < this.#nextClose) this.#nextClose = o.windowEnd;
      b.alerts++;
      (alerts ??= []).push(toAlert(rt.spec, o, 1));
      const rem = rt.spec.remediation;
      if (rem) {
        const rs = rem.scope ?? scope;
        const rv = rs === scope ? value : scopeValue(e, rs);
        if (rv !== null) {
          b.remediations++;
          (orders ??= []).push({ rule: rt.spec.name, alertId: o.id, scope: rs, value: rv, durationMs: rem.duration, simulated: rem.simulated });
        }
      }
    }
    if (alerts === undefined && orders === undefined) return EMPTY;
    return { alerts: alerts ?? [], remediations: orders ?? [] };
  }

  advanceTo(timeMs: number): EngineOutput {
    if (!Number.isFinite(timeMs)) throw new TypeError('advanceTo needs a finite time in ms');
    if (timeMs <= this.#watermark) return EMPTY;
    this.#watermark = timeMs;
    const alerts = timeMs >= this.#nextClose ? this.#closeDue(timeMs, []) : [];
    return alerts.length === 0 ? EMPTY : { alerts, remediations: [] };
  }

  flush(): EngineOutput {
    const alerts = this.#closeDue(Infinity, []);
    return alerts.length === 0 ? EMPTY : { alerts, remediations: [] };
  }

  /** Closes windows ending at or before `now`; final updates go to `out` in rule order, then firing order. */
  #closeDue(now: number, out: Alert[]): Alert[] {
    let next = Infinity;
    for (const b of this.#books) {
      if (b.queue.length === 0) continue;
      const keep: OpenAlert[] = [];
      for (const o of b.queue) {
        if (o.windowEnd <= now) {
          b.open.delete(o.key);
          if (o.count > o.firedCount) out.push(toAlert(b.rt.spec, o, 2));
        } else {
          keep.push(o);
          if (o.windowEnd < next) next = o.windowEnd;
        }
      }
      b.queue = keep;
    }
    this.#nextClose = next;
    return out;
  }

  snapshot(): EngineSnapshot {
    return snapshotRules(this.#watermark, this.#events, this.#books.map((b) => ({ rt: b.rt, open: b.queue })));
  }

  restore(state: unknown): void {
    const r = restoreRules(state, this.#books.map((b) => b.rt));
    this.#watermark = r.watermark;
    this.#events = r.events;
    let next = Infinity;
    this.#books.forEach((b, i) => {
      const open = r.open[i] ?? [];
      b.queue = open;
      b.open.clear();
      b.lastGlobal = undefined;
      for (const o of open) {
        b.open.set(o.key, o);
        if (b.rt.global) b.lastGlobal = o.key;
        if (o.windowEnd < next) next = o.windowEnd;
      }
    });
    this.#nextClose = next;
  }

  stats(): EngineStats {
    const rules: Record<string, RuleStats> = {};
    for (const b of this.#books) {
      rules[b.rt.spec.name] = { matched: b.rt.matched, alerts: b.alerts, updates: b.updates, remediations: b.remediations, groups: b.rt.groupCount(), openAlerts: b.open.size, evictions: b.rt.evictions };
    }
    return { events: this.#events, badTime: this.#badTime, watermark: Number.isFinite(this.#watermark) ? new Date(this.#watermark).toISOString() : null, rules };
  }
}

/** The engine the analyzer, replay and tests use. `rules` from `loadRules`/`parseRules`. */
export function createEngine(rules: RuleSet, opts: EngineOptions = {}): RuleEngine {
  return new RuleEngine(rules, opts);
}
