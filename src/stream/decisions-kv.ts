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
 *
 * Exceptions (`meshgate decisions except`) live in the same bucket under
 * `exception.<id>` (exceptions-kv.ts) and mean what they mean locally: an
 * unexpired exception at the event time of an order suppresses it (and the
 * alert, analyzer-outputs.ts); gateways also drop decisions an exception
 * covers (src/decisions/excepted-decisions.ts), for the replica that wrote
 * one before it saw the exception.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Decision, Exception, RemediationOrder, Scope } from '../analyzer/types.ts';
import { findException, type ExceptionInput, type ManualDecisionInput } from '../decisions/decision-store.ts';
import { parseDecisionsDoc } from '../decisions/decisions-file.ts';
import { DEFAULT_ESCALATION, escalatedDuration, type EscalationPolicy } from '../decisions/escalation.ts';
import { exceptionKey, isExceptionKey, KvExceptions, parseExceptionValue, readExceptions } from './exceptions-kv.ts';
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

/** Outcome of a rule's order: a new decision, the one already covering it, or the exception that suppressed it. */
export type KvOrderResult =
  | { readonly status: 'created' | 'existing'; readonly decision: Decision }
  | { readonly status: 'excepted'; readonly exception: Exception };

/** The analyzer's write side of the decisions bucket, and what `meshgate decisions` changes at scale. */
export class DecisionsKv {
  readonly #kv: KV;
  readonly #policy: EscalationPolicy;
  #exceptions: KvExceptions | undefined;

  constructor(kv: KV, escalation: Partial<EscalationPolicy> = {}) {
    this.#kv = kv;
    this.#policy = { ...DEFAULT_ESCALATION, ...escalation };
  }

  /**
   * The unexpired exception covering `rule` for scope/value at event time
   * `atMs`, if any (the local DecisionStore's rule). Rejects when the bucket
   * cannot be read: callers retry instead of raising what may be excepted.
   */
  async exceptionFor(rule: string, scope: Scope, value: string, atMs: number): Promise<Exception | undefined> {
    this.#exceptions ??= new KvExceptions(this.#kv);
    return findException(await this.#exceptions.current(), rule, scope, value, atMs);
  }

  /** Stops the exceptions watch (the bucket itself belongs to the connection). */
  close(): void {
    this.#exceptions?.close();
  }

  /** Records a rule's quarantine order made at event time `atMs`; idempotent, suppressed by exceptions (see the file comment). */
  order(o: RemediationOrder, atMs: number): Promise<KvOrderResult> {
    const id = orderDecisionId(o);
    return this.#compareAndSet<KvOrderResult>(decisionKey(o.scope, o.value, o.simulated), async (cur) => {
      // The local store's order of checks: the same order again, then exceptions, then a decision in force.
      if (cur?.id === id) return { result: { status: 'existing', decision: cur } };
      const exception = await this.exceptionFor(o.rule, o.scope, o.value, atMs);
      if (exception) return { result: { status: 'excepted', exception } };
      if (cur && Date.parse(cur.expiresAt) > atMs) return { result: { status: 'existing', decision: cur } };
      const chained = cur && cur.origin !== 'manual' && Date.parse(cur.createdAt) > atMs - this.#policy.lookbackMs && Date.parse(cur.createdAt) <= atMs;
      const offence = chained ? cur.offence + 1 : 1;
      const d: Decision = {
        id, scope: o.scope, value: o.value, origin: o.rule, reason: `rule ${o.rule}`, alertId: o.alertId,
        createdAt: iso(atMs), expiresAt: iso(atMs + escalatedDuration(o.durationMs, offence, this.#policy)), simulated: o.simulated, offence,
      };
      return { write: d, result: { status: 'created', decision: d } };
    });
  }

  /** Writes `d` as is (tests, tools). */
  async put(d: Decision): Promise<void> {
    await this.#kv.put(decisionKey(d.scope, d.value, d.simulated), JSON.stringify(d));
  }

  /**
   * A person's quarantine (`meshgate decisions add` at scale), from `atMs`
   * for exactly the given duration. A key holds one decision, so an
   * unexpired one of the key that lasts longer is kept and returned
   * ('existing'): adding never shortens a quarantine in force (with
   * decisions.json both would be kept and the longer one enforced).
   */
  addManual(input: ManualDecisionInput, atMs: number): Promise<{ status: 'created' | 'existing'; decision: Decision }> {
    const simulated = input.simulated ?? false;
    const d: Decision = {
      id: `d-${randomBytes(12).toString('hex')}`, scope: input.scope, value: input.value, origin: 'manual',
      reason: input.reason ?? 'manual', createdAt: iso(atMs), expiresAt: iso(atMs + input.durationMs), simulated, offence: 1,
    };
    return this.#compareAndSet<{ status: 'created' | 'existing'; decision: Decision }>(decisionKey(input.scope, input.value, simulated), (cur) => (
      cur && Date.parse(cur.expiresAt) >= Date.parse(d.expiresAt)
        ? { result: { status: 'existing', decision: cur } }
        : { write: d, result: { status: 'created', decision: d } }));
  }

  /**
   * Reads `key`, lets `decide` choose from its current decision, and writes
   * the chosen one only if nobody wrote the key in between (KV revision);
   * on a concurrent write it reads again. Replicas and people share keys.
   */
  async #compareAndSet<R>(key: string, decide: (cur: Decision | undefined) => Promise<{ write?: Decision; result: R }> | { write?: Decision; result: R }): Promise<R> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = await this.#kv.get(key);
      const cur = e && e.operation === 'PUT' ? parseDecisionValue(e.value) : undefined;
      const { write, result } = await decide(cur);
      if (write === undefined) return result;
      try {
        if (e) await this.#kv.update(key, JSON.stringify(write), e.revision);
        else await this.#kv.create(key, JSON.stringify(write));
        return result;
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Another replica or person wrote this key a moment ago: read it again.
      }
    }
    throw new Error(`decision ${key} kept changing under concurrent writers`);
  }

  /** Records a false-positive exception from `atMs` (`meshgate decisions except` at scale). */
  async addException(input: ExceptionInput, atMs: number): Promise<Exception> {
    const x: Exception = {
      id: `x-${randomBytes(12).toString('hex')}`, rule: input.rule, scope: input.scope, value: input.value,
      createdAt: iso(atMs), expiresAt: iso(atMs + input.durationMs), ...(input.note === undefined ? {} : { note: input.note }),
    };
    await this.#kv.create(exceptionKey(x.id), JSON.stringify(x));
    return x;
  }

  /** Deletes the decision for scope/value (an unban). */
  async remove(d: Pick<Decision, 'scope' | 'value' | 'simulated'>): Promise<void> {
    await this.#kv.delete(decisionKey(d.scope, d.value, d.simulated));
  }

  /**
   * Deletes the decision or exception with `id`; returns what was removed.
   * The delete is conditional on the entry read, so a decision that replaced
   * it meanwhile (a new order for the same key) is not lifted by mistake.
   */
  async removeById(id: string): Promise<Decision | Exception | undefined> {
    if (/^[A-Za-z0-9_-]+$/.test(id)) {
      const e = await this.#kv.get(exceptionKey(id));
      const x = e && e.operation === 'PUT' ? parseExceptionValue(e.value) : undefined;
      if (e && x) {
        await this.#kv.delete(exceptionKey(id), { previousSeq: e.revision });
        return x;
      }
    }
    for await (const k of await this.#kv.keys()) {
      if (isExceptionKey(k)) continue;
      const e = await this.#kv.get(k);
      const d = e && e.operation === 'PUT' ? parseDecisionValue(e.value) : undefined;
      if (e && d?.id === id) {
        await this.#kv.delete(k, { previousSeq: e.revision });
        return d;
      }
    }
    return undefined;
  }

  /** Every decision in the bucket (expired ones included). */
  async list(): Promise<Decision[]> {
    const out: Decision[] = [];
    for await (const k of await this.#kv.keys()) {
      if (isExceptionKey(k)) continue;
      const e = await this.#kv.get(k);
      const d = e && e.operation === 'PUT' ? parseDecisionValue(e.value) : undefined;
      if (d) out.push(d);
    }
    return out;
  }

  /** Every exception in the bucket (expired ones included). */
  exceptions(): Promise<Exception[]> {
    return readExceptions(this.#kv);
  }

  /** Deletes expired exceptions, and decisions that expired before `now` minus the escalation lookback; returns how many. */
  async prune(now: number): Promise<number> {
    let n = 0;
    for await (const k of await this.#kv.keys()) {
      const e = await this.#kv.get(k);
      if (!e || e.operation !== 'PUT') continue;
      if (isExceptionKey(k)) {
        const x = parseExceptionValue(e.value);
        if (!x || Date.parse(x.expiresAt) > now) continue;
      } else {
        const d = parseDecisionValue(e.value);
        if (!d || Date.parse(d.expiresAt) > now || Date.parse(d.createdAt) > now - this.#policy.lookbackMs) continue;
      }
      await this.#kv.purge(k, { previousSeq: e.revision }).then(() => n++, () => {});
    }
    return n;
  }
}
