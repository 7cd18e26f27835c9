/**
 * Runs policy unit tests through the real pipeline (`admit`), behind one
 * catch-all `auth: none` route: the tuple is built by the same code the proxy
 * uses (sub = token subject, else peer, else anonymous; obj = the canonical
 * path), so a test can never pass here and fail in production for a reason
 * that lives in the tuple. A path the gateway would refuse with 400 before
 * authorization is reported as such (a deny with the 400 reason).
 */
import type { Authorizer } from '../authz/authorizer.ts';
import type { AuthzRequest } from '../core/types.ts';
import { createPipeline, type PipelineDeps } from '../proxy/pipeline.ts';
import { compileRoutes } from '../routes/table.ts';
import { AuthorizerTap, assertedPeer, assumedPrincipal, assumedTokenVerifier, runAdmit, syntheticInput } from './synthetic-request.ts';
import type { PolicyTestCase, PolicyTestSuite } from './test-file.ts';

/** What the pipeline decided for one case. */
export interface TestOutcome {
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
  /** The matched policy line (`policy.csv:12: p, …`), undefined when none. */
  readonly rule: string | undefined;
  /** The tuple the authorizer saw; undefined when the request was refused before authorization. */
  readonly tuple: AuthzRequest | undefined;
}

/** One test's verdict. */
export interface TestResult {
  readonly name: string;
  readonly line: number;
  readonly ok: boolean;
  /** Which expectations failed. */
  readonly mismatches: readonly ('decision' | 'reason' | 'rule')[];
  readonly expect: { readonly decision: 'allow' | 'deny'; readonly reason?: string | undefined; readonly rule?: string | undefined };
  readonly got: TestOutcome;
}

/** The outcome of a test file. */
export interface TestReport {
  readonly file: string;
  readonly modelPath: string;
  readonly policyPath: string;
  readonly policyVersion: string;
  readonly passed: number;
  readonly failed: number;
  readonly results: readonly TestResult[];
}

const CATCH_ALL = compileRoutes([{ name: 'policy-test', match: { pathPrefix: '/' }, auth: 'none', requireBoundToken: false }]);

/** Decides one case's request with `authorizer` through the pipeline. */
export async function decideTestRequest(authorizer: Authorizer, tc: PolicyTestCase, encodedSlash: PipelineDeps['encodedSlash']): Promise<TestOutcome> {
  const tap = new AuthorizerTap(authorizer);
  const { sub, peer, claims } = tc.request;
  const admit = createPipeline({
    routes: () => CATCH_ALL,
    authorizer: () => tap,
    jwt: sub !== undefined ? assumedTokenVerifier(assumedPrincipal(sub, claims ?? {})) : undefined,
    trustedForwarders: new Set(),
    encodedSlash,
    maxHeaders: 100,
    maxBodyBytes: Number.MAX_SAFE_INTEGER,
    forwardClaims: [],
    setClientCertHeader: false,
    gatewayId: undefined,
  });
  const input = syntheticInput(tc.request.method, tc.request.path, peer !== undefined ? assertedPeer(peer, undefined) : { kind: 'none' });
  const { state, error } = await runAdmit(admit, input);
  return {
    decision: error === undefined ? 'allow' : 'deny',
    reason: error?.reason ?? state.decision?.reason ?? 'allowed',
    rule: state.decision?.matchedRule,
    tuple: tap.tuple,
  };
}

const LOCATED = /^[^:\s]+:\d+: (.*)$/;
const norm = (s: string): string => s.split(',').map((x) => x.trim()).join(', ');

/** True when a matched rule satisfies an expected `rule:` (its text, `file:line`, or `none`). */
export function ruleMatches(expected: string, got: string | undefined): boolean {
  if (expected === 'none') return got === undefined;
  if (got === undefined) return false;
  if (norm(got) === norm(expected) || got.startsWith(`${expected}:`)) return true;
  const text = LOCATED.exec(got)?.[1];
  return text !== undefined && norm(text) === norm(expected);
}

/** Runs every case of `suite` against `authorizer`. */
export async function runPolicyTests(suite: PolicyTestSuite, authorizer: Authorizer, paths: { modelPath: string; policyPath: string }): Promise<TestReport> {
  const results: TestResult[] = [];
  for (const tc of suite.tests) {
    const got = await decideTestRequest(authorizer, tc, suite.encodedSlash);
    const mismatches: ('decision' | 'reason' | 'rule')[] = [];
    if (got.decision !== tc.expect) mismatches.push('decision');
    if (tc.reason !== undefined && tc.reason !== got.reason) mismatches.push('reason');
    if (tc.rule !== undefined && !ruleMatches(tc.rule, got.rule)) mismatches.push('rule');
    results.push({ name: tc.name, line: tc.line, ok: mismatches.length === 0, mismatches, expect: { decision: tc.expect, reason: tc.reason, rule: tc.rule }, got });
  }
  const failed = results.filter((r) => !r.ok).length;
  return { file: suite.file, ...paths, policyVersion: authorizer.version, passed: results.length - failed, failed, results };
}
