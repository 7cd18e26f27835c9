import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { main } from '../../src/cli/main.ts';
import { parseCrl } from '../../src/pki/parse-crl.ts';

const repo = resolve(import.meta.dirname, '../..');
const root = mkdtempSync(join(tmpdir(), 'meshgate-cli-certs-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs `meshgate ...args` in-process with captured output; cwd = root. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (f: (s: string) => void) => new Writable({ write(chunk, _enc, cb) { f(String(chunk)); cb(); } });
  const code = await main(args, { stdout: sink((s) => { stdout += s; }), stderr: sink((s) => { stderr += s; }), env: {}, cwd: root });
  return { code, stdout, stderr };
}

const dir = join(root, 'certs');
const init = await cli('certs', 'init', '--dir', 'certs', '--trust-domain', 'example.org');
const read = (f: string) => readFileSync(join(dir, f), 'utf8');

test('certs init writes the CA, gateway cert, JWT key, JWKS and an empty CRL, keys mode 0600', () => {
  assert.equal(init.code, 0, init.stderr);
  for (const f of ['ca.crt', 'ca.key', 'gateway.crt', 'gateway.key', 'jwt.key', 'jwks.json', 'ca.crl']) {
    assert.ok(init.stdout.includes(join(dir, f)), `prints ${f}`);
    assert.equal((statSync(join(dir, f)).mode & 0o777) === 0o600, f.endsWith('.key'), `mode of ${f}`);
  }
  assert.doesNotMatch(init.stdout + init.stderr, /PRIVATE KEY/);
  const ca = new X509Certificate(read('ca.crt'));
  const gw = new X509Certificate(read('gateway.crt'));
  assert.equal(ca.subjectAltName, 'URI:spiffe://example.org');
  assert.equal(gw.subjectAltName, 'URI:spiffe://example.org/meshgate, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.ok(gw.keyUsage?.includes('1.3.6.1.5.5.7.3.1'), 'serverAuth');
  assert.equal(gw.verify(ca.publicKey), true);
  assert.equal(gw.checkPrivateKey(createPrivateKey(read('gateway.key'))), true);
  assert.deepEqual(parseCrl(read('ca.crl'), { ca: { certPem: read('ca.crt') } }).revoked, []);
});

test('certs init refuses to overwrite without --force (exit 2) and replaces everything with it', async () => {
  const before = read('ca.crt');
  const again = await cli('certs', 'init', '--dir', dir);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /refusing to overwrite .*ca\.crt.*--force/);
  assert.equal(read('ca.crt'), before);
  const otherDir = join(root, 'forced');
  assert.equal((await cli('certs', 'init', '--dir', otherDir)).code, 0);
  const first = readFileSync(join(otherDir, 'ca.crt'), 'utf8');
  const forced = await cli('certs', 'init', '--dir', otherDir, '--force', '--json');
  assert.equal(forced.code, 0, forced.stderr);
  assert.notEqual(readFileSync(join(otherDir, 'ca.crt'), 'utf8'), first);
  const out = JSON.parse(forced.stdout) as { trustDomain: string; files: Record<string, string> };
  assert.equal(out.trustDomain, 'mesh.local');
  assert.equal(out.files['jwks'], join(otherDir, 'jwks.json'));
});

test('certs issue writes NAME.crt and NAME.key for a SPIFFE ID, signed by the CA, clientAuth', async () => {
  const r = await cli('certs', 'issue', '--dir', dir, '--name', 'web', '--spiffe', 'spiffe://example.org/ns/default/sa/web', '--days', '7');
  assert.equal(r.code, 0, r.stderr);
  const cert = new X509Certificate(read('web.crt'));
  assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/ns/default/sa/web');
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  assert.equal(cert.ca, false);
  assert.equal(cert.verify(new X509Certificate(read('ca.crt')).publicKey), true);
  const days = (cert.validToDate.getTime() - Date.now()) / 86_400_000;
  assert.ok(days > 6.9 && days <= 7, `valid ~7 days, got ${days}`);
  assert.equal(statSync(join(dir, 'web.key')).mode & 0o777, 0o600);
  assert.match(r.stdout, new RegExp(cert.serialNumber.toLowerCase()));
  const dup = await cli('certs', 'issue', '--dir', dir, '--name', 'web', '--spiffe', 'spiffe://example.org/ns/default/sa/web');
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /refusing to overwrite/);
});

test('certs issue warns when the SPIFFE ID is outside the CA trust domain', async () => {
  const r = await cli('certs', 'issue', '--dir', dir, '--name', 'stranger', '--spiffe', 'spiffe://other.test/x');
  assert.equal(r.code, 0);
  assert.match(r.stderr, /not in the CA's trust domain example\.org/);
});

test('certs issue rejects bad SPIFFE IDs, names and days with exit 2', async () => {
  const base = ['certs', 'issue', '--dir', dir];
  const cases: [string[], RegExp][] = [
    [['--name', 'a', '--spiffe', 'spiffe://Example.org/a'], /lower case/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org:443/a'], /port/],
    [['--name', 'a', '--spiffe', 'spiffe://u@example.org/a'], /userinfo/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org/a?q'], /query/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org/a#f'], /fragment/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org/a/../b'], /"\."/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org/a//b'], /empty/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org'], /no path/],
    [['--name', 'a', '--spiffe', 'http://example.org/a'], /spiffe:\/\//],
    [['--name', 'a'], /--spiffe ID is required/],
    [['--name', '../evil', '--spiffe', 'spiffe://example.org/a'], /invalid --name/],
    [['--name', 'ca', '--spiffe', 'spiffe://example.org/a'], /reserved/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org/a', '--days', '0'], /invalid --days/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org/a', '--days', '3.5'], /invalid --days/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org/a', '--colour'], /Unknown option/],
    [['--name', 'a', '--spiffe', 'spiffe://example.org/a', 'extra'], /positional/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(...base, ...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
  assert.equal(existsSync(join(dir, 'a.crt')), false);
  const noCa = await cli('certs', 'issue', '--dir', join(root, 'empty'), '--name', 'a', '--spiffe', 'spiffe://example.org/a');
  assert.equal(noCa.code, 2);
  assert.match(noCa.stderr, /certs init/);
});

test('certs revoke adds the serial to ca.crl, keeps earlier entries, and is idempotent', async () => {
  await cli('certs', 'issue', '--dir', dir, '--name', 'api', '--spiffe', 'spiffe://example.org/ns/default/sa/api');
  const r1 = await cli('certs', 'revoke', '--dir', dir, '--name', 'web');
  assert.equal(r1.code, 0, r1.stderr);
  const r2 = await cli('certs', 'revoke', '--dir', dir, '--cert', join('certs', 'api.crt'), '--json');
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal((JSON.parse(r2.stdout) as { crlNumber: string }).crlNumber, '3');
  const crl = parseCrl(read('ca.crl'), { ca: { certPem: read('ca.crt') } });
  const serial = (f: string) => new X509Certificate(read(f)).serialNumber.toLowerCase();
  assert.deepEqual(crl.revoked.map((e) => e.serialNumber), [serial('web.crt'), serial('api.crt')]);
  const r3 = await cli('certs', 'revoke', '--dir', dir, '--name', 'web');
  assert.equal(r3.code, 0);
  assert.match(r3.stdout, /already revoked/);
  if (spawnSync('openssl', ['version']).status === 0) {
    const o = spawnSync('openssl', ['crl', '-in', join(dir, 'ca.crl'), '-noout', '-text', '-CAfile', join(dir, 'ca.crt')], { encoding: 'utf8' });
    assert.equal(o.status, 0, o.stderr);
    assert.match(o.stderr + o.stdout, /verify OK/);
  }
});

test('certs revoke refuses bad input with exit 2 and never replaces an untrusted CRL', async () => {
  assert.equal((await cli('certs', 'revoke', '--dir', dir)).code, 2);
  assert.equal((await cli('certs', 'revoke', '--dir', dir, '--name', 'web', '--cert', 'x.crt')).code, 2);
  assert.match((await cli('certs', 'revoke', '--dir', dir, '--name', 'nope')).stderr, /cannot read a certificate/);
  assert.match((await cli('certs', 'revoke', '--dir', dir, '--name', 'ca')).stderr, /cannot revoke the CA/);
  const foreign = await cli('certs', 'revoke', '--dir', dir, '--cert', join('forced', 'gateway.crt'));
  assert.equal(foreign.code, 2);
  assert.match(foreign.stderr, /was not issued by/);
  const crlDir = join(root, 'badcrl');
  await cli('certs', 'init', '--dir', crlDir);
  await cli('certs', 'issue', '--dir', crlDir, '--name', 'w', '--spiffe', 'spiffe://mesh.local/w');
  writeFileSync(join(crlDir, 'ca.crl'), read('ca.crl')); // a CRL from another CA
  const r = await cli('certs', 'revoke', '--dir', crlDir, '--name', 'w');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /issuer is not this CA; refusing to replace it/);
  assert.equal(readFileSync(join(crlDir, 'ca.crl'), 'utf8'), read('ca.crl'));
});

test('token mint prints one token that jose verifies with jwks.json, with typed --claim values', async () => {
  const r = await cli('token', 'mint', '--key', 'certs/jwt.key', '--sub', 'alice', '--aud', 'orders', '--ttl', '90s',
    '--claim', 'admin=true', '--claim', 'level=3', '--claim', 'scope=orders:read', '--claim', 'roles=["a","b"]', '--claim', 'zip=007',
    '--jti', 'token-1');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  const jwks = createLocalJWKSet(JSON.parse(read('jwks.json')));
  const { payload, protectedHeader } = await jwtVerify(r.stdout.trim(), jwks, { issuer: 'https://issuer.mesh.local', audience: 'orders', algorithms: ['ES256'] });
  assert.equal(protectedHeader.typ, 'JWT');
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.jti, 'token-1');
  assert.equal(payload.exp! - payload.iat!, 90);
  assert.equal(payload['admin'], true);
  assert.equal(payload['level'], 3);
  assert.equal(payload['scope'], 'orders:read');
  assert.deepEqual(payload['roles'], ['a', 'b']);
  assert.equal(payload['zip'], '007');
});

test('token mint --bind-cert adds cnf x5t#S256 of that certificate; --iss and several --aud apply', async () => {
  const r = await cli('token', 'mint', '--key', join(dir, 'jwt.key'), '--sub', 's', '--aud', 'a', '--aud', 'b', '--iss', 'https://other', '--bind-cert', join(dir, 'api.crt'));
  assert.equal(r.code, 0, r.stderr);
  const p = decodeJwt(r.stdout.trim());
  const fp = Buffer.from(new X509Certificate(read('api.crt')).fingerprint256.replace(/:/g, ''), 'hex').toString('base64url');
  assert.deepEqual(p['cnf'], { 'x5t#S256': fp });
  assert.deepEqual(p.aud, ['a', 'b']);
  assert.equal(p.iss, 'https://other');
  assert.equal(p.exp! - p.iat!, 300, 'default ttl 5m');
});

test('token mint rejects bad flags and unusable files with exit 2 and never prints key material', async () => {
  const key = ['--key', join(dir, 'jwt.key')];
  const cases: [string[], RegExp][] = [
    [['--sub', 's', '--aud', 'a'], /--key FILE is required/],
    [[...key, '--aud', 'a'], /--sub/],
    [[...key, '--sub', 's'], /--aud/],
    [[...key, '--sub', 's', '--aud', 'a', '--ttl', '5'], /invalid --ttl/],
    [[...key, '--sub', 's', '--aud', 'a', '--ttl', '500ms'], /invalid --ttl/],
    [[...key, '--sub', 's', '--aud', 'a', '--claim', 'novalue'], /expected k=v/],
    [[...key, '--sub', 's', '--aud', 'a', '--claim', 'exp=1'], /not allowed/],
    [[...key, '--sub', 's', '--aud', 'a', '--claim', 'x=1', '--claim', 'x=2'], /twice/],
    [[...key, '--sub', 's', '--aud', 'a', '--bind-cert', join(dir, 'ca.key')], /cannot read a PEM certificate/],
    [['--key', join(dir, 'missing.key'), '--sub', 's', '--aud', 'a'], /cannot read the file/],
    [['--key', join(dir, 'ca.key'), '--sub', 's', '--aud', 'a'], /P-256/],
    [[...key, '--sub', 's', '--aud', 'a', '--kid', 'x'], /Unknown option/],
  ];
  for (const [args, re] of cases) {
    const r = await cli('token', 'mint', ...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stdout, '');
    assert.doesNotMatch(r.stderr, /PRIVATE KEY|MII/);
  }
  assert.equal((await cli('token', 'burn')).code, 2);
});

test('every subcommand has --help (exit 0); a missing subcommand is a usage error', async () => {
  for (const args of [['certs', '--help'], ['certs', 'init', '--help'], ['certs', 'issue', '--help'], ['certs', 'revoke', '-h'], ['token', '--help'], ['token', 'mint', '--help']]) {
    const r = await cli(...args);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(r.stdout, /^Usage: meshgate (certs|token)/, args.join(' '));
  }
  assert.equal((await cli('certs')).code, 2);
  assert.equal((await cli('certs', 'bless')).code, 2);
  assert.equal((await cli('certs', 'init')).code, 2, 'missing --dir');
  assert.equal((await cli('certs', 'init', '--dir', join(root, 'td'), '--trust-domain', 'Bad_TD:1')).code, 2);
});

test('the meshgate executable runs certs init and token mint end to end', () => {
  const out = join(root, 'spawned');
  const node = process.execPath;
  const a = spawnSync(node, ['bin/meshgate.js', 'certs', 'init', '--dir', out], { cwd: repo, encoding: 'utf8' });
  assert.equal(a.status, 0, a.stderr);
  const b = spawnSync(node, ['bin/meshgate.js', 'token', 'mint', '--key', join(out, 'jwt.key'), '--sub', 's', '--aud', 'orders'], { cwd: repo, encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  assert.equal(decodeJwt(b.stdout.trim()).sub, 's');
  const c = spawnSync(node, ['bin/meshgate.js', 'certs', 'issue', '--dir', out, '--name', 'x', '--spiffe', 'spiffe://mesh.local/x?y'], { cwd: repo, encoding: 'utf8' });
  assert.equal(c.status, 2);
});
