/**
 * Loading the configuration: YAML text → `${VAR}` substitution → schema
 * validation → semantic checks → path resolution → frozen `Config`.
 *
 * Every problem is collected before anything is thrown, each with its path
 * (`routes[1].auth`) and, when the YAML source has it, its line and column, so
 * one run of `meshgate config check` lists everything to fix. Messages never
 * contain configured values (the admin token may be among them), only paths,
 * key names and what was expected.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, isPair, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { locateYaml } from '../core/yaml-locate.ts';
import { z } from 'zod';
import { configSchema, type Config } from './schema.ts';
import { checkSemantics, type SemanticIssue } from './semantics.ts';

/** The detection rules shipped with meshgate (PRODUCT §1.8). */
export const SHIPPED_DETECTIONS = fileURLToPath(new URL('../../policies/detections.yaml', import.meta.url));

type Env = Readonly<Record<string, string | undefined>>;
type Path = readonly PropertyKey[];

/** One configuration problem. `path` is `''` for the document as a whole. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/** Thrown when a configuration cannot be loaded; holds every issue found. */
export class ConfigError extends Error {
  readonly fileName: string;
  readonly issues: readonly ConfigIssue[];

  constructor(fileName: string, issues: readonly ConfigIssue[]) {
    const n = issues.length;
    super(`invalid configuration ${fileName} (${n} error${n === 1 ? '' : 's'}):\n${issues.map((i) => `  ${formatIssue(fileName, i)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.fileName = fileName;
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i })));
  }
}

/** `file:line:col: path: message`, leaving out the parts that are unknown. */
export function formatIssue(fileName: string, issue: ConfigIssue): string {
  const where = issue.line === undefined ? fileName : `${fileName}:${issue.line}:${issue.column ?? 1}`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/** Options of {@link parseConfigText}. */
export interface ParseConfigOptions {
  /** Folder that relative paths in the config resolve against. */
  readonly baseDir: string;
  readonly env?: Env;
  /** Name used in error messages; default `meshgate.yaml`. */
  readonly fileName?: string;
}

/**
 * Reads and validates a config file. Relative paths in it resolve against the
 * file's folder. Throws ConfigError (never anything else for bad input).
 */
export async function loadConfig(file: string, env: Env = process.env, options: { readonly cwd?: string; readonly fileName?: string } = {}): Promise<Config> {
  const abs = resolve(options.cwd ?? process.cwd(), file);
  const fileName = options.fileName ?? file;
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new ConfigError(fileName, [{ path: '', message: `cannot read config file (${errCode(err)})` }]);
  }
  return parseConfigText(text, { baseDir: dirname(abs), env, fileName });
}

/** Synchronous core of {@link loadConfig}, for tests and config reloads. */
export function parseConfigText(text: string, options: ParseConfigOptions): Config {
  const fileName = options.fileName ?? 'meshgate.yaml';
  const env = options.env ?? process.env;
  const lc = new LineCounter();
  // YAML 1.2 core schema: `on`/`yes` stay strings, no implicit timestamps or
  // merge keys; duplicate keys are errors (a later key silently winning is how
  // a reviewed config turns into a different one).
  const doc = parseDocument(text, { version: '1.2', schema: 'core', uniqueKeys: true, prettyErrors: true, lineCounter: lc });
  const at = (path: Path, key = false): Pick<ConfigIssue, 'line' | 'column'> => {
    const offset = locateYaml(doc, path, key);
    if (offset === undefined) return {};
    const { line, col } = lc.linePos(offset);
    return { line, column: col };
  };

  // Warnings (unresolved tags, …) are errors too: fail closed on anything odd.
  const yamlIssues = [...doc.errors, ...doc.warnings].map((e): ConfigIssue => {
    const msg = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
    const dup = e.code === 'DUPLICATE_KEY' ? pathOfKeyAt(doc, e.pos[0]) : undefined;
    return {
      path: dup ? formatPath(dup) : '',
      message: dup ? 'duplicate key' : msg,
      ...(e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : {}),
    };
  });
  if (yamlIssues.length > 0) throw new ConfigError(fileName, sortIssues(yamlIssues));
  if (doc.contents === null) throw new ConfigError(fileName, [{ path: '', message: 'configuration is empty' }]);

  const issues: ConfigIssue[] = [];
  const envPaths = new Set<string>();
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string') return;
      const r = substituteEnv(node.value, env);
      if (r.error !== undefined) {
        const path = formatPath(pathOfAncestors(ancestors, node));
        envPaths.add(path);
        const pos = node.range ? lc.linePos(node.range[0]) : undefined;
        issues.push({ path, message: r.error, ...(pos ? { line: pos.line, column: pos.col } : {}) });
      }
      node.value = r.value;
    },
  });

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(fileName, [...issues, { path: '', message: `cannot expand YAML aliases (${(err as Error).message})` }]);
  }

  const suggestions = new Map<string, string>();
  const parsed = configSchema.safeParse(data, { error: (iss) => zodMessage(iss, suggestions) });
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      if (iss.code === 'unrecognized_keys') {
        for (const k of iss.keys) {
          const p = [...iss.path, k];
          const hint = suggestions.get(formatPath(p));
          issues.push({ path: formatPath(p), message: hint ? `unknown key (did you mean "${hint}"?)` : 'unknown key', ...at(p, true) });
        }
        continue;
      }
      const path = formatPath(iss.path);
      // A missing variable already explains the bad value at that path.
      if (!envPaths.has(path)) issues.push({ path, message: iss.message, ...at(iss.path) });
    }
  }
  if (!parsed.success) throw new ConfigError(fileName, sortIssues(issues));

  // Cross-key rules still run after env errors so that one check lists everything.
  const semantic = checkSemantics(parsed.data);
  const admin = readAdminToken(parsed.data, options.baseDir, semantic);
  for (const s of semantic) {
    const path = formatPath(s.path);
    if (!envPaths.has(path)) issues.push({ path, message: s.message, ...at(s.path) });
  }
  if (issues.length > 0) throw new ConfigError(fileName, sortIssues(issues));
  return deepFreeze(resolvePaths({ ...parsed.data, admin }, options.baseDir));
}

function readAdminToken(c: Config, baseDir: string, out: SemanticIssue[]): Config['admin'] {
  if (c.admin.tokenFile === undefined || c.admin.token !== undefined) return c.admin;
  const path = ['admin', 'tokenFile'];
  let token: string;
  try {
    token = readFileSync(resolve(baseDir, c.admin.tokenFile), 'utf8').trim();
  } catch (err) {
    out.push({ path, message: `cannot read token file (${errCode(err)})` });
    return c.admin;
  }
  if (token === '') out.push({ path, message: 'token file is empty' });
  return { ...c.admin, token };
}

type Nats = NonNullable<NonNullable<Config['audit']['sink']>['nats']>;

function resolveNatsPaths(n: Nats | undefined, abs: (p: string) => string, opt: (p: string | undefined) => string | undefined): Nats | undefined {
  if (n === undefined) return undefined;
  const auth = n.auth;
  return {
    ...n,
    auth: auth === undefined ? undefined
      : 'passwordFile' in auth ? { ...auth, passwordFile: abs(auth.passwordFile) }
        : 'tokenFile' in auth ? { ...auth, tokenFile: abs(auth.tokenFile) }
          : 'nkeySeedFile' in auth ? { ...auth, nkeySeedFile: abs(auth.nkeySeedFile) } : auth,
    tls: n.tls === undefined ? undefined : { ...n.tls, ca: opt(n.tls.ca), cert: opt(n.tls.cert), key: opt(n.tls.key) },
    cursorFile: opt(n.cursorFile),
  };
}

/** Makes every file path absolute against the config file's folder. */
function resolvePaths(c: Config, baseDir: string): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const opt = (p: string | undefined): string | undefined => (p === undefined ? undefined : abs(p));
  const crl = c.tls.crl;
  return {
    ...c,
    admin: { ...c.admin, tokenFile: opt(c.admin.tokenFile) },
    upstream: c.upstream.tls === undefined ? c.upstream : { ...c.upstream, tls: { ...c.upstream.tls, ca: opt(c.upstream.tls.ca), cert: opt(c.upstream.tls.cert), key: opt(c.upstream.tls.key) } },
    tls: { ...c.tls, cert: abs(c.tls.cert), key: abs(c.tls.key), clientCa: abs(c.tls.clientCa), crl: crl === undefined ? undefined : typeof crl === 'string' ? abs(crl) : crl.map(abs) },
    jwt: c.jwt === undefined ? undefined : { ...c.jwt, issuers: c.jwt.issuers.map((i) => ({ ...i, jwksFile: opt(i.jwksFile) })) },
    authz: {
      ...c.authz, model: abs(c.authz.model), policy: abs(c.authz.policy),
      shadow: c.authz.shadow === undefined ? undefined : { model: abs(c.authz.shadow.model), policy: abs(c.authz.shadow.policy) },
    },
    audit: { ...c.audit, dir: abs(c.audit.dir), sink: c.audit.sink === undefined ? undefined : { ...c.audit.sink, nats: resolveNatsPaths(c.audit.sink.nats, abs, opt) } },
    // Analyzer defaults depend on other keys: the shipped rules, and a folder beside the audit log's segments.
    analyzer: {
      ...c.analyzer,
      rules: c.analyzer.rules === undefined ? SHIPPED_DETECTIONS : abs(c.analyzer.rules),
      dir: c.analyzer.dir === undefined ? resolve(abs(c.audit.dir), 'analyzer') : abs(c.analyzer.dir),
    },
  };
}

const VAR_RE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/;

/**
 * `${VAR}` → env value; `${VAR:-default}` → default when VAR is unset or
 * empty (as in POSIX sh); `$${` → a literal `${`. One pass: a substituted value
 * is never expanded again, so an env value cannot reach other variables.
 */
export function substituteEnv(s: string, env: Env): { value: string; error?: string } {
  let out = '';
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (s.startsWith('${', i)) {
      const close = s.indexOf('}', i + 2);
      if (close < 0) return { value: s, error: 'unterminated "${" (write "$${" for a literal "${")' };
      const m = VAR_RE.exec(s.slice(i + 2, close));
      if (!m) return { value: s, error: 'malformed variable reference (expected ${NAME} or ${NAME:-default})' };
      const name = m[1] as string;
      const value = env[name];
      const fallback = m[2];
      if (fallback !== undefined && (value === undefined || value === '')) out += fallback;
      else if (value === undefined) return { value: s, error: `environment variable ${name} is not set` };
      else out += value;
      i = close + 1;
    } else {
      out += s[i];
      i += 1;
    }
  }
  return { value: out };
}

/** Zod issue → our message wording; `undefined` keeps the schema's own message. */
function zodMessage(iss: z.core.$ZodRawIssue, suggestions: Map<string, string>): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined ? `missing required key (expected ${iss.expected})` : `expected ${iss.expected}, got ${kindOf(iss.input)}`;
    case 'invalid_value':
      return iss.values.length === 1 ? `expected ${String(iss.values[0])}` : `expected one of ${iss.values.map(String).join('|')}`;
    case 'too_small':
      if (iss.origin === 'array') return `must have at least ${iss.minimum} item${iss.minimum === 1 ? '' : 's'}`;
      if (iss.origin === 'string') return iss.minimum === 1 ? 'must not be empty' : `must be at least ${iss.minimum} characters`;
      return `must be ${iss.inclusive ? '>=' : '>'} ${iss.minimum}`;
    case 'too_big':
      if (iss.origin === 'array') return `must have at most ${iss.maximum} items`;
      if (iss.origin === 'string') return `must be at most ${iss.maximum} characters`;
      return `must be ${iss.inclusive ? '<=' : '<'} ${iss.maximum}`;
    case 'invalid_format':
      if (iss.format === 'url') return 'expected an http:// or https:// URL';
      if (iss.format === 'starts_with') return `must start with "${String(iss['prefix'])}"`;
      return `must match ${String(iss.pattern ?? iss.format)}`;
    case 'invalid_union': {
      const branches = iss.errors.filter((b) => b.length > 0);
      if (branches.every((b) => b.length === 1 && b[0]?.code === 'invalid_type' && b[0].path.length === 0)) {
        return `expected ${branches.map((b) => (b[0] as { expected: string }).expected).join(' or ')}, got ${kindOf(iss.input)}`;
      }
      const best = [...branches].sort((a, b) => a.length - b.length)[0] ?? [];
      return best.map((b) => (b.path.length > 0 ? `${formatPath(b.path)}: ${b.message}` : b.message)).join('; ') || undefined;
    }
    case 'unrecognized_keys': {
      const known = iss.inst instanceof z.ZodObject ? Object.keys(iss.inst.shape) : [];
      for (const k of iss.keys) {
        const hint = closest(k, known);
        if (hint !== undefined) suggestions.set(formatPath([...(iss.path ?? []), k]), hint);
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** The known key within edit distance 2 of `key`, if any (typo hints). */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** `['routes', 1, 'auth']` → `routes[1].auth`; odd keys are quoted. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}


/** Path of the map key whose source starts at `offset` (for duplicate-key errors). */
function pathOfKeyAt(doc: Document, offset: number): PropertyKey[] | undefined {
  let found: PropertyKey[] | undefined;
  visit(doc, {
    Pair(_, pair, ancestors) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        found = pathOfAncestors(ancestors, pair);
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/** Data path of `self` given the ancestors reported by yaml's `visit`. */
function pathOfAncestors(ancestors: readonly unknown[], self: unknown): PropertyKey[] {
  const chain = [...ancestors, self];
  const out: PropertyKey[] = [];
  for (let i = 0; i < chain.length; i++) {
    const n = chain[i];
    if (isPair(n) && isScalar(n.key)) out.push(String(n.key.value));
    else if (isSeq(n)) out.push(n.items.indexOf(chain[i + 1] as never));
  }
  return out;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || (a.issue.column ?? 0) - (b.issue.column ?? 0) || a.i - b.i)
    .map((x) => x.issue);
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}
