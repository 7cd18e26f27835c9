/**
 * Quarantine decisions at scale (PRODUCT §1.8): one NATS KV entry per
 * scope/value, watched by every gateway (watch-decisions-kv.ts).
 *
 *   key   <scope>.<base64url(value)>        enforced decision
 *         <scope>.<base64url(value)>.sim    simulated ("would block") decision
 *   value Decision JSON (src/analyzer/types.ts), with its own expiresAt
 *
 * Semantics follow the file-based DecisionStore (src/decisions/): a rule
 * order gets an id derived from rule + alert + scope + value, so processing
 * the same events again (a takeover after a crash) finds the same decision
 * instead of adding one; an unexpired decision of the same kind is kept;
 * repeat offenders escalate (escalation.ts). One difference: a KV entry holds
 * only the latest decision per key, so the offence count chains from it
 * (previous offence + 1 when that one was created within the lookback).
 * Writes are compare-and-set, so concurrent analyzer replicas cannot lose
 * each other's decisions.
 */
import { createHash } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Decision, RemediationOrder } from '../analyzer/types.ts';
import { parseDecisionsDoc } from '../decisions/decisions-file.ts';
import { DEFAULT_ESCALATION, escalatedDuration, type EscalationPolicy } from '../decisions/escalation.ts';
import { decisionKey } from './subjects.ts';

/** Opens the decisions bucket, creating it when missing (the same options from every gateway and analyzer). */
export async function openDecisionsBucket(nc: NatsConnection, bucket: string): Promise<KV> {
  return new Kvm(nc).create(bucket, { history: 1, description: 'meshgate quarantine decisions' });
}

/** A Decision read from a KV value; undefined (never a throw) when it is not one. */
export function parseDecisionValue(value: Uint8Array): Decision | undefined {
  try {
    const d = JSON.parse(Buffer.from(value).toString('utf8')) as unknown;
    return parseDecisionsDoc({ v: 1, decisions: [d], exceptions: [] }, 'kv').decisions[0];
  } catch {
    return undefined;
  }
}

/** The id a rule order gets (the same formula as the file-based DecisionStore). */
export function orderDecisionId(o: RemediationOrder): string {
  return `d-${createHash('sha256').update(`${o.rule}\n${o.alertId}\n${o.scope}\n${o.value}`).digest('hex').slice(0, 24)}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function isConflict(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error).message ?? '');
}

/** The analyzer's write side of the decisions bucket. */
export class DecisionsKv {
  readonly #kv: KV;
  readonly #policy: EscalationPolicy;

  constructor(kv: KV, escalation: Partial<EscalationPolicy> = {}) {
    this.#kv = kv;
    this.#policy = { ...DEFAULT_ESCALATION, ...escalation };
  }

  /** Records a rule's quarantine order made at event time `atMs`; idempotent (see the file comment). */
  async order(o: RemediationOrder, atMs: number): Promise<{ status: 'created' | 'existing'; decision: Decision }> {
    const key = decisionKey(o.scope, o.value, o.simulated);
    const id = orderDecisionId(o);
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = await this.#kv.get(key);
      const cur = e && e.operation === 'PUT' ? parseDecisionValue(e.value) : undefined;
      if (cur && (cur.id === id || Date.parse(cur.expiresAt) > atMs)) return { status: 'existing', decision: cur };
      const chained = cur && cur.origin !== 'manual' && Date.parse(cur.createdAt) > atMs - this.#policy.lookbackMs && Date.parse(cur.createdAt) <= atMs;
      const offence = chained ? cur.offence + 1 : 1;
      const d: Decision = {
        id, scope: o.scope, value: o.value, origin: o.rule, reason: `rule ${o.rule}`, alertId: o.alertId,
        createdAt: iso(atMs), expiresAt: iso(atMs + escalatedDuration(o.durationMs, offence, this.#policy)), simulated: o.simulated, offence,
      };
      try {
        if (e) await this.#kv.update(key, JSON.stringify(d), e.revision);
        else await this.#kv.create(key, JSON.stringify(d));
        return { status: 'created', decision: d };
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Another replica wrote this key a moment ago: read it again.
      }
    }
    throw new Error(`decision ${key} kept changing under concurrent writers`);
  }

  /** Writes `d` as is (a manual decision, `meshgate decisions add` at scale). */
  async put(d: Decision): Promise<void> {
    await this.#kv.put(decisionKey(d.scope, d.value, d.simulated), JSON.stringify(d));
  }

  /** Deletes the decision for scope/value (an unban). */
  async remove(d: Pick<Decision, 'scope' | 'value' | 'simulated'>): Promise<void> {
    await this.#kv.delete(decisionKey(d.scope, d.value, d.simulated));
  }

  /** Every decision in the bucket (expired ones included). */
  async list(): Promise<Decision[]> {
    const out: Decision[] = [];
    for await (const k of await this.#kv.keys()) {
      const e = await this.#kv.get(k);
      const d = e && e.operation === 'PUT' ? parseDecisionValue(e.value) : undefined;
      if (d) out.push(d);
    }
    return out;
  }

  /** Deletes decisions that expired before `now` minus the escalation lookback; returns how many. */
  async prune(now: number): Promise<number> {
    let n = 0;
    for await (const k of await this.#kv.keys()) {
      const e = await this.#kv.get(k);
      const d = e && e.operation === 'PUT' ? parseDecisionValue(e.value) : undefined;
      if (!e || !d || Date.parse(d.expiresAt) > now || Date.parse(d.createdAt) > now - this.#policy.lookbackMs) continue;
      await this.#kv.purge(k, { previousSeq: e.revision }).then(() => n++, () => {});
    }
    return n;
  }
}
