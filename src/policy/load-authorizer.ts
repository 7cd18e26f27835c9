/**
 * The one place the policy tools load an Authorizer. It goes through the
 * public `loadAuthorizer` so that check, test, explain and replay decide with
 * whichever engine the gateway itself would use for the same files
 * (`auto` unless told otherwise, as authz.engine defaults to).
 */
import type { Authorizer, AuthzEngineChoice } from '../authz/authorizer.ts';
import { loadAuthorizer } from '../authz/casbin-authorizer.ts';
import type { PolicyPaths } from './policy-source.ts';

/**
 * Loads and validates a model + policy. Throws PolicyError (file, line,
 * reason) when either is broken. No decision cache: the tools either decide
 * each request once or keep their own memo.
 */
export function loadPolicyAuthorizer(paths: PolicyPaths, engine: AuthzEngineChoice = 'auto'): Promise<Authorizer> {
  return loadAuthorizer({ modelPath: paths.modelPath, policyPath: paths.policyPath, decisionCacheEntries: 0, engine });
}
