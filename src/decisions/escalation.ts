/**
 * Repeat-offender escalation: the n-th quarantine of the same scope/value
 * ordered by rules within the lookback lasts base × 2^(n-1), capped — the
 * shape of fail2ban's `bantime.increment` and CrowdSec's
 * `duration_expr` examples. Manual decisions neither escalate nor count.
 */
import type { Decision, Scope } from '../analyzer/types.ts';

export interface EscalationPolicy {
  /** Earlier rule-ordered decisions created within this window count as prior offences (default 24h). */
  readonly lookbackMs: number;
  /** Longest escalated duration (default 7d); a base duration above it is kept as is. */
  readonly maxDurationMs: number;
}

export const DEFAULT_ESCALATION: EscalationPolicy = Object.freeze({ lookbackMs: 86_400_000, maxDurationMs: 7 * 86_400_000 });

/**
 * The offence number a new rule-ordered decision for scope/value would get at
 * `atMs`: 1 + prior rule-ordered decisions of the same simulated-ness created
 * in (atMs − lookback, atMs]. Simulated and enforced histories are kept apart
 * so that running a rule in simulation does not lengthen real quarantines.
 */
export function offenceNumber(decisions: readonly Decision[], scope: Scope, value: string, simulated: boolean, atMs: number, policy: EscalationPolicy): number {
  const from = atMs - policy.lookbackMs;
  let prior = 0;
  for (const d of decisions) {
    if (d.origin === 'manual' || d.scope !== scope || d.value !== value || d.simulated !== simulated) continue;
    const t = Date.parse(d.createdAt);
    if (t > from && t <= atMs) prior++;
  }
  return prior + 1;
}

/** base × 2^(offence−1), capped at max(base, policy.maxDurationMs). */
export function escalatedDuration(baseMs: number, offence: number, policy: EscalationPolicy): number {
  const cap = Math.max(baseMs, policy.maxDurationMs);
  // 2^52 overflows precision long before any real offence count; the cap wins first.
  const factor = 2 ** Math.min(Math.max(offence - 1, 0), 52);
  return Math.min(baseMs * factor, cap);
}
