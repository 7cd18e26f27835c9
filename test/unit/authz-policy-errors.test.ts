import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAuthorizer } from '../../src/authz/casbin-authorizer.ts';
import { PolicyError } from '../../src/authz/policy-error.ts';

// Line numbers below refer to this model: 1 [request_definition] … 10 m = …
const MODEL = `[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act, eft
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act
`;
const POLICY = '# rules\np, alice, /x, GET, allow\ng, bob, role:x\n';

interface Case {
  readonly name: string;
  readonly model?: string | null; // null: file missing
  readonly policy?: string | null;
  readonly file: 'model.conf' | 'policy.csv';
  readonly line: number | undefined;
  readonly reason: RegExp;
}

const swapLine = (text: string, line: number, replacement: string): string => {
  const lines = text.split('\n');
  lines[line - 1] = replacement;
  return lines.join('\n');
};

const cases: Case[] = [
  { name: 'an unreadable model file', model: null, file: 'model.conf', line: undefined, reason: /^cannot read file \(ENOENT\)$/ },
  { name: 'an unreadable policy file', policy: null, file: 'policy.csv', line: undefined, reason: /^cannot read file \(ENOENT\)$/ },
  { name: 'a model line without "="', model: swapLine(MODEL, 6, 'g _, _'), file: 'model.conf', line: 6, reason: /expected "key = value"/ },
  { name: 'an unknown model section', model: swapLine(MODEL, 9, '[matcher]'), file: 'model.conf', line: 9, reason: /unknown section \[matcher\]/ },
  { name: 'a duplicate model section', model: MODEL + '[matchers]\n', file: 'model.conf', line: 11, reason: /duplicate section \[matchers\]/ },
  { name: 'a key that does not belong to its section', model: swapLine(MODEL, 4, 'q = sub, obj'), file: 'model.conf', line: 4, reason: /unexpected key "q"/ },
  { name: 'a missing matcher definition', model: MODEL.split('\n').slice(0, 8).join('\n'), file: 'model.conf', line: undefined, reason: /missing required definition "m = …" in \[matchers\]/ },
  { name: 'a matcher syntax error', model: swapLine(MODEL, 10, 'm = (r.sub == p.sub && r.obj == p.obj'), file: 'model.conf', line: 10, reason: /^matcher syntax: Unclosed \(/ },
  { name: 'a single & in the matcher', model: swapLine(MODEL, 10, 'm = r.sub == p.sub & r.obj == p.obj'), file: 'model.conf', line: 10, reason: /invalid operator/ },
  { name: 'an unknown request token', model: swapLine(MODEL, 2, 'r = sub, obj, act, ip'), file: 'model.conf', line: 2, reason: /unknown request token "ip"/ },
  { name: 'an unknown matcher function', model: swapLine(MODEL, 10, 'm = r.sub == p.sub && keyMatchCustom(r.obj, p.obj)'), file: 'model.conf', line: 10, reason: /unknown function "keyMatchCustom"/ },
  { name: 'a matcher reading a token the request does not define', model: swapLine(MODEL, 10, 'm = r.sub == p.sub && r.path == p.obj'), file: 'model.conf', line: 10, reason: /reads r\.path/ },
  { name: 'an effect that allows by default', model: swapLine(MODEL, 8, 'e = !some(where (p.eft == deny))'), file: 'model.conf', line: 8, reason: /unsupported policy effect/ },
  { name: 'a malformed role definition', model: swapLine(MODEL, 6, 'g = _'), file: 'model.conf', line: 6, reason: /role definition g must be/ },
  { name: 'an empty policy file (likely a half-done write)', policy: '', file: 'policy.csv', line: undefined, reason: /^policy file is empty/ },
  { name: 'unbalanced quotes in the policy CSV', policy: '# rules\n\np, "alice, /x, GET, allow\n', file: 'policy.csv', line: 3, reason: /^CSV syntax: unbalanced double quote$/ },
  { name: 'unbalanced brackets in the policy CSV', policy: 'p, alice, /x, GET, allow\np, keyMatch(a, /y, GET, allow\n', file: 'policy.csv', line: 2, reason: /^CSV syntax: Unmatched brackets/ },
  { name: 'a p line with too few columns', policy: 'p, alice, /x, allow\n', file: 'policy.csv', line: 1, reason: /p line has 3 column\(s\), the model's p = sub, obj, act, eft has 4/ },
  { name: 'a p line with too many columns', policy: 'p, alice, /x, GET, allow, extra\n', file: 'policy.csv', line: 1, reason: /p line has 5 column/ },
  { name: 'a g line with the wrong column count', policy: 'p, alice, /x, GET, allow\n\ng, bob, role:x, domain1\n', file: 'policy.csv', line: 3, reason: /g line has 3 column\(s\).*has 2/ },
  { name: 'a p2 line when the model defines no p2', policy: POLICY + 'p2, alice, /x, GET, allow\n', file: 'policy.csv', line: 4, reason: /unknown policy type "p2" \(the model defines p, g\)/ },
  { name: 'a line with an unknown type letter', policy: 'x, alice, /x\n', file: 'policy.csv', line: 1, reason: /unknown policy type "x"/ },
];

for (const c of cases) {
  test(`${c.name} is a PolicyError naming ${c.file}${c.line === undefined ? '' : `:${c.line}`}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-authz-err-'));
    try {
      const modelPath = join(dir, 'model.conf');
      const policyPath = join(dir, 'policy.csv');
      const model = c.model === undefined ? MODEL : c.model;
      const policy = c.policy === undefined ? POLICY : c.policy;
      if (model !== null) writeFileSync(modelPath, model);
      if (policy !== null) writeFileSync(policyPath, policy);
      await assert.rejects(loadAuthorizer({ modelPath, policyPath, decisionCacheEntries: 10 }), (e: unknown) => {
        assert.ok(e instanceof PolicyError, `expected PolicyError, got ${String(e)}`);
        assert.equal(e.file, join(dir, c.file));
        assert.equal(e.line, c.line);
        assert.match(e.reason, c.reason);
        assert.equal(e.message, `${e.file}${c.line === undefined ? '' : `:${c.line}`}: ${e.reason}`);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('the unchanged base model and policy load, so every case above fails for its own reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-authz-err-'));
  try {
    writeFileSync(join(dir, 'model.conf'), MODEL);
    writeFileSync(join(dir, 'policy.csv'), POLICY);
    const a = await loadAuthorizer({ modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv'), decisionCacheEntries: 10 });
    assert.equal(a.decide({ sub: 'alice', peer: '', obj: '/x', act: 'GET', claims: {} }).allowed, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a negative or fractional decision cache size is caller misuse (TypeError), not a PolicyError', async () => {
  await assert.rejects(loadAuthorizer({ modelPath: 'm', policyPath: 'p', decisionCacheEntries: -1 }), TypeError);
  await assert.rejects(loadAuthorizer({ modelPath: 'm', policyPath: 'p', decisionCacheEntries: 1.5 }), TypeError);
});
