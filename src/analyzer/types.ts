/**
 * Contracts of the breach-detection analyzer (PRODUCT §1.8), shared by the
 * rule engine (src/analyzer/engine/), the alert sinks and the follower
 * (src/analyzer/), the decisions store (src/decisions/) and the gateway.
 */
import type { AuditRecord } from '../audit/event.ts';

export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** What an alert or a decision is about. Workload identity first: in a mesh every address is private. */
export type Scope = 'spiffe' | 'sub' | 'jti' | 'cert' | 'ip';

/** An alert as written to alerts.jsonl, the webhook and the UI (docs/alerts.md). Fields are only added. */
export interface Alert {
  readonly v: 1;
  /** Stable id: derived from rule + scope + value + window start, so a replay yields the same ids. */
  readonly id: string;
  readonly rule: string;
  readonly severity: Severity;
  readonly title: string;
  readonly scope: Scope;
  readonly value: string;
  /** Event time of the first and last contributing event (ISO 8601). */
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly count: number;
  /** Bounded list of contributing audit event ids (oldest first). */
  readonly evidence: readonly string[];
  /** Set when the rule ordered a quarantine. */
  readonly decisionId?: string;
  /** Human-readable summary, e.g. "12 denied requests to 7 routes in 5m". */
  readonly summary: string;
  /**
   * End of the de-duplication window (ISO 8601, event time): until then, more
   * matching events of the same rule + scope + value update this alert.
   */
  readonly windowEnd?: string;
  /** 1 when the alert fired; 2 for its final update when the window closed with more events (same id: upsert). */
  readonly revision?: number;
}

/** A quarantine ordered by a rule (or by a person through `meshgate decisions add`). */
export interface Decision {
  readonly id: string;
  readonly scope: Scope;
  readonly value: string;
  /** Rule name, or 'manual'. */
  readonly origin: string;
  readonly reason: string;
  readonly alertId?: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  /** Simulated decisions are recorded ("would block") and never enforced. */
  readonly simulated: boolean;
  /** 1 for a first offence; repeat offenders get longer durations. */
  readonly offence: number;
}

/** An exception (false positive): suppresses `rule` (or every rule when '*') for scope/value until it expires. */
export interface Exception {
  readonly id: string;
  readonly rule: string;
  readonly scope: Scope;
  readonly value: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly note?: string;
}

/** Output of the engine for one processed event. */
export interface EngineOutput {
  readonly alerts: readonly Alert[];
  /** Quarantines the engine wants ordered (the decisions store assigns offence counts and persists them). */
  readonly remediations: readonly RemediationOrder[];
}

export interface RemediationOrder {
  readonly rule: string;
  readonly alertId: string;
  readonly scope: Scope;
  readonly value: string;
  /** Base duration in ms (before repeat-offender escalation). */
  readonly durationMs: number;
  readonly simulated: boolean;
}

/** The rule engine as the follower, replay and tests drive it. Deterministic in event time. */
export interface DetectionEngine {
  /** Feeds one audit record (in seq order); returns alerts and remediation orders it caused. */
  process(record: AuditRecord): EngineOutput;
  /** Serializable engine state, persisted with the cursor so a restart neither skips nor repeats. */
  snapshot(): unknown;
  restore(state: unknown): void;
  /**
   * Moves event time to `timeMs` without an event (e.g. the wall clock while
   * the log is idle) and emits the final updates of alerts whose window closed.
   */
  advanceTo?(timeMs: number): EngineOutput;
  /** Closes every open alert window (end of a replay) and emits their final updates. */
  flush?(): EngineOutput;
}
