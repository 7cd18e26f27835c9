/**
 * Differential-test harness: runs the compiled engine and the `casbin`
 * package side by side on the same model and policy files and compares, per
 * request, allow/deny, reason and matched rule. On a mismatch it shrinks the
 * case (policy lines by delta debugging, then the request's fields) and fails
 * with the minimal model, policy and request.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringAdapter, newEnforcer, newModelFromString, type Enforcer } from 'casbin';
import { authorizerFromText, loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import type { Authorizer } from '../../src/authz/authorizer.ts';
import { trustDomainOf } from '../../src/authz/request-tuple.ts';
import type { AuthzRequest } from '../../src/core/types.ts';

/** mulberry32: a tiny seeded PRNG, so every failure is reproducible from its seed. */
export interface Rng {
  next(): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

/** A seeded PRNG. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

/** A request as the differential tests describe it: `dom` becomes the peer's trust domain. */
export interface Req {
  readonly sub: string;
  readonly dom: string;
  readonly obj: string;
  readonly act: string;
}

/** What a decision is compared on. */
export interface Outcome {
  readonly allowed: boolean;
  readonly reason: string;
  readonly matchedRule: string | undefined;
}

function toAuthz(q: Req): AuthzRequest {
  return { sub: q.sub, peer: q.dom === '' ? '' : `spiffe://${q.dom}/w`, obj: q.obj, act: q.act, claims: {} };
}

function requestTokens(model: string): string[] {
  return /^\s*r\s*=\s*(.+)$/m.exec(model)![1]!.split(',').map((t) => t.trim());
}

/** Casbin's answer, explained the way meshgate's casbin wrapper maps it back to a policy line. */
export function casbinOutcome(enforcer: Enforcer, tokens: readonly string[], lines: readonly string[], q: Req): Outcome {
  const a = toAuthz(q);
  const rvals = tokens.map((t) => (t === 'dom' ? trustDomainOf(a.peer) : (a as unknown as Record<string, string>)[t]));
  const [allowed, rule] = enforcer.enforceExSync(...rvals) as [boolean, string[]];
  if (rule.length === 0) return { allowed, reason: allowed ? 'allowed' : 'authz_no_matching_rule', matchedRule: undefined };
  // The first line with the rule's content (identical lines are one rule to casbin). Generated lines hold no quotes.
  const at = lines.findIndex((l) => {
    const cells = l.split(',').map((c) => c.trim());
    return cells[0] === 'p' && cells.length === rule.length + 1 && cells.slice(1).every((c, i) => c === rule[i]);
  });
  assert.ok(at >= 0, `casbin explained with a rule not in the file: ${rule.join(', ')}`);
  return { allowed, reason: allowed ? 'allowed' : 'authz_deny_rule', matchedRule: `policy.csv:${at + 1}: ${lines[at]!.trim()}` };
}

/** Our answer. */
export function ourOutcome(a: Authorizer, q: Req): Outcome {
  const d = a.decide(toAuthz(q));
  return { allowed: d.allowed, reason: d.reason, matchedRule: d.matchedRule };
}

async function casbinFromText(model: string, policy: string): Promise<Enforcer> {
  return newEnforcer(newModelFromString(model), new StringAdapter(policy));
}

async function compiledFromText(model: string, policy: string): Promise<Authorizer> {
  return authorizerFromText({ modelPath: 'model.conf', policyPath: 'policy.csv', modelText: model, policyText: policy, decisionCacheEntries: 0, engine: 'compiled' });
}

/** Counts of outcomes, to prove a corpus exercised allows, deny rules and misses. */
export interface Tally { allowed: number; denyRule: number; noMatch: number; requests: number }

/**
 * Loads `model` + `lines` from the same files into both engines and compares
 * every request. Fails (after shrinking) on the first mismatch.
 */
export async function differential(name: string, model: string, lines: readonly string[], requests: Iterable<Req>): Promise<Tally> {
  const dir = mkdtempSync(join(tmpdir(), 'mg-authz-engine-'));
  try {
    const modelPath = join(dir, 'model.conf');
    const policyPath = join(dir, 'policy.csv');
    const policy = lines.join('\n') + '\n';
    writeFileSync(modelPath, model);
    writeFileSync(policyPath, policy);
    const ours = await loadAuthorizer({ modelPath, policyPath, decisionCacheEntries: 0, engine: 'compiled' });
    assert.equal(ours.engine, 'compiled', `${name}: the compiled engine must serve this shape`);
    const theirs = await newEnforcer(modelPath, policyPath);
    const tokens = requestTokens(model);
    const tally: Tally = { allowed: 0, denyRule: 0, noMatch: 0, requests: 0 };
    for (const q of requests) {
      const got = ourOutcome(ours, q);
      const want = casbinOutcome(theirs, tokens, lines, q);
      if (!sameOutcome(got, want)) await reportMinimal(name, model, lines, q);
      tally.requests++;
      if (got.allowed) tally.allowed++;
      else if (got.reason === 'authz_deny_rule') tally.denyRule++;
      else tally.noMatch++;
    }
    return tally;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  return a.allowed === b.allowed && a.reason === b.reason && a.matchedRule === b.matchedRule;
}

/** True when the two engines disagree on `q` under `model` + `lines` (a load failure counts as disagreement). */
async function disagrees(model: string, lines: readonly string[], q: Req): Promise<boolean> {
  try {
    const policy = lines.join('\n') + '\n';
    const ours = await compiledFromText(model, policy);
    const theirs = await casbinFromText(model, policy);
    return !sameOutcome(ourOutcome(ours, q), casbinOutcome(theirs, requestTokens(model), lines, q));
  } catch {
    return false;
  }
}

/** Delta debugging over policy lines, then field-by-field request simplification; always throws. */
async function reportMinimal(name: string, model: string, lines: readonly string[], q: Req): Promise<never> {
  let current = [...lines];
  // ddmin: try dropping chunks of decreasing size while the mismatch persists.
  for (let chunk = Math.ceil(current.length / 2); chunk >= 1; chunk = chunk === 1 ? 0 : Math.ceil(chunk / 2)) {
    for (let start = 0; start < current.length;) {
      const candidate = [...current.slice(0, start), ...current.slice(start + chunk)];
      if (candidate.some((l) => l.startsWith('p')) && await disagrees(model, candidate, q)) current = candidate;
      else start += chunk;
    }
  }
  let req = { ...q };
  for (const field of ['sub', 'dom', 'obj', 'act'] as const) {
    for (const simpler of simplifications(req[field])) {
      const candidate = { ...req, [field]: simpler };
      if (await disagrees(model, current, candidate)) { req = candidate; break; }
    }
  }
  const policy = current.join('\n') + '\n';
  const ours = ourOutcome(await compiledFromText(model, policy), req);
  const theirs = casbinOutcome(await casbinFromText(model, policy), requestTokens(model), current, req);
  assert.fail([
    `${name}: the compiled engine and casbin disagree. Minimal case:`,
    '--- model.conf', model.trim(), '--- policy.csv', ...current.map(visible), '--- request', visible(JSON.stringify(req)),
    `--- compiled: ${visible(JSON.stringify(ours))}`, `--- casbin:   ${visible(JSON.stringify(theirs))}`,
  ].join('\n'));
}

/** Escapes what a terminal would not show (line separators, non-ASCII) so the case can be pasted back. */
function visible(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function simplifications(v: string): string[] {
  const out = new Set<string>(['']);
  const segs = v.split('/');
  for (let i = 0; i < segs.length; i++) out.add([...segs.slice(0, i), ...segs.slice(i + 1)].join('/'));
  for (let n = 1; n < v.length; n = n * 2) out.add(v.slice(0, n));
  out.delete(v);
  return [...out].sort((a, b) => a.length - b.length);
}
