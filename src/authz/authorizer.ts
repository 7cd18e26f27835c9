/**
 * The engine-neutral authorization contract. The rest of meshgate sees only
 * this. Two engines implement it and return the same decisions (PRODUCT
 * §1.4, proven by test/unit/authz-engine-differential*.test.ts): the
 * compiled index (compiled/), whose cost does not grow with the policy, and
 * Casbin itself (casbin-authorizer.ts) for models the compiler does not
 * support.
 */
import type { AuthzRequest, Decision } from '../core/types.ts';
import { Errors, REASON_ALLOWED } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

/** A loaded, immutable model + policy that decides requests. */
export interface Authorizer {
  /** `sha256:` + first 16 hex of SHA-256(model text + '\n' + policy text). */
  readonly version: string;
  /** Which engine decides. */
  readonly engine: AuthzEngine;
  /** Why the compiled engine could not serve this model and casbin does instead (engine `auto`). */
  readonly fallbackReason?: string | undefined;
  /** True when the matcher reads claims; such decisions are never cached. */
  readonly usesClaims: boolean;
  /**
   * Decides one request. Synchronous and total: it never throws; an
   * evaluation failure is a deny with reason `authz_error` (fail closed).
   */
  decide(req: AuthzRequest): Decision;
}

/** The engines that can decide. */
export type AuthzEngine = 'compiled' | 'casbin';

/**
 * `auto`: compiled when the model is supported, else casbin (with a
 * fallback reason); `compiled`: refuse unsupported models (PolicyError);
 * `casbin`: always casbin.
 */
export type AuthzEngineChoice = 'auto' | AuthzEngine;

/** Where to load a model and policy from, and how much to cache. */
export interface AuthorizerOptions {
  readonly modelPath: string;
  readonly policyPath: string;
  /** Decision-cache entries for this instance (0 disables). */
  readonly decisionCacheEntries: number;
  /** Engine selection (default `auto`). */
  readonly engine?: AuthzEngineChoice | undefined;
  /** Receives evaluation errors (never request claims). Defaults to silent. */
  readonly logger?: Logger | undefined;
}

/** The stable reasons a decision can carry. */
export const DecisionReasons = Object.freeze({
  allowed: REASON_ALLOWED,
  denyRule: Errors.AUTHZ_DENY_RULE.reason,
  noMatchingRule: Errors.AUTHZ_DENIED.reason,
  error: Errors.AUTHZ_ERROR.reason,
});

/** Builds a frozen decision. */
export function decision(allowed: boolean, reason: string, matchedRule: string | undefined, policyVersion: string): Decision {
  return Object.freeze({ allowed, reason, matchedRule, policyVersion });
}
