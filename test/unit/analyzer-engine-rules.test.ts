/**
 * The rules file: the shipped set loads, and every kind of mistake is
 * reported — all of them at once, each with file:line:col and its path.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SHIPPED_DETECTIONS } from '../../src/config/load.ts';
import { loadRules, parseRules, RulesError, type RulesIssue } from '../../src/analyzer/rules/load.ts';
import { tmpDir } from './analyzer-engine-helpers.ts';

function issues(text: string): RulesIssue[] {
  try {
    parseRules(text, 'r.yaml');
  } catch (err) {
    assert.ok(err instanceof RulesError, String(err));
    assert.equal(err.fileName, 'r.yaml');
    return [...err.issues];
  }
  assert.fail('expected RulesError');
}

const HEAD = `version: 1
rules:
  - name: ok-rule
    title: t
    severity: low
    description: d
    kind: single
    groupBy: spiffe
    filter: { type: request }
`;

test('the shipped rule set loads, is frozen, and names every rule once', async () => {
  const set = await loadRules(SHIPPED_DETECTIONS);
  assert.equal(set.rules.length, 17);
  assert.ok(Object.isFrozen(set) && Object.isFrozen(set.rules) && Object.isFrozen(set.rules[0]));
  assert.equal(new Set(set.rules.map((r) => r.name)).size, set.rules.length);
  for (const r of set.rules) {
    assert.ok(r.description.length > 40, `${r.name} explains itself`);
    if (r.remediation) assert.equal(r.remediation.simulated, true, `${r.name} ships simulated`);
  }
});

test('durations are milliseconds after parsing and defaults are applied', () => {
  const set = parseRules(`${HEAD}  - name: b
    title: t
    severity: high
    description: d
    kind: leaky
    capacity: 5
    leakSpeed: 10s
    groupBy: [spiffe, ip]
    filter: { reason: jwt_bad_signature }
    remediation: { duration: 15m, simulated: true }
`);
  const b = set.rules[1];
  assert.ok(b && b.kind === 'leaky');
  assert.equal(b.leakSpeed, 10_000);
  assert.equal(b.remediation?.duration, 900_000);
  assert.equal(b.maxGroups, 10_000);
  assert.equal(b.enabled, true);
});

test('every problem is reported at once with line, column and path', () => {
  const got = issues(`${HEAD}  - name: Bad Name
    title: t
    severity: urgent
    description: d
    kind: leaky
    capacty: 5
    leakSpeed: 10
    groupBy: spiffe
    filter: { foo: 1 }
  - name: r3
    title: t
    severity: high
    description: d
    kind: ewma
    bucket: 1m
    measure: sum
    groupBy: spiffe
    filter: { path: { regex: "(" }, status: { prefix: "4" }, reason: 5 }
  - name: ok-rule
    title: t
    severity: low
    description: d
    kind: single
    groupBy: global
    filter: {}
`);
  const byPath = new Map(got.map((i) => [i.path, i]));
  for (const p of ['rules[1].name', 'rules[1].severity', 'rules[1].capacty', 'rules[1].leakSpeed', 'rules[1].filter.foo', 'rules[1].capacity',
    'rules[2]', 'rules[2].field', 'rules[2].filter.path.regex', 'rules[2].filter.status.prefix', 'rules[2].filter.reason',
    'rules[3].name', 'rules[3].groupBy']) {
    assert.ok(byPath.has(p), `missing issue at ${p}: ${got.map((i) => i.path).join(', ')}`);
  }
  assert.equal(byPath.get('rules[1].capacty')?.line, 15);
  assert.equal(byPath.get('rules[1].capacty')?.message, 'unknown key');
  assert.match(byPath.get('rules[1].leakSpeed')?.message ?? '', /duration such as/);
  assert.match(byPath.get('rules[2].filter.status.prefix')?.message ?? '', /needs a string field/);
  assert.match(byPath.get('rules[3].name')?.message ?? '', /duplicate rule name "ok-rule" \(also rules\[0\]\)/);
  for (const i of got) assert.ok(i.line !== undefined && i.line > 0, `${i.path} has a line`);
});

test('kind-specific mistakes are explained', () => {
  const rule = (body: string): string => `version: 1\nrules:\n  - name: x\n    title: t\n    severity: low\n    description: d\n    groupBy: spiffe\n    filter: { type: request }\n${body}`;
  const cases: [string, string, RegExp][] = [
    ['kind: ewma\n    bucket: 1m\n    measure: ratio\n    minZ: 3\n', 'rules[0].numerator', /needs a numerator/],
    ['kind: ewma\n    bucket: 1m\n    measure: count\n    field: bytesOut\n    minZ: 3\n', 'rules[0].field', /only for measure sum/],
    ['kind: ewma\n    bucket: 1m\n    measure: sum\n    field: reason\n    minZ: 3\n', 'rules[0].field', /not numeric/],
    ['kind: new_terms\n    fields: [path]\n    learning: 1h\n    relearn: 5m\n', 'rules[0].relearn', /needs relearnOn/],
    ['kind: single\n    remediation: { duration: 5m }\n', 'rules[0].remediation.simulated', /missing required key/],
    ['kind: threshold\n    window: 0s\n    count: 3\n', 'rules[0].window', /positive duration/],
    ['kind: sequence\n    window: 1m\n    steps: [{ filter: { type: request } }]\n', 'rules[0].steps', /at least 2/],
    ['kind: magic\n', 'rules[0].kind', /unknown kind/],
  ];
  for (const [body, p, msg] of cases) {
    const got = issues(rule(`    ${body.trimEnd()}\n`));
    const hit = got.find((i) => i.path === p);
    assert.ok(hit, `${p} not reported for ${body}: ${JSON.stringify(got)}`);
    assert.match(hit.message, msg);
  }
});

test('YAML errors, duplicate keys, an empty file and a wrong version are refused', () => {
  assert.ok(issues('version: 1\nrules: [\n')[0]?.line);
  assert.ok(issues(`${HEAD}    title: again\n`).some((i) => /duplicate|unique/i.test(i.message)));
  assert.match(issues('')[0]?.message ?? '', /empty/);
  assert.equal(issues('version: 2\nrules: []\n')[0]?.path, 'version');
});

test('the error message lists file:line:col: path: message for each problem', () => {
  try {
    parseRules(`${HEAD}    capacty: 1\n`, 'detections.yaml');
    assert.fail('expected RulesError');
  } catch (err) {
    assert.ok(err instanceof RulesError);
    assert.match(err.message, /^invalid detection rules detections\.yaml \(1 error\):\n {2}detections\.yaml:10:5: rules\[0\]\.capacty: unknown key$/);
  }
});

test('loadRules reports an unreadable file as a RulesError', async (t) => {
  const dir = tmpDir(t);
  await assert.rejects(loadRules(path.join(dir, 'missing.yaml')), (err: unknown) => err instanceof RulesError && /ENOENT/.test(err.message));
  fs.writeFileSync(path.join(dir, 'ok.yaml'), HEAD);
  assert.equal((await loadRules(path.join(dir, 'ok.yaml'))).rules.length, 1);
});
