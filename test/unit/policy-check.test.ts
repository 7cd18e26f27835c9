import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import { checkPolicy } from '../../src/policy/check-policy.ts';
import type { Finding } from '../../src/policy/finding.ts';
import { conjuncts, parseMatcher } from '../../src/policy/matcher-expr.ts';
import { neverMatchReason, pathCovers, rawPathReason, wildcardFootgun } from '../../src/policy/path-pattern.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIX = path.join(ROOT, 'test/fixtures/policy');
const paths = (dir: string) => ({ modelPath: path.join(FIX, dir, 'model.conf'), policyPath: path.join(FIX, dir, 'policy.csv') });
const at = (fs: readonly Finding[]) => fs.map((f) => `${f.line}:${f.severity}:${f.code}`);

test('the shipped demo policy loads and has no findings', async () => {
  const r = await checkPolicy({ modelPath: path.join(ROOT, 'policies/model.conf'), policyPath: path.join(ROOT, 'policies/policy.csv') });
  assert.deepEqual(r.findings, []);
  assert.equal(r.ok, true);
  assert.equal(r.rules, 6);
  assert.equal(r.roleAssignments, 3);
  assert.match(r.policyVersion ?? '', /^sha256:[0-9a-f]{16}$/);
});

test('every lint fixture rule gets exactly its documented finding, with file:line and severity', async () => {
  const r = await checkPolicy(paths('lint'));
  assert.deepEqual(at(r.findings), [
    '8:warning:shadowed', '10:warning:shadowed', '12:warning:shadowed', '15:warning:shadowed',
    '17:error:never-matches', '19:error:deny-raw-path', '21:error:deny-raw-path',
    '23:warning:text-after-wildcard', '25:warning:regex-in-pattern',
    '27:error:never-matches', '29:error:invalid-pattern', '31:error:never-matches',
    '33:warning:subject', '35:warning:subject', '37:warning:subject', '41:error:effect',
  ]);
  assert.equal(r.ok, false);
  assert.equal(r.errors, 7);
  assert.ok(r.findings.every((f) => f.file === paths('lint').policyPath));
  const byLine = (l: number) => r.findings.find((f) => f.line === l)!;
  assert.match(byLine(8).message, /shadowed by line 6/);
  assert.match(byLine(10).message, /shadowed by line 6/, 'alice inherits role:reader, so the role rule covers hers');
  assert.match(byLine(12).message, /duplicate of line 5/);
  assert.match(byLine(19).message, /authorized as "\/secret"/);
  assert.match(byLine(21).message, /"\/orders\/abc"/);
  assert.equal(byLine(27).rule, 'p, bob, /x, get, allow');
});

test('keyMatch patterns: text after "*" on an allow rule is an error, prefixes shadow, literal raw paths never match', async () => {
  const r = await checkPolicy(paths('keymatch'));
  assert.deepEqual(at(r.findings), ['3:warning:shadowed', '5:error:text-after-wildcard', '7:error:never-matches', '9:error:never-matches']);
  assert.match(r.findings[1]!.message, /matches every path starting with "\/reports\/"/);
});

test('a matcher calling an unknown function is a load error on the matcher line', async () => {
  const r = await checkPolicy(paths('broken-model'));
  assert.equal(r.ok, false);
  assert.deepEqual(r.findings.map((f) => [path.basename(f.file), f.line, f.code]), [['model.conf', 11, 'unknown-function']]);
  assert.match(r.findings[0]!.message, /keyMatchX/);
});

test('a policy line with a missing column is a syntax error naming its line', async () => {
  const r = await checkPolicy(paths('broken-policy'));
  assert.deepEqual(r.findings.map((f) => [path.basename(f.file), f.line, f.code, f.severity]), [['policy.csv', 2, 'syntax', 'error']]);
});

test('a matcher reading an undeclared request field is reported as unknown-field', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-policy-check-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'model.conf'), fs.readFileSync(path.join(FIX, 'keymatch/model.conf'), 'utf8').replace('r.act == p.act', 'r.method == p.act'));
  fs.writeFileSync(path.join(dir, 'policy.csv'), 'p, alice, /a, GET\n');
  const r = await checkPolicy({ modelPath: path.join(dir, 'model.conf'), policyPath: path.join(dir, 'policy.csv') });
  assert.equal(r.findings[0]?.code, 'unknown-field');
  assert.equal(r.findings[0]?.line, 12);
});

test('a deny rule that is covered by an allow rule is not reported as shadowed (different effects)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-policy-check-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.copyFileSync(path.join(ROOT, 'policies/model.conf'), path.join(dir, 'model.conf'));
  fs.writeFileSync(path.join(dir, 'policy.csv'), 'p, alice, /a/*, .*, allow\np, alice, /a/b, .*, deny\n');
  const r = await checkPolicy({ modelPath: path.join(dir, 'model.conf'), policyPath: path.join(dir, 'policy.csv') });
  assert.deepEqual(r.findings, []);
});

const MODE = 'reject' as const;

test('path patterns: proofs that a pattern never matches a canonical path (table)', () => {
  const cases: [string, string, boolean][] = [
    ['keyMatch2', '/orders/:id', false],
    ['keyMatch2', '*', false],
    ['keyMatch2', '/a//b', true],
    ['keyMatch2', '/a/:x//b', true],
    ['keyMatch2', 'orders', true],
    ['keyMatch2', ':id/x', true],
    ['keyMatch2', '/a/%2f', true],
    ['keyMatch2', '/a/%2F', true],
    ['keyMatch2', '/a/%41', true],
    ['keyMatch2', '/a/%E9', false],
    ['keyMatch2', '/a/./b', false], // "." is a regex wildcard: /a/x/b matches
    ['keyMatch2', '/a/\\./b', true], // an escaped dot is a literal "." segment
    ['keyMatch2', '/a/*', false],
    ['keyMatch', '/a/..*', false], // "/a/..x" is canonical
    ['keyMatch', '/a/../*', true],
    ['keyMatch', '/a%*', false], // "/a%25" is canonical
    ['keyMatch', '/a%2*', false],
    ['keyMatch', '/a%2f*', true],
    ['keyMatch', '*', false],
    ['eq', '/orders', false],
    ['eq', '/orders/', false],
    ['eq', '/orders/.', true],
    ['eq', '/a?b', true],
  ];
  for (const [fn, pattern, never] of cases) {
    assert.equal(neverMatchReason(fn as 'eq', pattern, MODE) !== undefined, never, `${fn} ${pattern}`);
  }
  assert.equal(neverMatchReason('keyMatch2', '/a/%2F', 'keep'), undefined, 'with encodedSlash keep, %2F stays in canonical paths');
});

test('path patterns: raw-path detection names the canonical form or the 400', () => {
  assert.match(rawPathReason('keyMatch2', '/a/../b', MODE) ?? '', /"\/b"/);
  assert.match(rawPathReason('keyMatch2', '/A/%7e', MODE) ?? '', /"\/A\/~"/);
  assert.match(rawPathReason('eq', '/x/%2F', MODE) ?? '', /rejected with 400 path_encoded_slash/);
  assert.equal(rawPathReason('keyMatch2', '/orders/:id', MODE), undefined);
  assert.equal(rawPathReason('keyMatch2', '/files/*', MODE), undefined);
  assert.equal(rawPathReason('regexMatch', '^/a/../b$', MODE), undefined, 'regex patterns are not path-shaped');
});

test('path patterns: containment is only claimed when proven', () => {
  assert.equal(pathCovers('keyMatch2', '/a/*', '/a/b/:id'), true);
  assert.equal(pathCovers('keyMatch2', '/a/*', '/a'), false, '/a/* needs the slash');
  assert.equal(pathCovers('keyMatch2', '/a/:x', '/a/b'), true);
  assert.equal(pathCovers('keyMatch2', '/a/:x', '/a/:y'), false, 'not proven (but identical patterns are)');
  assert.equal(pathCovers('keyMatch2', '/a.b/*', '/a-b/c'), true, 'a literal path is checked by matching it ("." is a regex wildcard)');
  assert.equal(pathCovers('keyMatch2', '/a.b/*', '/a.b/c/:id'), false, 'a metacharacter in the prefix blocks the prefix proof');
  assert.equal(pathCovers('keyMatch2', '/*', '/anything/:x'), true);
  assert.equal(pathCovers('keyMatch', '/api/*', '/api/v1/*'), true);
  assert.equal(pathCovers('keyMatch', '/api/v1/*', '/api/*'), false);
  assert.equal(pathCovers('eq', '/a', '/b'), false);
});

test('wildcard footguns are named for keyMatch and keyMatch2', () => {
  assert.equal(wildcardFootgun('keyMatch', '/a/*/b')?.code, 'text-after-wildcard');
  assert.equal(wildcardFootgun('keyMatch', '/a/*'), undefined);
  assert.equal(wildcardFootgun('keyMatch2', '/a/*/b')?.code, 'text-after-wildcard');
  assert.equal(wildcardFootgun('keyMatch2', '/files/:name.json')?.code, 'regex-in-pattern');
  assert.equal(wildcardFootgun('keyMatch2', '/api*')?.code, 'regex-in-pattern');
  assert.equal(wildcardFootgun('keyMatch2', '/orders/:id'), undefined);
});

test('the matcher parser splits top-level conjunctions and refuses what it does not know', () => {
  const e = parseMatcher('g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && (r.act == p.act || p.act == "*")');
  assert.ok(e);
  assert.equal(conjuncts(e).length, 3);
  assert.equal(parseMatcher('r.sub == p.sub && ('), undefined);
  assert.equal(parseMatcher('r.sub ~= p.sub'), undefined);
});

// Soundness, checked against the engine: deleting a rule reported as shadowed
// (or as never matching) must not change any decision. Random small policies
// over pools of subjects, paths and methods; every request in the pools.
test('removing any rule check reports as shadowed or never-matching changes no decision (random policies)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-policy-sound-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = path.join(dir, 'model.conf');
  fs.copyFileSync(path.join(ROOT, 'policies/model.conf'), model);
  let seed = 7;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const subs = ['alice', 'bob', 'role:a', 'role:b', 'anonymous'];
  const objs = ['/a', '/a/*', '/a/:id', '/a/b', '/a/b/*', '/a/b/c', '/*', '/c/:x/d', '/a//b', '/a/%61'];
  const acts = ['^GET$', '^(GET|HEAD)$', '.*', '^POST$', 'get'];
  const reqPaths = ['/a', '/a/b', '/a/b/c', '/a/x', '/c/y/d', '/a/a', '/z', '/a/b/'];
  const reqSubs = ['alice', 'bob', 'carol', 'anonymous'];
  const reqActs = ['GET', 'HEAD', 'POST', 'DELETE'];
  let checked = 0;
  for (let round = 0; round < 25; round++) {
    const lines = Array.from({ length: 10 }, () => `p, ${pick(subs)}, ${pick(objs)}, ${pick(acts)}, ${rnd() < 0.8 ? 'allow' : 'deny'}`);
    lines.push('g, alice, role:a', 'g, role:a, role:b', `g, bob, ${pick(['role:a', 'role:b'])}`);
    const policy = path.join(dir, 'policy.csv');
    fs.writeFileSync(policy, lines.join('\n') + '\n');
    const report = await checkPolicy({ modelPath: model, policyPath: policy });
    const removable = report.findings.filter((f) => f.code === 'shadowed' || f.code === 'never-matches').map((f) => f.line!);
    if (removable.length === 0) continue;
    const full = await loadAuthorizer({ modelPath: model, policyPath: policy, decisionCacheEntries: 0, engine: 'casbin' });
    for (const line of removable) {
      const reduced = path.join(dir, 'reduced.csv');
      fs.writeFileSync(reduced, lines.map((l, i) => (i + 1 === line ? `# ${l}` : l)).join('\n') + '\n');
      const without = await loadAuthorizer({ modelPath: model, policyPath: reduced, decisionCacheEntries: 0, engine: 'casbin' });
      for (const sub of reqSubs) for (const obj of reqPaths) for (const act of reqActs) {
        const req = { sub, peer: '', obj, act, claims: {} };
        assert.equal(without.decide(req).allowed, full.decide(req).allowed, `removing line ${line} (${lines[line - 1]}) changed ${sub} ${act} ${obj}\n${lines.join('\n')}`);
      }
      checked++;
    }
  }
  assert.ok(checked >= 10, `only ${checked} removable rules were generated; the test would prove little`);
});
