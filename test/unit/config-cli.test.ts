import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { configCommand } from '../../src/cli/config.ts';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';

const VALID = `admin: { token: "\${ADMIN_TOKEN}" }
upstream: { url: "http://127.0.0.1:8080" }
tls: { cert: c.crt, key: c.key, clientCa: ca.crt, trustDomains: [mesh.local] }
authz: { model: m.conf, policy: p.csv }
routes:
  - match: { pathPrefix: / }
    auth: mtls
audit: { dir: audit }
`;

const INVALID = VALID.replace('auth: mtls', 'auth: basic').replace('trustDomains', 'trustDomain');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], cwd: string, env: NodeJS.ProcessEnv = { ADMIN_TOKEN: 'super-secret-admin' }): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const io: CliIO = { stdout, stderr, env, cwd };
  const code = await main(['config', ...argv], io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-config-cli-'));
    try {
      writeFileSync(join(dir, 'good.yaml'), VALID);
      writeFileSync(join(dir, 'bad.yaml'), INVALID);
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('config check exits 0 on a valid file and never prints the config or its secrets', withDir(async (dir) => {
  const r = await run(['check', '-c', 'good.yaml'], dir);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'good.yaml: valid\n');
  assert.doesNotMatch(r.stdout + r.stderr, /super-secret-admin/);
}));

test('config check exits 2 and lists every error with file:line:col and path', withDir(async (dir) => {
  const r = await run(['check', '--config', 'bad.yaml'], dir);
  assert.equal(r.code, 2);
  assert.equal(
    r.stdout,
    'bad.yaml: invalid (3 errors)\n' +
      '  bad.yaml:3:6: tls.trustDomains: missing required key (expected array)\n' +
      '  bad.yaml:3:51: tls.trustDomain: unknown key (did you mean "trustDomains"?)\n' +
      '  bad.yaml:7:11: routes[0].auth: expected one of none|mtls|jwt|mtls+jwt\n',
  );
}));

test('config check --json reports validity and structured errors', withDir(async (dir) => {
  const bad = await run(['check', '-c', 'bad.yaml', '--json'], dir);
  assert.equal(bad.code, 2);
  const parsed = JSON.parse(bad.stdout) as { valid: boolean; file: string; errors: { path: string; message: string; line?: number; column?: number }[] };
  assert.equal(parsed.valid, false);
  assert.equal(parsed.file, 'bad.yaml');
  assert.deepEqual(parsed.errors.map((e) => [e.path, e.line]), [['tls.trustDomains', 3], ['tls.trustDomain', 3], ['routes[0].auth', 7]]);
  const good = await run(['check', '-c', 'good.yaml', '--json'], dir);
  assert.equal(good.code, 0);
  assert.deepEqual(JSON.parse(good.stdout), { valid: true, file: 'good.yaml', errors: [] });
}));

test('config check reports an unset variable and a missing file as config errors (exit 2)', withDir(async (dir) => {
  const unset = await run(['check', '-c', 'good.yaml'], dir, {});
  assert.equal(unset.code, 2);
  assert.match(unset.stdout, /good\.yaml:1:17: admin\.token: environment variable ADMIN_TOKEN is not set/);
  const missing = await run(['check', '-c', 'nope.yaml', '--json'], dir);
  assert.equal(missing.code, 2);
  assert.deepEqual(JSON.parse(missing.stdout).errors, [{ path: '', message: 'cannot read config file (ENOENT)' }]);
}));

test('config check without -c, with an unknown flag or subcommand is a usage error', withDir(async (dir) => {
  for (const argv of [['check'], ['check', '-c', 'good.yaml', '--bogus'], ['frobnicate'], []]) {
    const r = await run(argv, dir);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.stderr, /meshgate config: .*\nRun 'meshgate config --help' for usage\./, argv.join(' '));
  }
}));

test('config schema prints the JSON Schema', withDir(async (dir) => {
  const r = await run(['schema'], dir);
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.stdout) as { $id: string; properties: Record<string, unknown> };
  assert.equal(schema.$id, 'urn:meshgate:config:v1');
  assert.ok('routes' in schema.properties);
}));

test('help is available for config and its subcommands', withDir(async (dir) => {
  for (const argv of [['--help'], ['check', '--help'], ['schema', '-h']]) {
    const r = await run(argv, dir);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /meshgate config check -c FILE \[--json\]/);
  }
  assert.equal(configCommand.name, 'config');
}));
