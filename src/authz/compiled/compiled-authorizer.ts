/**
 * The Authorizer backed by the compiled index (compile-policy.ts). It
 * returns what the casbin-backed Authorizer returns for the same files —
 * the same allow/deny, reason and matched rule (`policy.csv:LINE: text`, the
 * first line with the rule's content, as casbin's explanation is mapped back)
 * — at a cost set by the request's roles and path, not by the policy's size.
 */
import type { AuthzRequest, Decision } from '../../core/types.ts';
import type { Logger } from '../../core/log.ts';
import { DecisionReasons, decision, type Authorizer } from '../authorizer.ts';
import { DecisionCache } from '../decision-cache.ts';
import type { PolicyLine } from '../policy-text.ts';
import { ruleKey } from '../policy-text.ts';
import { decisionCacheKey, trustDomainOf } from '../request-tuple.ts';
import type { CompiledPolicy, IndexNode } from './compile-policy.ts';
import type { RequestValues } from './matcher-plan.ts';
import { emptySummary, mergeSummary, verdict, type EffectSummary } from './rule-order.ts';

/** What a CompiledAuthorizer is built from. */
export interface CompiledAuthorizerParts {
  readonly compiled: CompiledPolicy;
  /** Every policy line (for mapping a rule back to the first line with its content). */
  readonly lines: readonly PolicyLine[];
  /** Base name of the policy file, as matchedRule shows it. */
  readonly policyFile: string;
  readonly version: string;
  /** Decision-cache entries (0 disables), as for the casbin engine. */
  readonly cacheEntries: number;
  readonly logger: Logger;
}

/** An Authorizer that decides with the compiled index. */
export class CompiledAuthorizer implements Authorizer {
  readonly version: string;
  readonly engine = 'compiled' as const;
  readonly fallbackReason: string | undefined = undefined;
  /** Claims conditions are never compiled (they fall back to casbin). */
  readonly usesClaims = false;
  readonly #c: CompiledPolicy;
  readonly #policyFile: string;
  readonly #logger: Logger;
  readonly #cache: DecisionCache | undefined;
  readonly #reported: (string | undefined)[];
  readonly #firstLine = new Map<string, PolicyLine>();
  // Per-request scratch state: decide() is synchronous and never re-entered.
  readonly #summary: EffectSummary = emptySummary();
  readonly #keys: (readonly string[])[];
  readonly #values: string[];

  constructor(parts: CompiledAuthorizerParts) {
    this.#c = parts.compiled;
    this.version = parts.version;
    this.#policyFile = parts.policyFile;
    this.#logger = parts.logger;
    this.#cache = parts.cacheEntries > 0 ? new DecisionCache(parts.cacheEntries) : undefined;
    this.#reported = new Array<string | undefined>(parts.compiled.ruleCount);
    for (const l of parts.lines) {
      if (l.ptype !== 'p') continue;
      const key = ruleKey(l.ptype, l.values);
      // Identical lines are one rule to casbin; its explanation maps back to the first of them.
      if (!this.#firstLine.has(key)) this.#firstLine.set(key, l);
    }
    this.#keys = parts.compiled.levels.map(() => []);
    this.#values = parts.compiled.levels.map(() => '');
  }

  /** Synchronous and total: an unexpected failure is a deny with reason `authz_error`. */
  decide(req: AuthzRequest): Decision {
    const key = this.#cache ? decisionCacheKey(req) : undefined;
    if (key !== undefined) {
      const hit = this.#cache!.get(key);
      if (hit) return hit;
    }
    try {
      const d = this.#evaluate(req);
      if (key !== undefined) this.#cache!.set(key, d);
      return d;
    } catch (e) {
      const err = e instanceof Error ? `${e.name}: ${e.message.slice(0, 200)}` : 'non-error thrown';
      this.#logger.error({ err, policyVersion: this.version }, 'authz evaluation failed; denying');
      return decision(false, DecisionReasons.error, undefined, this.version);
    }
  }

  #evaluate(req: AuthzRequest): Decision {
    const c = this.#c;
    // As the casbin wrapper does: no rules, no allow (casbin would evaluate blank rule values).
    if (c.ruleCount === 0) return decision(false, DecisionReasons.noMatchingRule, undefined, this.version);
    const values: RequestValues = { sub: req.sub, peer: req.peer, obj: req.obj, act: req.act, dom: trustDomainOf(req.peer) };
    let summary: EffectSummary;
    if (c.plan.bypass.some((p) => p(values))) {
      summary = c.all;
    } else {
      summary = this.#summary;
      summary.minAllow = Infinity;
      summary.maxAllow = -1;
      summary.minDeny = Infinity;
      if (c.plan.guards.every((g) => g(values))) {
        this.#prepare(values);
        this.#walk(c.root, 0);
      }
    }
    const [allowed, position] = verdict(c.effect, summary);
    if (position === -1) return decision(false, DecisionReasons.noMatchingRule, undefined, this.version);
    return decision(allowed, allowed ? DecisionReasons.allowed : DecisionReasons.denyRule, this.#describe(position), this.version);
  }

  /** Candidate keys (map levels) and values (pattern levels) for this request. */
  #prepare(values: RequestValues): void {
    const { levels, graphs } = this.#c;
    for (let i = 0; i < levels.length; i++) {
      const atom = levels[i]!;
      const v = values[atom.request]!;
      switch (atom.kind) {
        case 'key': this.#keys[i] = atom.wildcards.length === 0 ? [v] : [v, ...atom.wildcards]; break;
        case 'role': this.#keys[i] = graphs[i]!.reach(v, atom.domain === undefined ? '' : values[atom.domain]!); break;
        case 'pattern': this.#values[i] = v; break;
      }
    }
  }

  #walk(node: IndexNode, depth: number): void {
    switch (node.kind) {
      case 0:
        mergeSummary(this.#summary, node.summary);
        return;
      case 1: {
        const keys = this.#keys[depth]!;
        for (let i = 0; i < keys.length; i++) {
          const child = node.map.get(keys[i]!);
          if (child) this.#walk(child, depth + 1);
        }
        return;
      }
      case 2: {
        const hits: IndexNode[] = [];
        node.index.collect(this.#values[depth]!, hits);
        for (let i = 0; i < hits.length; i++) this.#walk(hits[i]!, depth + 1);
        return;
      }
    }
  }

  #describe(position: number): string {
    let s = this.#reported[position];
    if (s === undefined) {
      const rule = this.#c.lineAt[position]!;
      const line = this.#firstLine.get(ruleKey(rule.ptype, rule.values)) ?? rule;
      s = `${this.#policyFile}:${line.line}: ${line.text}`;
      this.#reported[position] = s;
    }
    return s;
  }
}
