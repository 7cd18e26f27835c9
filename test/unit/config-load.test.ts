import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatPath, loadConfig, parseConfigText, substituteEnv, type ConfigIssue } from '../../src/config/load.ts';

/** PRODUCT.md §2, verbatim. */
const CANONICAL = `listen: { host: 127.0.0.1, port: 8443 }
admin: { host: 127.0.0.1, port: 9901, token: "\${MESHGATE_ADMIN_TOKEN}" }
upstream: { url: "http://127.0.0.1:8080" }
tls:
  cert: certs/gateway.crt
  key: certs/gateway.key
  clientCa: certs/ca.crt
  crl: certs/ca.crl            # optional
  mode: strict                 # strict | permissive
  trustDomains: [mesh.local]
jwt:
  issuers:
    - issuer: "https://issuer.mesh.local"
      audiences: [orders]
      jwksFile: certs/jwks.json  # or jwksUrl: https://…
      algorithms: [ES256]
authz:
  model: policies/model.conf
  policy: policies/policy.csv
routes:                        # first match wins; no match → 404, never an unchecked pass
  - match: { pathPrefix: /healthz }
    auth: none
  - match: { pathPrefix: / }
    auth: mtls+jwt             # none | mtls | jwt | mtls+jwt
audit:
  dir: audit
`;

/** A small valid config; tests splice faults into it. Line numbers below refer to it. */
const MINIMAL = `upstream:
  url: http://127.0.0.1:8080
tls:
  cert: c.crt
  key: c.key
  clientCa: ca.crt
  trustDomains: [mesh.local]
authz:
  model: model.conf
  policy: policy.csv
routes:
  - match: { pathPrefix: / }
    auth: mtls
audit:
  dir: audit
`;

const ENV = { MESHGATE_ADMIN_TOKEN: 'test-admin-token' };
const BASE = '/etc/meshgate';

function parse(text: string, env: Record<string, string> = ENV) {
  return parseConfigText(text, { baseDir: BASE, env, fileName: 'meshgate.yaml' });
}

/** The issues of a config that must fail to load. */
function issuesOf(text: string, env: Record<string, string> = ENV): readonly ConfigIssue[] {
  try {
    parse(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('config was accepted');
}

function issueAt(issues: readonly ConfigIssue[], path: string): ConfigIssue {
  const found = issues.find((i) => i.path === path);
  assert.ok(found, `no issue at ${path}; got ${JSON.stringify(issues)}`);
  return found;
}

test('the canonical configuration of PRODUCT §2 loads as written with MESHGATE_ADMIN_TOKEN set', () => {
  const c = parse(CANONICAL);
  assert.equal(c.listen.port, 8443);
  assert.equal(c.admin.token, 'test-admin-token');
  assert.equal(c.upstream.url, 'http://127.0.0.1:8080');
  assert.equal(c.tls.mode, 'strict');
  assert.deepEqual(c.tls.trustDomains, ['mesh.local']);
  assert.equal(c.jwt?.issuers[0]?.issuer, 'https://issuer.mesh.local');
  assert.deepEqual(c.routes.map((r) => r.auth), ['none', 'mtls+jwt']);
});

test('the canonical configuration without MESHGATE_ADMIN_TOKEN fails at admin.token with its line', () => {
  const issues = issuesOf(CANONICAL, {});
  assert.equal(issues.length, 1);
  assert.deepEqual(issues[0], { path: 'admin.token', message: 'environment variable MESHGATE_ADMIN_TOKEN is not set', line: 2, column: 46 });
});

test('the ConfigError message lists file:line:col, path and reason of every issue', () => {
  assert.throws(() => parse(CANONICAL, {}), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /^invalid configuration meshgate\.yaml \(1 error\):\n {2}meshgate\.yaml:2:46: admin\.token: environment variable MESHGATE_ADMIN_TOKEN is not set$/);
    return true;
  });
});

test('relative file paths resolve against the config folder and absolute ones stay as written', () => {
  const c = parse(`${CANONICAL.replace('dir: audit', 'dir: /var/log/mg')}`);
  assert.equal(c.tls.cert, '/etc/meshgate/certs/gateway.crt');
  assert.equal(c.tls.key, '/etc/meshgate/certs/gateway.key');
  assert.equal(c.tls.clientCa, '/etc/meshgate/certs/ca.crt');
  assert.equal(c.tls.crl, '/etc/meshgate/certs/ca.crl');
  assert.equal(c.jwt?.issuers[0]?.jwksFile, '/etc/meshgate/certs/jwks.json');
  assert.equal(c.authz.model, '/etc/meshgate/policies/model.conf');
  assert.equal(c.authz.policy, '/etc/meshgate/policies/policy.csv');
  assert.equal(c.audit.dir, '/var/log/mg');
});

test('a crl list and upstream tls files resolve too', () => {
  const c = parse(MINIMAL.replace('http://127.0.0.1:8080', 'https://127.0.0.1:8443\n  tls: { ca: up/ca.crt, cert: ../up.crt, key: up.key }').replace('  trustDomains', '  crl: [a.crl, /abs/b.crl]\n  trustDomains'));
  assert.deepEqual(c.tls.crl, ['/etc/meshgate/a.crl', '/abs/b.crl']);
  assert.deepEqual(c.upstream.tls, { ca: '/etc/meshgate/up/ca.crt', cert: '/etc/up.crt', key: '/etc/meshgate/up.key' });
});

test('defaults are applied and durations become milliseconds', () => {
  const c = parse(MINIMAL.replace('auth: mtls', 'auth: mtls\naudit:\n  dir: audit\n  fsyncInterval: 250ms').replace(/audit:\n {2}dir: audit\n$/, ''));
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8443, maxHeaderBytes: 16_384, maxHeaders: 100, maxBodyBytes: 1_073_741_824, headersTimeout: 10_000, requestTimeout: 300_000, idleTimeout: 60_000, drainTimeout: 15_000 });
  assert.equal(c.admin.host, '127.0.0.1');
  assert.equal(c.admin.port, 9901);
  assert.equal(c.admin.token, undefined);
  assert.equal(c.upstream.responseTimeout, 30_000);
  assert.equal(c.tls.mode, 'strict');
  assert.equal(c.tls.minVersion, 'TLSv1.2');
  assert.equal(c.routes[0]?.requireBoundToken, false);
  assert.equal(c.audit.fsyncInterval, 250);
  assert.equal(c.audit.checkpointInterval, 10_000);
  assert.equal(c.log.level, 'info');
  assert.deepEqual(c.headers, { trustedForwarders: [], encodedSlash: 'reject', pathParams: 'reject', keepOverrideHeaders: false });
  assert.equal(c.jwt, undefined);
});

test('the result is deeply frozen', () => {
  const c = parse(CANONICAL);
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.tls.trustDomains));
  assert.ok(Object.isFrozen(c.routes[1]?.match));
  assert.ok(Object.isFrozen(c.jwt?.issuers[0]?.audiences));
  assert.throws(() => {
    (c.routes as unknown as unknown[]).push({});
  }, TypeError);
  assert.throws(() => {
    (c.listen as { port: number }).port = 1;
  }, TypeError);
});

test('an unknown key at depth is reported with its full path, its line and a spelling hint', () => {
  const issues = issuesOf(MINIMAL.replace('    auth: mtls', '    auth: mtls\n    match2: x').replace('pathPrefix: / }', 'pathPrefix: /, methd: [GET] }'));
  assert.deepEqual(issueAt(issues, 'routes[0].match.methd'), { path: 'routes[0].match.methd', message: 'unknown key (did you mean "methods"?)', line: 12, column: 29 });
  assert.deepEqual(issueAt(issues, 'routes[0].match2'), { path: 'routes[0].match2', message: 'unknown key (did you mean "match"?)', line: 14, column: 5 });
});

test('several unknown keys in one object each get their own issue', () => {
  const issues = issuesOf(`${MINIMAL}bogus: 1\n"odd key": 2\n`);
  assert.deepEqual(issues.map((i) => [i.path, i.message, i.line]), [
    ['bogus', 'unknown key', 16],
    ['["odd key"]', 'unknown key', 17],
  ]);
});

test('a wrong type names what was expected and what was found', () => {
  const issues = issuesOf(`listen: { port: "8443" }\n${MINIMAL}`);
  assert.deepEqual(issueAt(issues, 'listen.port'), { path: 'listen.port', message: 'expected number, got string', line: 1, column: 17 });
});

test('a malformed duration is rejected at its path', () => {
  for (const bad of ['5 minutes', '10', '1.5s', '1h30m', '-1s']) {
    const issues = issuesOf(MINIMAL.replace('dir: audit', `dir: audit\n  fsyncInterval: "${bad}"`));
    assert.match(issueAt(issues, 'audit.fsyncInterval').message, /^expected a duration/, bad);
  }
});

test('a duration too large for milliseconds is rejected instead of becoming undefined', () => {
  const issues = issuesOf(MINIMAL.replace('dir: audit', 'dir: audit\n  fsyncInterval: 99999999999999999999d'));
  assert.equal(issueAt(issues, 'audit.fsyncInterval').message, 'duration is too large');
});

test('a missing required key is reported at its path, located at the parent', () => {
  const issues = issuesOf(MINIMAL.replace('  key: c.key\n', ''));
  assert.deepEqual(issueAt(issues, 'tls.key'), { path: 'tls.key', message: 'missing required key (expected string)', line: 4, column: 3 });
});

test('a missing required section is reported', () => {
  const issues = issuesOf(MINIMAL.replace(/authz:\n.*\n.*\n/, ''));
  assert.equal(issueAt(issues, 'authz').message, 'missing required key (expected object)');
});

test('a bad enum value lists the allowed values', () => {
  const issues = issuesOf(MINIMAL.replace('auth: mtls', 'auth: basic'));
  assert.deepEqual(issueAt(issues, 'routes[0].auth'), { path: 'routes[0].auth', message: 'expected one of none|mtls|jwt|mtls+jwt', line: 13, column: 11 });
});

test('every error is reported at once, in file order', () => {
  const text = MINIMAL.replace('http://127.0.0.1:8080', 'ftp://x')
    .replace('  trustDomains: [mesh.local]', '  trustDomains: []\n  mode: lax')
    .replace('auth: mtls', 'auth: basic')
    .replace('dir: audit', 'dir: audit\n  fsyncInterval: soon');
  const issues = issuesOf(`${text}extra: true\n`);
  assert.deepEqual(issues.map((i) => `${i.line}:${i.path}`), ['2:upstream.url', '7:tls.trustDomains', '8:tls.mode', '14:routes[0].auth', '17:audit.fsyncInterval', '18:extra']);
  assert.equal(issueAt(issues, 'tls.trustDomains').message, 'must have at least 1 item');
  assert.equal(issueAt(issues, 'upstream.url').message, 'expected an http:// or https:// URL');
});

test('a jwt or mtls+jwt route without a jwt section is refused', () => {
  const issues = issuesOf(MINIMAL.replace('auth: mtls', 'auth: jwt').replace('routes:\n', 'routes:\n  - match: { path: /x }\n    auth: mtls+jwt\n'));
  assert.deepEqual(issues.map((i) => i.path), ['routes[0].auth', 'routes[1].auth']);
  assert.match(issueAt(issues, 'routes[0].auth').message, /^requires jwt config/);
});

test('an mtls route with tls mode permissive is accepted', () => {
  const c = parse(MINIMAL.replace('  trustDomains', '  mode: permissive\n  trustDomains'));
  assert.equal(c.tls.mode, 'permissive');
  assert.equal(c.routes[0]?.auth, 'mtls');
});

test('semantic errors are reported together with env errors', () => {
  const issues = issuesOf(`admin: { token: "\${NOPE}" }\n${MINIMAL.replace('auth: mtls', 'auth: jwt')}`, {});
  assert.deepEqual(issues.map((i) => i.path), ['admin.token', 'routes[0].auth']);
});

test('duplicate route names are refused, including a clash with a default name', () => {
  const text = MINIMAL.replace('routes:\n', 'routes:\n  - { name: a, match: { path: /a }, auth: mtls }\n  - { name: a, match: { path: /b }, auth: mtls }\n  - { name: route-3, match: { path: /c }, auth: mtls }\n');
  const issues = issuesOf(text);
  assert.deepEqual(issues.map((i) => [i.path, i.message]), [
    ['routes[1].name', 'duplicate route name "a" (also routes[0])'],
    ['routes[3].name', 'duplicate route name "route-3" (also routes[2])'],
  ]);
});

test('upstream tls with a plain http url is refused', () => {
  const issues = issuesOf(MINIMAL.replace('url: http://127.0.0.1:8080', 'url: http://127.0.0.1:8080\n  tls: { ca: ca.crt }'));
  assert.equal(issueAt(issues, 'upstream.tls').message, 'upstream.tls requires an https upstream.url');
});

test('the embedded analyzer is refused beside audit.sink.nats: the replicas analyze, the gateway mirrors their alerts', () => {
  const nats = '  sink:\n    nats: { servers: [nats://127.0.0.1:4222], service: orders }\n';
  assert.match(issueAt(issuesOf(`${MINIMAL}${nats}`), 'analyzer.enabled').message, /analyzer run --nats/);
  assert.doesNotThrow(() => parse(`${MINIMAL}${nats}analyzer: { enabled: false }\n`, ENV));
});

test('a route match needs exactly one of path and pathPrefix, and an issuer one JWKS source', () => {
  const jwt = 'jwt:\n  issuers:\n    - { issuer: a, audiences: [x], algorithms: [ES256], jwksFile: j.json, jwksUrl: "https://x/jwks" }\n';
  const issues = issuesOf(`${jwt}${MINIMAL.replace('{ pathPrefix: / }', '{ pathPrefix: /, path: /x }')}`);
  assert.equal(issueAt(issues, 'routes[0].match').message, 'exactly one of pathPrefix or path is required');
  assert.equal(issueAt(issues, 'jwt.issuers[0]').message, 'exactly one of jwksFile or jwksUrl is required');
});

test('a remote JWKS over plain http is refused unless the host is loopback', () => {
  const withUrl = (url: string): string => `jwt:\n  issuers:\n    - { issuer: a, audiences: [x], algorithms: [ES256], jwksUrl: "${url}" }\n${MINIMAL}`;
  assert.equal(issueAt(issuesOf(withUrl('http://keys.example/jwks')), 'jwt.issuers[0].jwksUrl').message, 'must be an https:// URL (plain http only to a loopback host)');
  for (const ok of ['https://keys.example/jwks', 'http://127.0.0.1:9000/jwks', 'http://localhost/jwks', 'http://[::1]:1/jwks']) {
    assert.equal(parse(withUrl(ok)).jwt?.issuers[0]?.jwksUrl, ok);
  }
});

test('duplicate issuers are refused', () => {
  const i = '    - { issuer: a, audiences: [x], algorithms: [ES256], jwksFile: j.json }\n';
  assert.equal(issueAt(issuesOf(`jwt:\n  issuers:\n${i}${i}${MINIMAL}`), 'jwt.issuers[1].issuer').message, 'duplicate issuer (also jwt.issuers[0])');
});

test('a duplicate YAML key is an error with its path and line', () => {
  const issues = issuesOf(MINIMAL.replace('  key: c.key\n', '  key: c.key\n  key: other.key\n'));
  assert.deepEqual(issues, [{ path: 'tls.key', message: 'duplicate key', line: 6, column: 3 }]);
});

test('a YAML syntax error is reported with its line and no schema noise', () => {
  const issues = issuesOf(MINIMAL.replace('  trustDomains: [mesh.local]', '  trustDomains: [mesh.local'));
  assert.equal(issues.length, 1);
  assert.equal(issues[0]?.line, 8);
  assert.equal(issues[0]?.path, '');
  assert.match(issues[0]?.message ?? '', /Flow sequence/);
});

test('YAML 1.2 core schema: yes/on are strings, so a boolean key refuses them', () => {
  const issues = issuesOf(MINIMAL.replace('  trustDomains', '  watch: yes\n  trustDomains'));
  assert.equal(issueAt(issues, 'tls.watch').message, 'expected boolean, got string');
});

test('an unknown YAML tag is refused rather than ignored', () => {
  const issues = issuesOf(MINIMAL.replace('key: c.key', 'key: !secret c.key'));
  assert.equal(issues[0]?.line, 5);
  assert.match(issues[0]?.message ?? '', /Unresolved tag/);
});

test('an empty file and a non-mapping document are refused', () => {
  assert.deepEqual(issuesOf(''), [{ path: '', message: 'configuration is empty' }]);
  assert.deepEqual(issuesOf('# nothing\n'), [{ path: '', message: 'configuration is empty' }]);
  assert.equal(issuesOf('- a\n- b\n')[0]?.message, 'expected object, got array');
});

test('env substitution: default, escape, empty value and one-pass expansion', () => {
  const env = { A: 'x', EMPTY: '', NESTED: '${A}' };
  assert.deepEqual(substituteEnv('${A}-${B:-dflt}-${EMPTY:-e}-$${A}-$5-${NESTED}', env), { value: 'x-dflt-e-${A}-$5-${A}' });
  assert.deepEqual(substituteEnv('${EMPTY}', env), { value: '' });
  assert.deepEqual(substituteEnv('${B:-}', env), { value: '' });
  assert.equal(substituteEnv('${MISSING}', env).error, 'environment variable MISSING is not set');
  assert.match(substituteEnv('${A', env).error ?? '', /unterminated/);
  assert.match(substituteEnv('${1BAD}', env).error ?? '', /malformed/);
  assert.match(substituteEnv('${A B}', env).error ?? '', /malformed/);
});

test('env variables substitute in nested strings but never in keys, and errors carry the line', () => {
  const text = MINIMAL.replace('url: http://127.0.0.1:8080', 'url: "http://${UP_HOST:-127.0.0.1}:8080"').replace('[mesh.local]', '["${TD}", "${TD2}"]');
  assert.equal(parse(text, { TD: 'a.local', TD2: 'b.local' }).upstream.url, 'http://127.0.0.1:8080');
  assert.deepEqual(parse(text, { TD: 'a.local', TD2: 'b.local' }).tls.trustDomains, ['a.local', 'b.local']);
  const issues = issuesOf(text, { TD: 'a.local' });
  assert.deepEqual(issues, [{ path: 'tls.trustDomains[1]', message: 'environment variable TD2 is not set', line: 7, column: 27 }]);
  assert.equal(issuesOf(`\${K}: 1\n${MINIMAL}`, { K: 'listen' })[0]?.path, '["${K}"]');
});

test('admin.tokenFile is read (trimmed) and its path resolved; problems are reported without the token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-config-'));
  try {
    writeFileSync(join(dir, 'admin.token'), 'file-token-123\n');
    writeFileSync(join(dir, 'empty.token'), '  \n');
    const opts = { baseDir: dir, env: {} };
    const c = parseConfigText(`admin: { tokenFile: admin.token }\n${MINIMAL}`, opts);
    assert.equal(c.admin.token, 'file-token-123');
    assert.equal(c.admin.tokenFile, join(dir, 'admin.token'));
    const fail = (text: string): readonly ConfigIssue[] => {
      try {
        parseConfigText(text, opts);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        assert.doesNotMatch(err.message, /file-token-123|inline-secret/);
        return err.issues;
      }
      return assert.fail('accepted');
    };
    assert.deepEqual(fail(`admin: { tokenFile: missing.token }\n${MINIMAL}`).map((i) => i.message), ['cannot read token file (ENOENT)']);
    assert.deepEqual(fail(`admin: { tokenFile: empty.token }\n${MINIMAL}`).map((i) => i.message), ['token file is empty']);
    assert.deepEqual(fail(`admin: { token: inline-secret, tokenFile: admin.token }\n${MINIMAL}`).map((i) => i.message), ['set admin.token or admin.tokenFile, not both']);
    assert.deepEqual(fail(`admin: { token: "" }\n${MINIMAL}`).map((i) => i.message), ['admin token must not be empty']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('error messages never echo configured values', () => {
  const issues = issuesOf(`admin: { token: 12345678, port: "sekrit-port" }\n${MINIMAL}`);
  assert.deepEqual(issues.map((i) => i.path), ['admin.token', 'admin.port']);
  for (const i of issues) assert.doesNotMatch(i.message, /12345678|sekrit/);
});

test('loadConfig reads the file, resolves against its folder and names it in errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-config-'));
  try {
    const file = join(dir, 'meshgate.yaml');
    writeFileSync(file, CANONICAL);
    const c = await loadConfig(file, ENV);
    assert.equal(c.tls.cert, join(dir, 'certs/gateway.crt'));
    await assert.rejects(loadConfig(file, {}), (err: unknown) => err instanceof ConfigError && err.fileName === file && err.issues[0]?.path === 'admin.token');
    await assert.rejects(loadConfig('meshgate.yaml', ENV, { cwd: join(dir, 'nope') }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.issues, [{ path: '', message: 'cannot read config file (ENOENT)' }]);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the demo config policies/meshgate.yaml loads, with the admin token defaulted', async () => {
  const file = fileURLToPath(new URL('../../policies/meshgate.yaml', import.meta.url));
  const c = await loadConfig(file, {});
  assert.equal(c.admin.token, 'dev-admin-token');
  assert.equal(c.upstream.url, 'http://127.0.0.1:8080');
  assert.match(c.tls.cert, /\/\.dev\/certs\/gateway\.crt$/);
  assert.match(c.audit.dir, /\/\.dev\/audit$/);
  assert.match(c.authz.model, /\/policies\/model\.conf$/);
  assert.deepEqual(c.routes.map((r) => [r.match.pathPrefix, r.auth]), [['/healthz', 'none'], ['/public/', 'none'], ['/', 'mtls+jwt']]);
  assert.equal((await loadConfig(file, { MESHGATE_ADMIN_TOKEN: 'other' })).admin.token, 'other');
});

test('formatPath quotes keys that are not identifiers', () => {
  assert.equal(formatPath(['routes', 1, 'auth']), 'routes[1].auth');
  assert.equal(formatPath(['a.b', 'c d']), '["a.b"]["c d"]');
  assert.equal(formatPath([]), '');
});

test('audit.sink.nats file paths resolve against the config folder', () => {
  const text = `upstream: { url: "http://127.0.0.1:1" }
tls: { cert: c, key: k, clientCa: ca, trustDomains: [mesh.local] }
authz: { model: m, policy: p }
routes: [{ match: { pathPrefix: / }, auth: mtls }]
audit:
  dir: audit
  sink:
    nats:
      servers: [nats://127.0.0.1:4222]
      service: orders
      auth: { nkeySeedFile: secrets/user.nk }
      tls: { ca: tls/ca.crt, cert: tls/c.crt, key: tls/c.key }
      cursorFile: state/cursor.json
analyzer: { enabled: false }
`;
  const c = parseConfigText(text, { baseDir: '/etc/mg', env: {} });
  const n = c.audit.sink?.nats;
  assert.deepEqual(
    [(n?.auth as { nkeySeedFile: string }).nkeySeedFile, n?.tls?.ca, n?.tls?.cert, n?.tls?.key, n?.cursorFile],
    ['/etc/mg/secrets/user.nk', '/etc/mg/tls/ca.crt', '/etc/mg/tls/c.crt', '/etc/mg/tls/c.key', '/etc/mg/state/cursor.json'],
  );
});
