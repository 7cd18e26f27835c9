import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import { loadPolicyAuthorizer } from '../../src/policy/load-authorizer.ts';
import { decideTestRequest, ruleMatches, type TestReport } from '../../src/policy/run-tests.ts';
import { TestFileError, parseTestFile } from '../../src/policy/test-file.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEMO = { modelPath: path.join(ROOT, 'policies/model.conf'), policyPath: path.join(ROOT, 'policies/policy.csv') };

async function run(argv: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const io: CliIO = { stdout, stderr, env: {}, cwd };
  const code = await main(argv, io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-policy-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const CASE = (request: string, expect: string, extra = ''): string => `  - name: case ${Math.random()}\n    request: ${request}\n    expect: ${expect}\n${extra}`;

test('the shipped policies/policy.test.yaml passes against the demo policy (exit 0)', async () => {
  const r = await run(['policy', 'test', 'policies/policy.test.yaml']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok: 20 passed, 0 failed$/m);
  assert.doesNotMatch(r.stdout, /FAIL/);
});

test('a failing expectation exits 1 and shows expected vs got with reason, rule and tuple', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'fail.test.yaml');
  fs.writeFileSync(file, `model: ${DEMO.modelPath}\npolicy: ${DEMO.policyPath}\ntests:\n  - name: alice reads the secret order\n    request: { sub: alice, method: GET, path: /orders/secret }\n    expect: allow\n`);
  const r = await run(['policy', 'test', file]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^FAIL {2}alice reads the secret order {2}\(.*fail\.test\.yaml:4\)$/m);
  assert.match(r.stdout, /✗ decision: expected allow, got deny/);
  assert.match(r.stdout, /reason: {3}got authz_deny_rule/);
  assert.match(r.stdout, /rule: {5}got policy\.csv:18: p, alice, \/orders\/secret, \.\*, deny/);
  assert.match(r.stdout, /tuple: {4}sub=alice peer='' obj=\/orders\/secret act=GET/);
  assert.match(r.stdout, /^FAILED: 0 passed, 1 failed$/m);
});

test('--json reports every result with expectation, outcome and the tuple the authorizer saw', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 't.test.yaml');
  fs.writeFileSync(file, `tests:\n${CASE('{ peer: "spiffe://mesh.local/ns/default/sa/client", method: GET, path: "/orders/./7" }', 'allow')}${CASE('{ sub: alice, method: GET, path: /orders/1 }', 'allow', '    reason: authz_deny_rule\n')}`);
  const r = await run(['policy', 'test', file, '--model', DEMO.modelPath, '--policy', DEMO.policyPath, '--json']);
  assert.equal(r.code, 1);
  const report = JSON.parse(r.stdout) as TestReport;
  assert.equal(report.passed, 1);
  assert.equal(report.failed, 1);
  assert.deepEqual(report.results[0]?.got.tuple, { sub: 'spiffe://mesh.local/ns/default/sa/client', peer: 'spiffe://mesh.local/ns/default/sa/client', obj: '/orders/7', act: 'GET', claims: {} });
  assert.deepEqual(report.results[1]?.mismatches, ['reason']);
  assert.equal(report.results[1]?.got.reason, 'allowed');
});

test('the tuple is built like the pipeline: token sub, else peer, else anonymous; the path is canonicalized', async () => {
  const authz = await loadPolicyAuthorizer(DEMO);
  const decide = (request: Record<string, unknown>) => decideTestRequest(authz, { name: 'x', line: 1, expect: 'allow', request: request as never }, 'reject');
  assert.equal((await decide({ method: 'GET', path: '/healthz' })).tuple?.sub, 'anonymous');
  const viaPeer = await decide({ peer: 'spiffe://mesh.local/ns/default/sa/admin', method: 'GET', path: '/admin/x' });
  assert.deepEqual([viaPeer.tuple?.sub, viaPeer.tuple?.peer, viaPeer.decision], ['spiffe://mesh.local/ns/default/sa/admin', 'spiffe://mesh.local/ns/default/sa/admin', 'allow']);
  const viaToken = await decide({ sub: 'alice', peer: 'spiffe://mesh.local/ns/default/sa/admin', method: 'GET', path: '/admin/x' });
  assert.deepEqual([viaToken.tuple?.sub, viaToken.decision, viaToken.reason], ['alice', 'deny', 'authz_no_matching_rule']);
  const dotted = await decide({ sub: 'alice', method: 'GET', path: '/public/../orders/%73ecret?x=1' });
  assert.deepEqual([dotted.tuple?.obj, dotted.reason], ['/orders/secret', 'authz_deny_rule']);
  const refused = await decide({ sub: 'alice', method: 'GET', path: '/orders%2f1' });
  assert.deepEqual([refused.decision, refused.reason, refused.tuple], ['deny', 'path_encoded_slash', undefined]);
  const claims = await decide({ sub: 'alice', claims: { scope: 'orders' }, method: 'GET', path: '/orders' });
  assert.deepEqual(claims.tuple?.claims, { scope: 'orders', sub: 'alice' });
});

test('an expected rule matches by its text, by file:line, or "none"', () => {
  const got = 'policy.csv:18: p, alice, /orders/secret, .*, deny';
  assert.equal(ruleMatches('p, alice, /orders/secret, .*, deny', got), true);
  assert.equal(ruleMatches('p,alice,/orders/secret,.*,deny', got), true);
  assert.equal(ruleMatches('policy.csv:18', got), true);
  assert.equal(ruleMatches('policy.csv:1', got), false);
  assert.equal(ruleMatches('none', undefined), true);
  assert.equal(ruleMatches('none', got), false);
  assert.equal(ruleMatches('p, alice, /orders/secret, .*, allow', got), false);
});

test('malformed test files are rejected with the line of the problem (exit 2), not run', async (t) => {
  const bad: [string, RegExp, number][] = [
    ['tests:\n  - name: a\n    request: { method: get, path: /x }\n    expect: allow\n', /upper-case HTTP method/, 3],
    ['tests:\n  - name: a\n    request: { method: GET, path: /x }\n    expect: maybe\n', /"expect" must be allow or deny/, 4],
    ['tests:\n  - name: a\n    request: { method: GET, path: /x, peer: "spiffe://Bad/x" }\n    expect: allow\n', /"peer" must be a SPIFFE ID/, 3],
    ['tests:\n  - name: a\n    request: { method: GET, path: /x, claims: { scope: a } }\n    expect: allow\n', /always has a subject/, 3],
    ['tests:\n  - name: a\n    request: { method: GET, path: /x }\n    expect: allow\n  - name: a\n    request: { method: GET, path: /x }\n    expect: allow\n', /duplicate test name/, 5],
    ['tests:\n  - name: a\n    requst: { method: GET, path: /x }\n', /unknown key "requst"/, 3],
    ['tests: [\n', /./, 2],
  ];
  for (const [text, msg, line] of bad) {
    assert.throws(() => parseTestFile(text, 'x.test.yaml'), (e: unknown) => e instanceof TestFileError && msg.test(e.message) && e.line === line, text);
  }
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'bad.test.yaml'), bad[0]![0]);
  const r = await run(['policy', 'test', 'bad.test.yaml'], dir);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.test\.yaml:3: "method" must be/);
});

test('a test file whose policy does not load exits 2 with the policy file and line', async (t) => {
  const dir = tempDir(t);
  fs.copyFileSync(DEMO.modelPath, path.join(dir, 'model.conf'));
  fs.writeFileSync(path.join(dir, 'policy.csv'), 'p, alice, /a, GET\n');
  fs.writeFileSync(path.join(dir, 'p.test.yaml'), `tests:\n${CASE('{ method: GET, path: /a }', 'deny')}`);
  const r = await run(['policy', 'test', 'p.test.yaml'], dir);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /policy\.csv:1: p line has 3 column\(s\)/);
});
