/**
 * Loads a model and policy and picks the engine that decides them. This is
 * the one module that owns the `casbin` package: it validates the model and
 * policy with our own readers first (so every error names file:line), then
 * either compiles them (compiled/, engine `compiled` or `auto`) or hands the
 * same bytes to Casbin and wraps its loose `any[]` API behind the
 * engine-neutral Authorizer (engine `casbin`, or `auto` on an unsupported
 * model, with the reason in `fallbackReason`).
 *
 * Divergence from plain Casbin, on purpose (fail closed):
 * - an effect that is not deny-by-default is a load error (model-text.ts);
 * - with zero `p` rules Casbin evaluates the matcher once against blank rule
 *   values (which can allow a request whose fields are blank); we deny.
 * - Casbin's JSON request parsing (`acceptJsonRequest`) stays off, so a
 *   subject that looks like JSON is compared as the string it is.
 * - a keyMatch2/3/4/5 pattern that would make Casbin loop forever is a load
 *   error (compiled/hanging-patterns.ts).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { BracketAwareCsvParser, FunctionMap, StringAdapter, Util, newEnforcer, newModelFromString, type Enforcer, type Model } from 'casbin';
import type { AuthzRequest, Decision } from '../core/types.ts';
import { silentLogger } from '../core/log.ts';
import { DecisionCache } from './decision-cache.ts';
import { DecisionReasons, decision, type Authorizer, type AuthorizerOptions, type AuthzEngineChoice } from './authorizer.ts';
import { compilePolicy, isCompileFailure } from './compiled/compile-policy.ts';
import { CompiledAuthorizer } from './compiled/compiled-authorizer.ts';
import { findHangingPattern } from './compiled/hanging-patterns.ts';
import type { GlobMatch } from './compiled/operators.ts';
import { parseModelText, type ModelDefinition } from './model-text.ts';
import { parsePolicyText, ruleKey, type PolicyLine, type PolicyLineTokenizer } from './policy-text.ts';
import { PolicyError } from './policy-error.ts';
import { decisionCacheKey, requestValue } from './request-tuple.ts';

const KNOWN_FUNCTIONS: ReadonlySet<string> = new Set(
  [...(FunctionMap.loadFunctionMap().getFunctions() as Map<string, unknown>).keys()],
);

const csv = new BracketAwareCsvParser();

/** Casbin's globMatch (minimatch, leading "*" + "/" quirk included): the compiled engine calls the very same function. */
const casbinGlobMatch: GlobMatch = (value, pattern) => Boolean(Util.globMatch(value, pattern));

// A line without quotes, CR or LF, and with well-formed UTF-16, is split by Casbin's CSV
// reader (csv-parse, `trim: true`) exactly at its commas; each field loses leading spaces,
// tabs and form feeds, and trailing whitespace of any kind (csv-parse's rtrim is
// String#trimEnd); its BracketAwareCsvParser then re-joins fields while brackets are open. Doing both here is ~50× faster than csv-parse, which is what lets
// 110k rules load in well under 2 s. test/unit/authz-engine-tokenize.test.ts holds this
// shortcut to Casbin's own parser on random lines.
const PLAIN_LINE = /^[^"\r\n]*$/;
const CSV_LTRIM = /^[ \t\f]+/;

function splitPlainLine(line: string): string[] {
  const out: string[] = [];
  let current = '';
  let depth = 0;
  for (const raw of line.split(',')) {
    const field = raw.replace(CSV_LTRIM, '').trimEnd();
    if (field.includes('(') || field.includes(')')) {
      for (const ch of field) {
        if (ch === '(') depth++;
        else if (ch === ')') depth--;
      }
    }
    // Casbin's own join: a comma only after a non-empty partial field.
    current += (current ? ',' : '') + field;
    if (depth === 0) {
      out.push(current);
      current = '';
    }
  }
  if (depth !== 0) throw new Error(`Unmatched brackets in policy line: ${line}`);
  return out.map((v) => v.trim());
}

/** Casbin's own CSV reading plus the unquoting of its PolicyLoader, so our line map sees what Casbin sees. */
export const casbinTokenize: PolicyLineTokenizer = (line) => {
  if (PLAIN_LINE.test(line) && line.isWellFormed()) return splitPlainLine(line);
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
 * Loads and validates a model and policy and returns the Authorizer for
 * them (engine per `opts.engine`, default `auto`). Throws PolicyError (file,
 * line, reason) when either is broken, or when `engine: compiled` is asked
 * for a model the compiler does not support.
 */
export async function loadAuthorizer(opts: AuthorizerOptions): Promise<Authorizer> {
  checkOptions(opts);
  const modelText = await readText(opts.modelPath);
  const policyText = await readText(opts.policyPath);
  return authorizerFromText({ ...opts, modelText, policyText });
}

/** {@link loadAuthorizer} on texts already read; paths only name the files in errors and matched rules. */
export async function authorizerFromText(opts: AuthorizerOptions & { readonly modelText: string; readonly policyText: string }): Promise<Authorizer> {
  checkOptions(opts);
  const { modelPath, policyPath, modelText, policyText } = opts;
  const engine: AuthzEngineChoice = opts.engine ?? 'auto';
  const logger = opts.logger ?? silentLogger;
  const model = parseModelText(modelText, modelPath, KNOWN_FUNCTIONS);
  const lines = parsePolicyText(policyText, policyPath, model, casbinTokenize);
  const casbinModel = parseCasbinModel(modelText, model);
  const version = policyVersion(modelText, policyText);
  let fallbackReason: string | undefined;
  if (engine !== 'casbin') {
    const compiled = compilePolicy(model, lines, casbinGlobMatch);
    if (!isCompileFailure(compiled)) {
      return new CompiledAuthorizer({ compiled, lines, policyFile: basename(policyPath), version, cacheEntries: opts.decisionCacheEntries, logger });
    }
    const file = compiled.where === 'model' ? modelPath : policyPath;
    if (compiled.hangs) throw new PolicyError(file, compiled.line, compiled.reason);
    if (engine === 'compiled') throw new PolicyError(file, compiled.line, `engine "compiled" cannot serve this: ${compiled.reason}`);
    const where = compiled.where === 'model' ? basename(modelPath) : basename(policyPath);
    fallbackReason = `${where}${compiled.line === undefined ? '' : `:${compiled.line}`}: ${compiled.reason}`;
  }
  const hang = findHangingPattern(model, lines);
  if (hang) throw new PolicyError(policyPath, hang.line.line, hang.reason);
  const enforcer = await buildEnforcer(casbinModel, policyText, lines, policyPath);
  probeMatcher(enforcer, model);
  return new CasbinAuthorizer({
    enforcer, model, lines, policyFile: basename(policyPath), modelFile: basename(modelPath),
    version, cacheEntries: opts.decisionCacheEntries, logger, fallbackReason,
  });
}

function checkOptions(opts: AuthorizerOptions): void {
  if (!Number.isInteger(opts.decisionCacheEntries) || opts.decisionCacheEntries < 0) {
    throw new TypeError('decisionCacheEntries must be a non-negative integer');
  }
  if (opts.engine !== undefined && opts.engine !== 'auto' && opts.engine !== 'compiled' && opts.engine !== 'casbin') {
    throw new TypeError(`engine must be auto, compiled or casbin (got ${String(opts.engine)})`);
  }
}

/** Casbin's own model reader, on every engine, so both accept and refuse the same models. */
function parseCasbinModel(modelText: string, def: ModelDefinition): Model {
  try {
    return newModelFromString(modelText);
  } catch (e) {
    const line = /matcher/i.test(String(e)) ? def.matcherLine : undefined;
    throw new PolicyError(def.file, line, `model syntax: ${(e as Error).message}`, { cause: e });
  }
}

async function buildEnforcer(model: Model, policyText: string, lines: readonly PolicyLine[], policyPath: string): Promise<Enforcer> {
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
  readonly fallbackReason: string | undefined;
}

class CasbinAuthorizer implements Authorizer {
  readonly version: string;
  readonly engine = 'casbin' as const;
  readonly fallbackReason: string | undefined;
  readonly usesClaims: boolean;
  readonly #p: CasbinAuthorizerParts;
  readonly #cache: DecisionCache | undefined;
  readonly #byRule = new Map<string, PolicyLine>();
  readonly #hasRules: boolean;
  readonly #matcherRule: string;

  constructor(p: CasbinAuthorizerParts) {
    this.#p = p;
    this.version = p.version;
    this.fallbackReason = p.fallbackReason;
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
