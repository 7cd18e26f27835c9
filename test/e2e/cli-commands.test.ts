/**
 * The `meshgate` executable as users run it (bin/meshgate.js in a child
 * process): help for every command, configuration errors reported all at
 * once with exit 2, and the README's first command, `meshgate demo --check`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/meshgate.js');

function meshgate(args: string[], timeoutMs = 25_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}` },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGTERM'), timeoutMs);
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    p.on('error', fail);
    p.on('close', (code) => { clearTimeout(timer); done({ code, stdout, stderr }); });
  });
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('meshgate --help lists every command and exits 0', async () => {
  const r = await meshgate(['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const cmd of ['run', 'demo', 'certs', 'token', 'audit', 'config']) assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'));
});

for (const cmd of ['run', 'demo', 'certs', 'token', 'audit', 'config']) {
  test(`meshgate ${cmd} --help prints its usage and exits 0`, async () => {
    const r = await meshgate([cmd, '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage:\\s+meshgate ${cmd}\\b`));
    assert.equal(r.stderr, '');
  });
}

test('an unknown command and a missing -c are usage errors (exit 2)', async () => {
  const unknown = await meshgate(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const noConfig = await meshgate(['run']);
  assert.equal(noConfig.code, 2);
  assert.match(noConfig.stderr, /missing -c FILE/);
});

test('meshgate run -c with a broken config exits 2 and lists every error with its file, line and path', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, [
    'listen: { host: 127.0.0.1, port: "abc" }',
    'upstream: { url: "not a url" }',
    'tls: { cert: c.crt, key: c.key, clientCa: ca.crt, mode: sometimes, trustDomains: [mesh.local] }',
    'authz: { model: m.conf, policy: p.csv }',
    'routes:',
    '  - match: { pathPrefix: / }',
    '    auth: maybe',
    'audit: { dir: audit }',
    'bogus: 1',
    '',
  ].join('\n'));
  const r = await meshgate(['run', '-c', file]);
  assert.equal(r.code, 2);
  const expected = [
    [1, 'listen.port'],
    [2, 'upstream.url'],
    [3, 'tls.mode'],
    [7, 'routes[0].auth'],
    [9, 'bogus'],
  ] as const;
  for (const [line, path] of expected) {
    assert.match(r.stderr, new RegExp(`bad\\.yaml:${line}:\\d+: ${path.replace(/[[\].]/g, '\\$&')}: `), `error for ${path} at line ${line}`);
  }
  assert.match(r.stderr, /\(5 errors\)/);
  assert.equal(r.stdout, '');
});

/** A TCP port nothing listens on right now (bound to port 0, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Keys whose string values are file paths relative to the config file's folder. */
const PATH_KEYS = new Set(['cert', 'key', 'clientCa', 'crl', 'jwksFile', 'model', 'policy', 'rules', 'tokenFile', 'ca']);

function absolutize(node: unknown, base: string): unknown {
  if (Array.isArray(node)) return node.map((n) => absolutize(n, base));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = PATH_KEYS.has(k) && typeof v === 'string' && !isAbsolute(v) ? resolve(base, v)
      : Array.isArray(v) && k === 'crl' ? v.map((p: string) => resolve(base, p))
      : absolutize(v, base);
  }
  return out;
}

test('meshgate demo --check on a copy of policies/meshgate.yaml using free ports prints 200, 401 and 403 and exits 0', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const policies = join(ROOT, 'policies');
  const cfg = absolutize(parse(readFileSync(join(policies, 'meshgate.yaml'), 'utf8')), policies) as Record<string, Record<string, unknown>>;
  cfg.listen = { ...cfg.listen, port: 0 };
  cfg.admin = { ...cfg.admin, port: 0 };
  cfg.upstream = { ...cfg.upstream, url: `http://127.0.0.1:${await freePort()}` };
  cfg.audit = { ...cfg.audit, dir: join(dir, 'audit') };
  const file = join(dir, 'meshgate.yaml');
  writeFileSync(file, stringify(cfg));

  const r = await meshgate(['demo', '--check', '-c', file], 55_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /with token → 200, without token → 401, GET \/admin\/users → 403/);

  // The demo's own gateway wrote a log that verifies: one event per probe.
  const v = await meshgate(['audit', 'verify', join(dir, 'audit')]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /^ok: 3 records/);
});

test('a subcommand name that is an Object.prototype property is an unknown command (exit 2), not a crash', async () => {
  const { main } = await import('../../src/cli/main.ts');
  const { Writable } = await import('node:stream');
  let err = '';
  const sink = new Writable({ write(c: Buffer, _e, cb) { err += c.toString(); cb(); } });
  for (const group of ['audit', 'policy', 'alerts', 'decisions', 'analyzer']) {
    for (const sub of ['constructor', '__proto__', 'toString']) {
      err = '';
      const code = await main([group, sub], { stdout: sink, stderr: sink, env: {}, cwd: process.cwd() });
      assert.equal(code, 2, `${group} ${sub}`);
      assert.match(err, new RegExp(`unknown ${group} command`));
    }
  }
});
