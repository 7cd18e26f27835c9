import assert from 'node:assert/strict';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import type { CheckReport } from '../../src/policy/check-policy.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

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

test('policy check with no DIR checks policies/ and exits 0 on the clean demo policy', async () => {
  const r = await run(['policy', 'check']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok: policies\/model\.conf \+ policies\/policy\.csv \(6 rules, 3 role assignments, policy sha256:[0-9a-f]{16}, engine \w+\): no findings$/m);
});

test('policy check exits 1 on errors and prints file:line, severity, code and the rule', async () => {
  const r = await run(['policy', 'check', 'test/fixtures/policy/lint']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^test\/fixtures\/policy\/lint\/policy\.csv:19: error \[deny-raw-path\] /m);
  assert.match(r.stdout, /^ {4}p, alice, \/orders\/\.\.\/secret, \.\*, deny$/m);
  assert.match(r.stdout, /^FAILED: .*: 7 errors, 9 warnings$/m);
});

test('policy check --json prints the report; warnings alone exit 0', async () => {
  const r = await run(['policy', 'check', '--model', 'policies/model.conf', '--policy', 'test/fixtures/policy/lint/policy.csv', '--json']);
  assert.equal(r.code, 1);
  const report = JSON.parse(r.stdout) as CheckReport;
  assert.equal(report.errors, 7);
  assert.ok(report.findings.every((f) => typeof f.line === 'number' && (f.severity === 'error' || f.severity === 'warning')));
});

test('policy check: bad usage and unreadable files exit 2', async () => {
  assert.equal((await run(['policy', 'check', 'a', 'b'])).code, 2);
  assert.equal((await run(['policy', 'check', '--encoded-slash', 'maybe'])).code, 2);
  const missing = await run(['policy', 'check', 'no/such/dir']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read file \(ENOENT\)/);
});

test('policy help and unknown subcommands', async () => {
  assert.equal((await run(['policy'])).code, 2);
  const help = await run(['policy', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /check +lint a model \+ policy/);
  for (const sub of ['check', 'test', 'explain', 'replay']) {
    const r = await run(['policy', sub, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: meshgate policy ${sub} `));
  }
  const bad = await run(['policy', 'lint']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown policy command 'lint'/);
});
