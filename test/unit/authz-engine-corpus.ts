/**
 * Random policies and requests for the differential tests: role graphs
 * (multi-level DAGs, a chain longer than casbin's hierarchy limit, domains),
 * path patterns for every supported matcher function, action forms, effects
 * with odd `eft` and `priority` values, and requests aimed both at the rules
 * (concrete paths the patterns produce) and around them (adversarial paths
 * and subjects).
 */
import type { Req, Rng } from './authz-engine-harness.ts';

/** Matcher functions on the object column. */
export type ObjFn = 'eq' | 'keyMatch' | 'keyMatch2' | 'keyMatch3' | 'keyMatch5' | 'globMatch' | 'regexMatch';
/** Action forms: equality, equality or `*`, regexMatch. */
export type ActForm = 'eq' | 'wildcard' | 'regex';

/** One differential shape: a model and how to fill it. */
export interface Shape {
  readonly name: string;
  readonly model: string;
  readonly obj: ObjFn;
  readonly act: ActForm;
  /** Role type columns: 0 (subject equality), 2 or 3 (domains). */
  readonly roles: 0 | 2 | 3;
  /** Policy columns in order, e.g. ['sub', 'obj', 'act', 'eft']. */
  readonly columns: readonly string[];
  /** Share of deny rules, and whether odd eft values (`Allow`, empty, `x`) appear. */
  readonly denyShare: number;
}

/** A generated policy and what requests can aim at. */
export interface World {
  readonly lines: string[];
  readonly users: string[];
  readonly roles: string[];
  readonly domains: string[];
  readonly rules: { sub: string; dom: string; obj: string; act: string }[];
}

const SEGS = ['orders', 'users', 'admin', 'reports', 'public', 'files'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'];
const DOMAINS = ['mesh.local', 'partner.example', 'other.test', 'casbin::default'];
const ODD_SEGMENTS = ['1', '42', 'abc', 'x.json', '', 'é', '%2e', '..', '.', 'a b', 'a\nb', '\u2028', 'items', ':id', '{id}', '*', 'ORDERS', '日本'];

function objPattern(fn: ObjFn, r: Rng): string {
  const s = r.pick(SEGS);
  switch (fn) {
    case 'eq': return r.pick([`/api/${s}`, `/api/${s}/1`, `/api/${s}/`, '/', '', `/api/${s}/*`]);
    case 'keyMatch': return r.pick([`/api/${s}`, `/api/${s}*`, `/api/${s}/*`, `/api/*/x`, '*', `/api/${s}/`, '/api/', `/api/${s}/1`]);
    case 'keyMatch2': return r.pick([
      `/api/${s}`, `/api/${s}/:id`, `/api/${s}/*`, `/api/${s}/:id/items`, `/api/${s}/:id/*`, '/*', '*', `/api/${s}/`,
      `/api//${s}`, `/api/v1.0/${s}`, `/api/${s}/*/x`, '/files/:name.json', `/api/${s}/:id:action`, `/api/${s}*`, `/:tenant/${s}`,
    ]);
    case 'keyMatch3':
    case 'keyMatch5': return r.pick([
      `/api/${s}`, `/api/${s}/{id}`, `/api/${s}/*`, `/api/${s}/{id}/items`, `/{tenant}/${s}`, `/api/${s}/`,
      `/api/v1.0/${s}/{id}`, `/api/${s}/{id}/*`, `/api/${s}/:id`, `/api/${s}/{id}.json`,
    ]);
    case 'globMatch': return r.pick([
      `/api/${s}/*`, `/api/${s}/**`, '/api/**', `/api/${s}/*.json`, `*/api/${s}`, '/api/@(orders|users)/*',
      `/api/${s}/[0-9]*`, `!/api/${s}/*`, `/api/${s}`, '#comment', `/api/${s}/?`, '**',
    ]);
    case 'regexMatch': return r.pick([`^/api/${s}(/.*)?$`, `/${s}`, `^/api/${s}/[0-9]+$`, '.*', `^/api/${s}/[^/]+$`, '^$', `^/API/${s}`]);
  }
}

function actPattern(form: ActForm, r: Rng): string {
  switch (form) {
    case 'eq': return r.pick(METHODS);
    case 'wildcard': return r.chance(0.2) ? '*' : r.pick(METHODS);
    case 'regex': return r.pick(['^(GET|HEAD)$', '^GET$', '.*', 'GET', '^(POST|PUT)$', '^DELETE$', '^.*$', '', 'T$']);
  }
}

function effect(shape: Shape, r: Rng): string {
  if (r.chance(shape.denyShare)) return 'deny';
  // Casbin treats an empty eft as allow and anything but allow/deny as indeterminate.
  return r.chance(0.05) ? r.pick(['Allow', '', 'x', 'DENY']) : 'allow';
}

/** A policy of about `pRules` p lines for `shape`, with its role graph. */
export function generatePolicy(shape: Shape, r: Rng, pRules: number): World {
  const nRoles = Math.max(4, Math.min(60, Math.round(pRules / 6)));
  const roles = [...Array.from({ length: nRoles }, (_, i) => `role:r${i}`), 'admin', 'editor'];
  // A chain longer than casbin's hierarchy limit of 10: c0 reaches c10 but not c11.
  const chain = Array.from({ length: 13 }, (_, i) => `chain:c${i}`);
  const users = Array.from({ length: Math.max(6, Math.round(nRoles * 1.5)) }, (_, i) => `user${i}`);
  const domains = shape.roles === 3 ? DOMAINS.slice(0, 2 + r.int(3)) : [''];
  const g: string[] = [];
  const link = (a: string, b: string): void => {
    if (shape.roles === 2) g.push(`g, ${a}, ${b}`);
    if (shape.roles === 3) g.push(`g, ${a}, ${b}, ${r.pick(domains)}`);
  };
  if (shape.roles !== 0) {
    // Multi-level DAG: a role inherits only from lower-numbered roles.
    for (let i = 1; i < roles.length; i++) for (let k = r.int(3); k > 0; k--) link(roles[i]!, roles[r.int(i)]!);
    for (let i = 1; i < chain.length; i++) link(chain[i - 1]!, chain[i]!);
    for (const u of users) for (let k = r.int(4); k > 0; k--) link(u, r.pick(roles));
    link(r.pick(users), chain[0]!);
    link('chain:c0', r.pick(roles));
  }
  const subjects = shape.roles === 0 ? [...users, 'anonymous', 'root', '*'] : [...roles, ...roles, ...chain.slice(8), ...users, 'anonymous', '*'];
  const rules: World['rules'] = [];
  const p: string[] = [];
  for (let i = 0; i < pRules; i++) {
    const rule = { sub: r.pick(subjects), dom: r.pick(domains), obj: objPattern(shape.obj, r), act: actPattern(shape.act, r) };
    rules.push(rule);
    const cells = shape.columns.map((c) => {
      switch (c) {
        case 'sub': return rule.sub;
        case 'dom': return rule.dom;
        case 'obj': return rule.obj;
        case 'act': return rule.act;
        case 'eft': return effect(shape, r);
        // Duplicates, negatives and a few non-numbers: casbin sorts with parseInt(a) - parseInt(b).
        case 'priority': return r.chance(0.05) ? r.pick(['x', '1.5', '007', '-0']) : String(r.int(20) - 5);
        default: throw new Error(`unknown column ${c}`);
      }
    });
    p.push(`p, ${cells.join(', ')}`);
    // Exact duplicates: casbin explains with the content, which maps back to the first line.
    if (r.chance(0.02)) p.push(`p, ${cells.join(', ')}`);
  }
  // Interleave g lines among p lines, as people write them.
  const lines = [...p];
  for (const l of g) lines.splice(r.int(lines.length + 1), 0, l);
  return { lines, users, roles: [...roles, ...chain], domains, rules };
}

function concretize(pattern: string, r: Rng): string {
  const seg = (): string => r.pick(ODD_SEGMENTS.concat(SEGS, ['7', '123', 'items']));
  let out = pattern
    .replace(/:[^/]+/g, () => (r.chance(0.9) ? r.pick(['1', '42', 'abc', 'x.json', 'items']) : seg()))
    .replace(/\{[^/}]+\}/g, () => r.pick(['1', '42', 'abc', 'items']))
    .replace(/\*\*/g, () => r.pick(['a', 'a/b', '']))
    .replace(/\*/g, () => r.pick(['x', 'a/b', '', 'items/3', seg()]))
    .replace(/\?/g, () => r.pick(['x', '?q=1']));
  if (/[\^$[\]()|+\\]/.test(out) || out.startsWith('!') || out.startsWith('#')) {
    out = `/api/${r.pick(SEGS)}${r.pick(['', '/1', '/abc', '/1/2', '/'])}`;
  }
  return out;
}

/** Mutations a hostile or sloppy client (or a canonicalization bug) would produce. */
export function adversarialPath(path: string, r: Rng): string {
  switch (r.int(14)) {
    case 0: return path.replace('/', '//');
    case 1: return path + '/';
    case 2: return path.replace(/\/([^/]*)$/, '/./$1');
    case 3: return '/..' + path;
    case 4: return path + '?q=1&x=/a';
    case 5: return path.toUpperCase();
    case 6: return path + '/a'.repeat(300 + r.int(400));
    case 7: return '';
    case 8: return path + r.pick(['\n', '\r', '\u2028', '\n/x']);
    case 9: return path.replace(/\//g, (m) => (r.chance(0.3) ? '/%2e/' : m));
    case 10: return path.replace(/\/[^/]*/, '/');
    case 11: return path + r.pick(['é', '日本', '\u{1F600}', '\uD800']);
    case 12: return r.pick(['*', '/*', ':id', '{id}', '/api/:id', '/api/{id}', ' /api/orders', 'api/orders']);
    default: return path.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`);
  }
}

/** A request: half aimed at a rule, half anywhere, some made adversarial. */
export function randomRequest(world: World, r: Rng): Req {
  const hostile = ['', '*', 'anonymous', 'root', 'user1,role:r1', 'ü', 'role:r0 ', 'ROLE:R1', '\u2028', 'casbin::default'];
  let q: Req;
  if (r.chance(0.5) && world.rules.length > 0) {
    const rule = r.pick(world.rules);
    q = {
      sub: r.chance(0.3) ? rule.sub : r.pick(world.users),
      dom: r.chance(0.85) ? rule.dom : r.pick([...world.domains, '']),
      obj: concretize(rule.obj, r),
      act: rule.act === '*' || /[\^$.|()]/.test(rule.act) || rule.act === '' ? r.pick(METHODS) : r.chance(0.9) ? rule.act : r.pick(METHODS),
    };
  } else {
    q = {
      sub: r.chance(0.2) ? r.pick(hostile) : r.chance(0.5) ? r.pick(world.users) : r.pick(world.roles),
      dom: r.pick([...world.domains, '', 'evil.example']),
      obj: concretize(r.pick(world.rules).obj, r),
      act: r.pick([...METHODS, '*', '', 'get', 'GETX', 'OPTIONS']),
    };
  }
  if (r.chance(0.3)) q = { ...q, obj: adversarialPath(q.obj, r) };
  return q;
}

/** Writes a model for a shape from its parts. */
export function model(parts: { r: string; p: string; g?: string; e: string; m: string }): string {
  return [
    '[request_definition]', `r = ${parts.r}`, '', '[policy_definition]', `p = ${parts.p}`, '',
    ...(parts.g ? ['[role_definition]', `g = ${parts.g}`, ''] : []),
    '[policy_effect]', `e = ${parts.e}`, '', '[matchers]', `m = ${parts.m}`, '',
  ].join('\n');
}

/** Effect expressions, as written in model.conf. */
export const EFFECT = Object.freeze({
  allow: 'some(where (p.eft == allow))',
  allowDeny: 'some(where (p.eft == allow)) && !some(where (p.eft == deny))',
  priority: 'priority(p.eft) || deny',
});
