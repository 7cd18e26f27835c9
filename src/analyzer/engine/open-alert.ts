/**
 * An alert while its de-duplication window is open, and how it becomes the
 * `Alert` objects the engine emits.
 *
 * Emission contract (docs/detections.md "Alert updates"): an alert is emitted
 * once when it fires (revision 1). Matching events of the same rule + scope +
 * value until `windowEnd` update it in place — count, lastSeen, evidence up to
 * the limit — without emitting. When the window closes (event time passes
 * `windowEnd`, or `flush()`), it is emitted once more (revision 2, same id)
 * only if it changed; consumers upsert by id. After that, the next firing
 * is a new alert with a new id.
 */
import { createHash } from 'node:crypto';
import type { RuleSpec } from '../rules/schema.ts';
import type { Alert, Scope } from '../types.ts';

export interface OpenAlert {
  readonly id: string;
  readonly key: string;
  readonly scope: Scope;
  readonly value: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  firstSeen: number;
  lastSeen: number;
  count: number;
  readonly firedCount: number;
  evidence: string[];
  readonly summary: string;
}

/** Deterministic alert id: the same rule, scope, value and window start give the same id in every replay. */
export function alertId(rule: string, scope: Scope, value: string, windowStart: number): string {
  return createHash('sha256').update(`${rule}\u0000${scope}\u0000${value}\u0000${windowStart}`).digest('hex').slice(0, 32);
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The emitted form of an open alert (a fresh object: consumers may keep it). */
export function toAlert(spec: RuleSpec, o: OpenAlert, revision: 1 | 2): Alert {
  const more = o.count > o.firedCount ? `; ${o.count} matching events until ${iso(o.lastSeen)}` : '';
  return {
    v: 1,
    id: o.id,
    rule: spec.name,
    severity: spec.severity,
    title: spec.title,
    scope: o.scope,
    value: o.value,
    firstSeen: iso(o.firstSeen),
    lastSeen: iso(o.lastSeen),
    count: o.count,
    evidence: [...o.evidence],
    summary: `${o.summary}${more}`,
    windowEnd: iso(o.windowEnd),
    revision,
  };
}
