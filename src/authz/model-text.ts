/**
 * Reads a Casbin `model.conf` ourselves, with line numbers, before any
 * engine sees it. Casbin's own reader drops blank lines before counting (its
 * line numbers drift), silently ignores unknown sections and keys, and only
 * notices an unsupported effect or an unknown matcher function at the first
 * request. All of those are load errors here, naming file:line (PRODUCT §1.9).
 * The result is engine-neutral: the compiled engine will read the same thing.
 */
import { PolicyError } from './policy-error.ts';
import { isRequestToken, type RequestToken } from './request-tuple.ts';

/**
 * The effects meshgate accepts — exactly the deny-by-default forms Casbin
 * implements (compared after Casbin's `p.` → `p_` rewrite, byte for byte,
 * as Casbin does). `!some(where (p.eft == deny))` is refused: it allows
 * whatever no rule denies, i.e. it fails open.
 */
export type EffectKind = 'allow-override' | 'allow-and-not-deny' | 'priority' | 'subject-priority';

const EFFECTS: ReadonlyMap<string, EffectKind> = new Map<string, EffectKind>([
  ['some(where (p_eft == allow))', 'allow-override'],
  ['some(where (p_eft == allow)) && !some(where (p_eft == deny))', 'allow-and-not-deny'],
  ['priority(p_eft) || deny', 'priority'],
  ['subjectPriority(p_eft) || deny', 'subject-priority'],
]);

/** A validated model. Only the default `r`, `p`, `e`, `m` take part in decisions. */
export interface ModelDefinition {
  readonly file: string;
  readonly requestTokens: readonly RequestToken[];
  /** Policy types (`p`, `p2`, …) → their column names. */
  readonly policyTypes: ReadonlyMap<string, readonly string[]>;
  /** Role types (`g`, `g2`, …) → number of columns (`_, _, _` → 3). */
  readonly roleTypes: ReadonlyMap<string, number>;
  readonly effect: EffectKind;
  /** The `m` matcher as written, and its line. */
  readonly matcher: string;
  readonly matcherLine: number;
  /** True when the matcher reads `r.claims` (or evaluates rules with `eval`, which may). */
  readonly usesClaims: boolean;
  /** True when the matcher reads the policy row (`p.` tokens or `eval`). */
  readonly usesPolicy: boolean;
}

const SECTIONS: ReadonlyMap<string, string> = new Map([
  ['request_definition', 'r'], ['policy_definition', 'p'], ['role_definition', 'g'],
  ['policy_effect', 'e'], ['matchers', 'm'],
]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Casbin's own rewrite of `r.x` / `p.x` into `r_x` / `p_x` (util.escapeAssertion).
const ESCAPE = /([()\s|&,=!><+\-*/]|^)((r|p)[0-9]*)\./g;
const STRINGS = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g;
// A single `&` or `|` (or three of them): Casbin rejects these too, but without a line.
const BAD_OPERATOR = /(?<![&|])&(?!&)|(?<![&|])\|(?!\|)|&{3,}|\|{3,}/;

interface Entry { readonly value: string; readonly line: number }

/**
 * Parses and validates model text. `knownFunctions` are the matcher
 * functions the engine provides (role functions `g…` are added from the model).
 * Throws PolicyError with the file and line of the first problem.
 */
export function parseModelText(text: string, file: string, knownFunctions: ReadonlySet<string>): ModelDefinition {
  const entries = readEntries(text, file);
  const fail = (key: string, reason: string): never => { throw new PolicyError(file, entries.get(key)?.line, reason); };
  for (const key of ['r', 'p', 'e', 'm']) {
    if (!entries.has(key)) fail(key, `missing required definition "${key} = …" in [${sectionOf(key)}]`);
  }
  for (const key of entries.keys()) {
    const n = Number(key.slice(1) || '1');
    if (n > 1 && !entries.has(key[0]! + (n === 2 ? '' : String(n - 1)))) fail(key, `"${key}" is never read: definitions must be numbered without gaps`);
  }

  const tokensOf = (key: string): string[] => {
    const tokens = entries.get(key)!.value.split(',').map((t) => t.trim());
    const seen = new Set<string>();
    for (const t of tokens) {
      if (!IDENT.test(t)) fail(key, `invalid token "${t}" in ${key}`);
      if (seen.has(t)) fail(key, `duplicate token "${t}" in ${key}`);
      seen.add(t);
    }
    return tokens;
  };

  const requestDefs = new Map<string, string[]>();
  const policyTypes = new Map<string, readonly string[]>();
  const roleTypes = new Map<string, number>();
  let effect: EffectKind | undefined;
  for (const [key, { value }] of entries) {
    switch (key[0]) {
      case 'r': {
        const tokens = tokensOf(key);
        for (const t of tokens) {
          if (!isRequestToken(t)) fail(key, `unknown request token "${t}" in ${key} (meshgate supplies sub, peer, obj, act, claims, dom)`);
        }
        requestDefs.set(key, tokens);
        break;
      }
      case 'p': policyTypes.set(key, tokensOf(key)); break;
      case 'g':
        if (!/^_(\s*,\s*_)+$/.test(value)) fail(key, `role definition ${key} must be "_, _" or "_, _, _" (got "${value}")`);
        roleTypes.set(key, value.split(',').length);
        break;
      case 'e': {
        const kind = EFFECTS.get(value.replace(ESCAPE, '$1$2_'));
        if (!kind) {
          fail(key, `unsupported policy effect "${value}": meshgate denies by default and accepts only ` +
            'some(where (p.eft == allow)); some(where (p.eft == allow)) && !some(where (p.eft == deny)); ' +
            'priority(p.eft) || deny; subjectPriority(p.eft) || deny');
        }
        if (key === 'e') effect = kind;
        break;
      }
    }
  }

  const functions = new Set([...knownFunctions, ...roleTypes.keys()]);
  for (const [key, { value }] of entries) {
    if (key[0] === 'm') checkMatcher(value, (reason) => fail(key, reason), functions, requestDefs, policyTypes, key.slice(1));
  }
  const m = entries.get('m')!;
  const code = m.value.replace(STRINGS, '""');
  const usesEval = /(^|[^\w$.])eval\s*\(/.test(code);
  return {
    file,
    requestTokens: requestDefs.get('r')! as RequestToken[],
    policyTypes,
    roleTypes,
    effect: effect!,
    matcher: m.value,
    matcherLine: m.line,
    usesClaims: usesEval || /(^|[^\w$.])r\.claims\b/.test(code),
    usesPolicy: usesEval || /(^|[^\w$.])p\./.test(code),
  };
}

function checkMatcher(
  matcher: string, fail: (reason: string) => never, functions: ReadonlySet<string>,
  requestDefs: ReadonlyMap<string, readonly string[]>, policyTypes: ReadonlyMap<string, readonly string[]>, suffix: string,
): void {
  const code = matcher.replace(STRINGS, '""');
  if (BAD_OPERATOR.test(code)) fail('invalid operator in matcher: use && and ||, not & or |');
  for (const [, , name] of code.matchAll(/(^|[^\w$.])([A-Za-z_$][\w$]*)\s*\(/g)) {
    if (name === 'in' || name === 'eval') continue; // `x in (a, b)` is an operator; eval() is Casbin's rule evaluation
    if (!functions.has(name!)) fail(`unknown function "${name}" in matcher (known: ${[...functions].sort().join(', ')})`);
  }
  // A reference to a token the definitions do not declare is undefined at
  // request time: every request would become an evaluation error.
  for (const [, , def, token] of code.matchAll(/(^|[^\w$.])([rp]\d*)\.([A-Za-z_$][\w$]*)/g)) {
    const defs = def!.startsWith('r') ? requestDefs : policyTypes;
    const tokens = defs.get(def!);
    if (!tokens) fail(`matcher${suffix ? ` m${suffix}` : ''} reads ${def}.${token}, but ${def} is not defined`);
    if (!tokens.includes(token!)) fail(`matcher reads ${def}.${token}, but ${def} = ${tokens.join(', ')} has no "${token}"`);
  }
}

function sectionOf(key: string): string {
  for (const [name, letter] of SECTIONS) if (letter === key[0]) return name;
  return '?';
}

/** Lines → `key = value` entries, mirroring Casbin's config reader (comments, `\` continuation). */
function readEntries(text: string, file: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const seenSections = new Set<string>();
  let section: string | undefined;
  let pending: { text: string; line: number } | undefined;
  const finish = (body: string, line: number): void => {
    const eq = body.indexOf('=');
    if (eq === -1) throw new PolicyError(file, line, `expected "key = value", got "${body}"`);
    const key = body.slice(0, eq).trim();
    const value = body.slice(eq + 1).trim();
    if (section === undefined) throw new PolicyError(file, line, `"${key}" is outside any [section]`);
    const letter = SECTIONS.get(section)!;
    if (!new RegExp(`^${letter}([2-9]|[1-9][0-9]+)?$`).test(key)) {
      throw new PolicyError(file, line, `unexpected key "${key}" in [${section}] (expected ${letter}, ${letter}2, …)`);
    }
    if (entries.has(key)) throw new PolicyError(file, line, `duplicate definition of "${key}" (first on line ${entries.get(key)!.line})`);
    if (value === '') throw new PolicyError(file, line, `empty definition of "${key}"`);
    entries.set(key, { value, line });
  };
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    // Casbin cuts a line at the first `#`, then at the first `;`: so do we.
    let n = raw;
    const hash = n.indexOf('#');
    if (hash > -1) n = n.slice(0, hash);
    const semi = n.indexOf(';');
    if (semi > -1) n = n.slice(0, semi);
    const line = n.trim();
    if (!line) return;
    if (line.startsWith('[') && line.endsWith(']')) {
      if (pending) { finish(pending.text, pending.line); pending = undefined; }
      const name = line.slice(1, -1);
      if (!SECTIONS.has(name)) throw new PolicyError(file, lineNo, `unknown section [${name}] (expected one of ${[...SECTIONS.keys()].join(', ')})`);
      if (seenSections.has(name)) throw new PolicyError(file, lineNo, `duplicate section [${name}]`);
      seenSections.add(name);
      section = name;
      return;
    }
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1).trim() : line;
    pending = pending ? { text: pending.text + part, line: pending.line } : { text: part, line: lineNo };
    if (!continued) { finish(pending.text, pending.line); pending = undefined; }
  });
  if (pending) finish(pending.text, pending.line);
  return entries;
}
