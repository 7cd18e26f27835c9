/**
 * The quarantine decisions store (PRODUCT §1.8 "closed loop"): one JSON file,
 * changed only by read-modify-write under a lock and replaced atomically, so
 * the analyzer and `meshgate decisions` can both write it and the gateway's
 * QuarantineTable never reads half a file. Format: decisions-file.ts;
 * semantics (expiry, escalation, exceptions): docs/quarantine.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import type { Decision, Exception, RemediationOrder, Scope } from '../analyzer/types.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { decisionsPath, readDecisionsFile, SCOPES, type DecisionsDoc } from './decisions-file.ts';
import { DEFAULT_ESCALATION, escalatedDuration, offenceNumber, type EscalationPolicy } from './escalation.ts';
import { withFileLock } from './file-lock.ts';
import { writeJsonAtomic } from './write-json-atomic.ts';

/** A quarantine a person orders (`meshgate decisions add`). */
export interface ManualDecisionInput {
  readonly scope: Scope;
  readonly value: string;
  readonly durationMs: number;
  readonly reason?: string;
  readonly simulated?: boolean;
}

/** A false-positive exception (`meshgate decisions except`). */
export interface ExceptionInput {
  /** Rule name, or '*' for every rule. */
  readonly rule: string;
  readonly scope: Scope;
  readonly value: string;
  readonly durationMs: number;
  readonly note?: string;
}

/** Outcome of `add`: a new decision, one that already covers it, or an exception that suppressed it. */
export type AddResult =
  | { readonly status: 'created'; readonly decision: Decision }
  | { readonly status: 'existing'; readonly decision: Decision }
  | { readonly status: 'excepted'; readonly exception: Exception };

export interface DecisionStoreOptions {
  readonly clock?: Clock;
  readonly escalation?: Partial<EscalationPolicy>;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function checkScopeValue(scope: unknown, value: unknown): void {
  if (!SCOPES.includes(scope as Scope)) throw new TypeError(`scope must be one of ${SCOPES.join('|')}`);
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096) throw new TypeError('value must be a non-empty string of at most 4096 characters');
}

function checkDuration(ms: unknown): void {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms <= 0) throw new TypeError('durationMs must be a positive integer');
}

/** Rule orders get an id derived from their alert, so re-processing the same events after a crash finds the same decision. */
function orderDecisionId(o: RemediationOrder): string {
  return `d-${createHash('sha256').update(`${o.rule}\n${o.alertId}\n${o.scope}\n${o.value}`).digest('hex').slice(0, 24)}`;
}

/** The exception (unexpired at `atMs`) covering `rule` for scope/value, if any. */
export function findException(exceptions: readonly Exception[], rule: string, scope: Scope, value: string, atMs: number): Exception | undefined {
  return exceptions.find((x) => (x.rule === rule || x.rule === '*') && x.scope === scope && x.value === value && Date.parse(x.expiresAt) > atMs);
}

/** Reads and changes `<dir>/decisions.json`. Safe to use from several processes at once. */
export class DecisionStore {
  readonly dir: string;
  readonly file: string;
  readonly #clock: Clock;
  readonly #policy: EscalationPolicy;
  #cache: { fp: string; doc: DecisionsDoc } | undefined;

  private constructor(dir: string, opts: DecisionStoreOptions) {
    this.dir = dir;
    this.file = decisionsPath(dir);
    this.#clock = opts.clock ?? systemClock;
    this.#policy = { ...DEFAULT_ESCALATION, ...opts.escalation };
  }

  /** Opens the store in `dir` (created 0700 when missing). The file is created by the first change. */
  static async open(dir: string, opts: DecisionStoreOptions = {}): Promise<DecisionStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new DecisionStore(dir, opts);
    await store.#read(); // a corrupt file is reported now, not at the first alert
    return store;
  }

  /**
   * Records a quarantine. A rule order (`RemediationOrder`) is escalated for
   * repeat offenders, suppressed by a matching exception, and idempotent: the
   * same order again, or an order for a scope/value that already has an
   * unexpired decision of the same simulated-ness, returns that decision.
   * A manual decision is always created with exactly the given duration.
   * `at` is when the order happened (event time for the analyzer; default now).
   */
  add(input: RemediationOrder | ManualDecisionInput, opts: { at?: number } = {}): Promise<AddResult> {
    checkScopeValue(input.scope, input.value);
    checkDuration(input.durationMs);
    const at = opts.at ?? this.#clock.now();
    return this.#update((doc) => {
      if ('alertId' in input) return this.#addOrder(doc, input, at);
      const d: Decision = {
        id: `d-${randomBytes(12).toString('hex')}`, scope: input.scope, value: input.value, origin: 'manual',
        reason: input.reason ?? 'manual', createdAt: iso(at), expiresAt: iso(at + input.durationMs),
        simulated: input.simulated ?? false, offence: 1,
      };
      return { doc: { ...doc, decisions: [...doc.decisions, d] }, result: { status: 'created', decision: d } as AddResult };
    }, at);
  }

  #addOrder(doc: DecisionsDoc, o: RemediationOrder, at: number): { doc: DecisionsDoc | undefined; result: AddResult } {
    const id = orderDecisionId(o);
    const same = doc.decisions.find((d) => d.id === id);
    if (same) return { doc: undefined, result: { status: 'existing', decision: same } };
    const exception = findException(doc.exceptions, o.rule, o.scope, o.value, at);
    if (exception) return { doc: undefined, result: { status: 'excepted', exception } };
    const active = doc.decisions.find((d) => d.scope === o.scope && d.value === o.value && d.simulated === o.simulated && Date.parse(d.expiresAt) > at);
    if (active) return { doc: undefined, result: { status: 'existing', decision: active } };
    const offence = offenceNumber(doc.decisions, o.scope, o.value, o.simulated, at, this.#policy);
    const d: Decision = {
      id, scope: o.scope, value: o.value, origin: o.rule, reason: `rule ${o.rule}`, alertId: o.alertId,
      createdAt: iso(at), expiresAt: iso(at + escalatedDuration(o.durationMs, offence, this.#policy)), simulated: o.simulated, offence,
    };
    return { doc: { ...doc, decisions: [...doc.decisions, d] }, result: { status: 'created', decision: d } };
  }

  /** Deletes the decision or exception with `id` (an unban, or withdrawing an exception); returns what was removed. */
  remove(id: string): Promise<Decision | Exception | undefined> {
    return this.#update((doc) => {
      const d = doc.decisions.find((x) => x.id === id);
      if (d) return { doc: { ...doc, decisions: doc.decisions.filter((x) => x !== d) }, result: d as Decision | Exception | undefined };
      const x = doc.exceptions.find((e) => e.id === id);
      if (x) return { doc: { ...doc, exceptions: doc.exceptions.filter((e) => e !== x) }, result: x };
      return { doc: undefined, result: undefined };
    });
  }

  /** Adds a false-positive exception: `rule` ('*' = all) raises no alert and orders no quarantine for scope/value until it expires. */
  addException(input: ExceptionInput, opts: { at?: number } = {}): Promise<Exception> {
    checkScopeValue(input.scope, input.value);
    checkDuration(input.durationMs);
    if (typeof input.rule !== 'string' || input.rule.length === 0) throw new TypeError('rule must be a rule name or *');
    const at = opts.at ?? this.#clock.now();
    return this.#update((doc) => {
      const x: Exception = {
        id: `x-${randomBytes(12).toString('hex')}`, rule: input.rule, scope: input.scope, value: input.value,
        createdAt: iso(at), expiresAt: iso(at + input.durationMs), ...(input.note === undefined ? {} : { note: input.note }),
      };
      return { doc: { ...doc, exceptions: [...doc.exceptions, x] }, result: x };
    }, at);
  }

  /** Decisions and exceptions; expired ones only with `includeExpired` (expired decisions are kept for the escalation lookback). */
  async list(opts: { includeExpired?: boolean; now?: number } = {}): Promise<{ decisions: Decision[]; exceptions: Exception[] }> {
    const doc = await this.#read();
    const now = opts.now ?? this.#clock.now();
    const live = (x: { expiresAt: string }): boolean => opts.includeExpired === true || Date.parse(x.expiresAt) > now;
    return { decisions: doc.decisions.filter(live), exceptions: doc.exceptions.filter(live) };
  }

  /** Unexpired decisions at `now`, enforced and simulated. */
  async active(now = this.#clock.now()): Promise<Decision[]> {
    return (await this.list({ now })).decisions;
  }

  /** Drops exceptions that expired and decisions both expired and older than the lookback; returns how many. */
  async prune(now = this.#clock.now()): Promise<number> {
    let removed = 0;
    await this.#update((doc) => {
      const before = doc.decisions.length + doc.exceptions.length;
      const next = this.#pruned(doc, now);
      removed = before - next.decisions.length - next.exceptions.length;
      return { doc: removed > 0 ? next : undefined, result: removed };
    }, now);
    return removed;
  }

  /** The unexpired exception covering `rule` for scope/value at `at`; re-reads the file only when it changed. */
  async exceptionFor(rule: string, scope: Scope, value: string, at = this.#clock.now()): Promise<Exception | undefined> {
    const doc = await this.#read();
    return findException(doc.exceptions, rule, scope, value, at);
  }

  /** The decision a rule ordered for `alertId`, if any (a later emission of the alert names it too). */
  async decisionForAlert(alertId: string): Promise<Decision | undefined> {
    const doc = await this.#read();
    return doc.decisions.find((d) => d.alertId === alertId);
  }

  #pruned(doc: DecisionsDoc, now: number): DecisionsDoc {
    const horizon = now - this.#policy.lookbackMs;
    return {
      v: 1,
      decisions: doc.decisions.filter((d) => Date.parse(d.expiresAt) > now || Date.parse(d.createdAt) > horizon),
      exceptions: doc.exceptions.filter((x) => Date.parse(x.expiresAt) > now),
    };
  }

  async #fingerprint(): Promise<string> {
    try {
      const s = await stat(this.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  async #read(): Promise<DecisionsDoc> {
    const fp = await this.#fingerprint();
    if (this.#cache?.fp === fp) return this.#cache.doc;
    const doc = await readDecisionsFile(this.file);
    this.#cache = { fp, doc };
    return doc;
  }

  /** Read-modify-write under the lock; `change` returns doc undefined to leave the file as it is. */
  async #update<T>(change: (doc: DecisionsDoc) => { doc: DecisionsDoc | undefined; result: T }, at?: number): Promise<T> {
    return withFileLock(this.file, async () => {
      this.#cache = undefined; // another writer may have changed it a moment ago
      const current = await this.#read();
      const { doc, result } = change(current);
      if (doc !== undefined) {
        const next = at === undefined ? doc : this.#pruned(doc, at);
        await writeJsonAtomic(this.file, next);
        this.#cache = { fp: await this.#fingerprint(), doc: next };
      }
      return result;
    });
  }
}
