/**
 * The one module that owns the `casbin` package. It validates the model and
 * policy with our own readers first (so every error names file:line), then
 * hands the same bytes to Casbin and wraps its loose `any[]` API behind the
 * engine-neutral Authorizer.
 *
 * Divergence from plain Casbin, on purpose (fail closed):
 * - an effect that is not deny-by-default is a load error (model-text.ts);
 * - with zero `p` rules Casbin evaluates the matcher once against blank rule
 *   values (which can allow a request whose fields are blank); we deny.
 * - Casbin's JSON request parsing (`acceptJsonRequest`) stays off, so a
 *   subject that looks like JSON is compared as the string it is.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { BracketAwareCsvParser, FunctionMap, StringAdapter, newEnforcer, newModelFromString, type Enforcer, type Model } from 'casbin';
import type { AuthzRequest, Decision } from '../core/types.ts';
import { silentLogger } from '../core/log.ts';
import { DecisionCache } from './decision-cache.ts';
import { DecisionReasons, decision, type Authorizer, type AuthorizerOptions } from './authorizer.ts';
import { parseModelText, type ModelDefinition } from './model-text.ts';
import { parsePolicyText, ruleKey, type PolicyLine, type PolicyLineTokenizer } from './policy-text.ts';
import { PolicyError } from './policy-error.ts';
import { decisionCacheKey, requestValue } from './request-tuple.ts';

const KNOWN_FUNCTIONS: ReadonlySet<string> = new Set(
  [...(FunctionMap.loadFunctionMap().getFunctions() as Map<string, unknown>).keys()],
);

const csv = new BracketAwareCsvParser();

/** Casbin's own CSV reading plus the unquoting of its PolicyLoader, so our line map sees what Casbin sees. */
const casbinTokenize: PolicyLineTokenizer = (line) => {
  const row = csv.parse(line)?.[0];
  if (!row || row.length === 0) return null;
  const unquote = (v: string): string => (v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1) : v);
  const [first = '', ...rest] = row;
  return [unquote(first.trim()), ...rest.map((v) => unquote(v).replace(/""/g, '"').trim())];
};

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new PolicyError(path, undefined, `cannot read file (${code})`, { cause: e });
  }
}

/** `sha256:` + first 16 hex of SHA-256 over model text, '\n', policy text. */
export function policyVersion(modelText: string, policyText: string): string {
  return 'sha256:' + createHash('sha256').update(modelText).update('\n').update(policyText).digest('hex').slice(0, 16);
}

/**
 * Loads and validates a model and policy, and returns an Authorizer backed
 * by Casbin. Throws PolicyError (file, line, reason) when either is broken.
 */
export async function loadAuthorizer(opts: AuthorizerOptions): Promise<Authorizer> {
  const { modelPath, policyPath } = opts;
  if (!Number.isInteger(opts.decisionCacheEntries) || opts.decisionCacheEntries < 0) {
    throw new TypeError('decisionCacheEntries must be a non-negative integer');
  }
  const modelText = await readText(modelPath);
  const policyText = await readText(policyPath);
  const model = parseModelText(modelText, modelPath, KNOWN_FUNCTIONS);
  const lines = parsePolicyText(policyText, policyPath, model, casbinTokenize);
  const enforcer = await buildEnforcer(modelText, policyText, model, lines, policyPath);
  probeMatcher(enforcer, model);
  return new CasbinAuthorizer({
    enforcer, model, lines, policyFile: basename(policyPath), modelFile: basename(modelPath),
    version: policyVersion(modelText, policyText), cacheEntries: opts.decisionCacheEntries, logger: opts.logger ?? silentLogger,
  });
}

async function buildEnforcer(modelText: string, policyText: string, def: ModelDefinition, lines: readonly PolicyLine[], policyPath: string): Promise<Enforcer> {
  let model: Model;
  try {
    model = newModelFromString(modelText);
  } catch (e) {
    const line = /matcher/i.test(String(e)) ? def.matcherLine : undefined;
    throw new PolicyError(def.file, line, `model syntax: ${(e as Error).message}`, { cause: e });
  }
  let enforcer: Enforcer;
  try {
    enforcer = await newEnforcer(model, new StringAdapter(policyText));
  } catch (e) {
    throw new PolicyError(policyPath, undefined, `policy rejected by casbin: ${(e as Error).message}`, { cause: e });
  }
  // Belt and braces: Casbin must have read exactly the rules we validated.
  const loaded = enforcer.getModel().model;
  for (const sec of ['p', 'g']) {
    for (const [ptype, ast] of loaded.get(sec) ?? new Map()) {
      const ours = lines.filter((l) => l.ptype === ptype).length;
      if (ast.policy.length !== ours) {
        throw new PolicyError(policyPath, undefined, `casbin read ${ast.policy.length} ${ptype} rule(s), meshgate read ${ours}`);
      }
    }
  }
  return enforcer;
}

/**
 * Casbin compiles the matcher at the first request; compile it now so a
 * syntax error is a load error on the matcher's line. Only parse errors
 * (jsep's, which carry `index` and `description`) count: runtime errors on
 * the blank probe request say nothing about real requests.
 */
function probeMatcher(enforcer: Enforcer, model: ModelDefinition): void {
  const probe: AuthzRequest = { sub: '', peer: '', obj: '/', act: 'GET', claims: {} };
  try {
    enforcer.enforceExSync(...model.requestTokens.map((t) => requestValue(t, probe)));
  } catch (e) {
    if (e instanceof Error && typeof (e as { index?: unknown }).index === 'number' && typeof (e as { description?: unknown }).description === 'string') {
      throw new PolicyError(model.file, model.matcherLine, `matcher syntax: ${e.message}`, { cause: e });
    }
  }
}

interface CasbinAuthorizerParts {
  readonly enforcer: Enforcer;
  readonly model: ModelDefinition;
  readonly lines: readonly PolicyLine[];
  readonly policyFile: string;
  readonly modelFile: string;
  readonly version: string;
  readonly cacheEntries: number;
  readonly logger: NonNullable<AuthorizerOptions['logger']>;
}

class CasbinAuthorizer implements Authorizer {
  readonly version: string;
  readonly engine = 'casbin' as const;
  readonly usesClaims: boolean;
  readonly #p: CasbinAuthorizerParts;
  readonly #cache: DecisionCache | undefined;
  readonly #byRule = new Map<string, PolicyLine>();
  readonly #hasRules: boolean;
  readonly #matcherRule: string;

  constructor(p: CasbinAuthorizerParts) {
    this.#p = p;
    this.version = p.version;
    this.usesClaims = p.model.usesClaims;
    // Claims are unbounded and per-token: caching on them would neither hit nor stay small.
    this.#cache = p.model.usesClaims || p.cacheEntries === 0 ? undefined : new DecisionCache(p.cacheEntries);
    for (const l of p.lines) {
      const key = ruleKey(l.ptype, l.values);
      // Identical lines are indistinguishable to the engine; the first one is reported.
      if (!this.#byRule.has(key)) this.#byRule.set(key, l);
    }
    this.#hasRules = p.lines.some((l) => l.ptype === 'p');
    this.#matcherRule = `${p.modelFile}:${p.model.matcherLine}: m = ${p.model.matcher}`;
  }

  decide(req: AuthzRequest): Decision {
    const key = this.#cache ? decisionCacheKey(req) : undefined;
    if (key !== undefined) {
      const hit = this.#cache!.get(key);
      if (hit) return hit;
    }
    const d = this.#evaluate(req);
    if (key !== undefined && d.reason !== DecisionReasons.error) this.#cache!.set(key, d);
    return d;
  }

  #evaluate(req: AuthzRequest): Decision {
    const { model, enforcer } = this.#p;
    try {
      if (model.usesPolicy && !this.#hasRules) return decision(false, DecisionReasons.noMatchingRule, undefined, this.version);
      const [allowed, rule] = enforcer.enforceExSync(...model.requestTokens.map((t) => requestValue(t, req)));
      if (typeof allowed !== 'boolean' || !Array.isArray(rule)) throw new TypeError('casbin returned an unexpected result');
      if (!model.usesPolicy) {
        return allowed
          ? decision(true, DecisionReasons.allowed, this.#matcherRule, this.version)
          : decision(false, DecisionReasons.noMatchingRule, undefined, this.version);
      }
      // Casbin explains with the rule that settled the effect: the allowing
      // rule, or the deny rule that overrode; none when nothing matched.
      const matched = rule.length > 0 ? this.#describe(rule) : undefined;
      if (allowed) return decision(true, DecisionReasons.allowed, matched, this.version);
      return matched !== undefined
        ? decision(false, DecisionReasons.denyRule, matched, this.version)
        : decision(false, DecisionReasons.noMatchingRule, undefined, this.version);
    } catch (e) {
      // Library messages can echo request values: log the class and a bounded message only.
      const err = e instanceof Error ? `${e.name}: ${e.message.slice(0, 200)}` : 'non-error thrown';
      this.#p.logger.error({ err, policyVersion: this.version }, 'authz evaluation failed; denying');
      return decision(false, DecisionReasons.error, undefined, this.version);
    }
  }

  #describe(rule: readonly string[]): string {
    const line = this.#byRule.get(ruleKey('p', rule));
    return line ? `${this.#p.policyFile}:${line.line}: ${line.text}` : `${this.#p.policyFile}: p, ${rule.join(', ')}`;
  }
}
