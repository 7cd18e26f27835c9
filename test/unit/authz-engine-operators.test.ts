/**
 * The compiled engine's building blocks against casbin's own functions, on
 * random patterns and values drawn from the characters that matter (path
 * separators, parameter markers, regex metacharacters, line terminators):
 * compiled patterns, the segment trie, the prefix index, the hang detector,
 * the role graph's hierarchy limit, and the fast policy-line tokenizer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BracketAwareCsvParser, Util, newEnforcer, newModelFromString, StringAdapter } from 'casbin';
import { casbinTokenize } from '../../src/authz/casbin-authorizer.ts';
import { PatternError, compilePattern, keyMatch2Source, keyMatch3Source, literalPrefix, segmentPattern, type PatternFunction } from '../../src/authz/compiled/operators.ts';
import { createPatternIndex } from '../../src/authz/compiled/pattern-index.ts';
import { RoleGraph } from '../../src/authz/compiled/role-graph.ts';

const casbinFn: Record<Exclude<PatternFunction, 'globMatch'>, (v: string, p: string) => boolean> = {
  keyMatch: (v, p) => Util.keyMatchFunc(v, p) as boolean,
  keyMatch2: (v, p) => Util.keyMatch2Func(v, p) as boolean,
  keyMatch3: (v, p) => Util.keyMatch3Func(v, p) as boolean,
  keyMatch5: (v, p) => Util.keyMatch5Func(v, p) as boolean,
  regexMatch: (v, p) => Util.regexMatchFunc(v, p) as boolean,
};

const chars = (xs: string[], max: number) => fc.array(fc.constantFrom(...xs), { maxLength: max }).map((a) => a.join(''));
const PATTERN = chars(['/', '/', '/', ':', ':id', '*', '{', '}', '{id}', 'a', 'b', '.', '-', '?', '(', ')', '[', ']', '^', '$', '|', '+', ' ', 'é', '\r', '\u2028'], 9);
const VALUE = chars(['/', '/', 'a', 'b', 'ab', ':', '.', '?', '\n', '\r', '\u2028', '*', '{', '}', 'é', ' ', ''], 10);
const hangs = (fn: PatternFunction, p: string): boolean => {
  try {
    if (fn === 'keyMatch2') keyMatch2Source(p);
    if (fn === 'keyMatch3' || fn === 'keyMatch5') keyMatch3Source(p);
    return false;
  } catch (e) {
    return e instanceof PatternError && e.hangs;
  }
};

for (const fn of Object.keys(casbinFn) as (keyof typeof casbinFn)[]) {
  test(`a compiled ${fn} pattern accepts exactly what casbin's ${fn} accepts, and fails where casbin fails`, () => {
    fc.assert(fc.property(PATTERN, fc.array(VALUE, { minLength: 1, maxLength: 8 }), (p, values) => {
      if (hangs(fn, p)) return; // casbin would never return; loadAuthorizer refuses these (tested below)
      let test: ((v: string) => boolean) | undefined;
      try { test = compilePattern(fn, p, () => false); } catch (e) { assert.ok(e instanceof PatternError); }
      for (const v of values) {
        let want: boolean | 'throws';
        try { want = casbinFn[fn](v, p); } catch { want = 'throws'; }
        assert.equal(test === undefined ? 'throws' : test(v), want, `${fn}(${JSON.stringify(v)}, ${JSON.stringify(p)})`);
      }
    }), { numRuns: 4000, seed: 42 });
  });
}

for (const fn of ['keyMatch', 'keyMatch2', 'keyMatch3', 'keyMatch5'] as const) {
  test(`a ${fn} pattern index returns exactly the patterns casbin's ${fn} matches`, () => {
    fc.assert(fc.property(fc.uniqueArray(PATTERN, { maxLength: 12 }), fc.array(VALUE, { minLength: 1, maxLength: 8 }), (patterns, values) => {
      const ok = patterns.filter((p) => !hangs(fn, p) && (() => { try { compilePattern(fn, p, () => false); return true; } catch { return false; } })());
      const index = createPatternIndex<string>(fn, () => false);
      for (const p of ok) index.add(p, p);
      for (const v of values) {
        const got: string[] = [];
        index.collect(v, got);
        assert.deepEqual(got.sort(), ok.filter((p) => casbinFn[fn](v, p)).sort(), `${fn} on ${JSON.stringify(v)}`);
      }
    }), { numRuns: 3000, seed: 7 });
  });
}

test('segment form is found for ordinary REST patterns and refused where the regex reads across segments', () => {
  assert.deepEqual(segmentPattern('/api/:id/items', 'keyMatch2'), { segments: ['', 'api', null, 'items'], rest: false });
  assert.deepEqual(segmentPattern('/api/{id}/*', 'keyMatch3'), { segments: ['', 'api', null], rest: true });
  for (const p of ['/api/v1.0/x', '/a/*/b', '/api/:id:x', ':id/x', '/api*', '*', '/x\u2028']) assert.equal(segmentPattern(p, 'keyMatch2'), undefined, p);
  // keyMatch2 swallows the rest of a segment after ":name": "/files/:name.json" is one parameter segment.
  assert.deepEqual(segmentPattern('/files/:name.json', 'keyMatch2'), { segments: ['', 'files', null], rest: false });
  assert.equal(Util.keyMatch2Func('/files/readme', '/files/:name.json'), true);
});

test('a regex-form pattern is filed under the literal text every match starts with, never more', () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['/api/v1.0/x', '/api/v1', '/api/v1x0/x'], ['/apix*', '/api', '/api'], ['/api?', '/ap', '/ap'], ['/a|/b', '', '/xx/b'],
    ['*', '', 'anything'], ['/api/*/x', '/api', '/api/q/x'], ['/api/:id:x', '/api/', '/api/7/]]'], ['/f/{a}{b}', '/f', '/f/zz'],
  ];
  for (const [pattern, prefix, example] of cases) {
    const fn = pattern.includes('{') ? 'keyMatch3' : 'keyMatch2';
    assert.equal(literalPrefix(pattern, fn), prefix, pattern);
    assert.equal(casbinFn[fn](example, pattern), true, `${fn}(${example}, ${pattern})`);
    assert.ok(example.startsWith(prefix));
  }
});

test('a keyMatch2 or keyMatch3 pattern that would make casbin loop forever is detected, not evaluated', () => {
  for (const [fn, p] of [['keyMatch2', '/api/:/x'], ['keyMatch2', '/a/:'], ['keyMatch3', '/a/{'], ['keyMatch3', '/a/{/b}']] as const) {
    assert.throws(() => compilePattern(fn, p, () => false), (e: unknown) => e instanceof PatternError && e.hangs, `${fn} ${p}`);
  }
  assert.doesNotThrow(() => keyMatch2Source('/api/:id/:action'));
});

test('an invalid regex pattern is a PatternError that does not claim to hang', () => {
  assert.throws(() => compilePattern('regexMatch', '(', () => false), (e: unknown) => e instanceof PatternError && !e.hangs);
  assert.throws(() => compilePattern('keyMatch3', '*', () => false), (e: unknown) => e instanceof PatternError && !e.hangs);
});

test('role reach follows casbin: reflexive for any name, at most 10 steps, cycles terminate', async () => {
  const chain = Array.from({ length: 13 }, (_, i) => `c${i}`);
  const graph = new RoleGraph(new Set(chain));
  const lines: string[] = ['p, c0, x, y'];
  for (let i = 1; i < chain.length; i++) { graph.addLink(chain[i - 1]!, chain[i]!); lines.push(`g, c${i - 1}, c${i}`); }
  graph.addLink('c12', 'c0');
  lines.push('g, c12, c0');
  assert.deepEqual(graph.reach('c0'), chain.slice(0, 11));
  assert.deepEqual(graph.reach('unknown'), []);
  const model = '[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n[role_definition]\ng = _, _\n[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = g(r.sub, p.sub)\n';
  const e = await newEnforcer(newModelFromString(model), new StringAdapter(lines.join('\n')));
  const rm = e.getRoleManager();
  for (const a of chain) for (const b of chain) assert.equal(graph.reach(a).includes(b), await rm.hasLink(a, b), `${a} → ${b}`);
});

test('the fast policy-line tokenizer splits exactly like casbin\'s CSV reader and policy loader', () => {
  const csv = new BracketAwareCsvParser();
  const slow = (line: string): string[] | null => {
    const row = csv.parse(line)?.[0];
    if (!row || row.length === 0) return null;
    const unquote = (v: string): string => (v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1) : v);
    const [first = '', ...rest] = row;
    return [unquote(first.trim()), ...rest.map((v) => unquote(v).replace(/""/g, '"').trim())];
  };
  // csv-parse left-trims only space, tab and form feed but right-trims any whitespace: the odd characters matter.
  const LINE = chars(['p', ',', ', ', 'a', ' ', '\t', '\f', '\u00a0', '(', ')', '^(GET|HEAD)$', 'é', '\u2028', '\v', '\ufeff', '/x',
    '\u3000', '\u200b', '\u0085', '\n', '\ud800', '\ud83d\ude00', "'", '\\'], 14);
  fc.assert(fc.property(LINE, (line) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    let want: string[] | null | 'throws';
    try { want = slow(line); } catch { want = 'throws'; }
    let got: string[] | null | 'throws';
    try { got = casbinTokenize(line); } catch { got = 'throws'; }
    assert.deepEqual(got, want, JSON.stringify(line));
  }), { numRuns: 30000, seed: 3 });
});
