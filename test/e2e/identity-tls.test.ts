/**
 * End to end: mTLS termination and SPIFFE peer identity (PRODUCT §1.1) on a
 * running gateway. Every case asserts the outcome on the wire (refused
 * handshake or HTTP status + problem reason) AND the audit event's reason;
 * where a certificate was presented, the event must carry its fingerprint.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { connect } from 'node:tls';
import type { AuditRecord } from '../../src/audit/event.ts';
import type { IssuedCert } from '../../src/pki/issue-cert.ts';
import { startHarness, rawStatus, rawJson, type Harness } from '../helpers/gateway.ts';
import type { AdversarialCerts } from '../helpers/pki.ts';

/** Lowercase hex SHA-256 of the DER certificate, as meshgate records it. */
function fingerprint(cert: IssuedCert): string {
  return createHash('sha256').update(new X509Certificate(cert.certPem).raw).digest('hex');
}

interface Attempt {
  /** Raw HTTP response text; '' when the gateway closed the connection without answering. */
  readonly http: string;
  /** The client's local port: the `source.port` meshgate must audit. */
  readonly localPort: number;
}

/** One fresh TLS connection presenting `cert` (null: none) that sends one request. */
function attempt(h: Harness, cert: IssuedCert | null, path = '/svc/x'): Promise<Attempt> {
  return new Promise((resolve) => {
    const s = connect({
      host: '127.0.0.1', port: h.gateway.address.port, ca: h.pki.ca.certPem, servername: 'localhost',
      ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
    });
    let localPort = 0;
    let http = '';
    s.once('connect', () => { localPort = s.localPort ?? 0; });
    s.on('secureConnect', () => s.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`));
    s.on('data', (c: Buffer) => { http += c.toString('latin1'); });
    // A refused handshake surfaces as an alert or a reset on the client: both mean "no HTTP".
    s.on('error', () => { /* reported through the empty response */ });
    s.on('close', () => resolve({ http, localPort }));
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

/** Polls the audit log (flushed every fsyncInterval) for the first event matching `match`. */
async function waitForEvent(h: Harness, what: string, match: (e: AuditRecord) => boolean, timeoutMs = 2000): Promise<AuditRecord> {
  const deadline = Date.now() + timeoutMs;
  let seen: AuditRecord[] = [];
  while (Date.now() < deadline) {
    seen = await h.auditEvents();
    const hit = seen.find(match);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  const summary = seen.map((e) => ({ type: e.type, reason: e.reason, source: e.source, peer: e.peer, tls: e.tls }));
  return assert.fail(`no audit event for ${what}; events so far: ${JSON.stringify(summary)}`);
}

/** The value of a Prometheus sample whose labels include `labels`, or undefined. */
function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const got = Object.fromEntries([...line.slice(name.length, line.lastIndexOf('}')).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function adminText(h: Harness, path: string): Promise<string> {
  const r = await fetch(h.adminUrl(path));
  return r.text();
}

interface ReadyzComponent { name: string; reloads: number; reloadFailures: number; lastError?: string; state: string; version?: string }
async function tlsStatus(h: Harness): Promise<ReadyzComponent> {
  const body = JSON.parse(await adminText(h, '/readyz')) as { components: ReadyzComponent[] };
  const c = body.components.find((x) => x.name === 'tls');
  assert.ok(c, 'readyz lists the tls component');
  return c;
}

/** Asserts the connection got no HTTP answer and the handshake was audited with `reason`. */
async function assertRefusedAtHandshake(h: Harness, cert: IssuedCert | null, reason: string): Promise<void> {
  const a = await attempt(h, cert);
  assert.equal(rawStatus(a.http), 0, `expected a refused handshake, got ${JSON.stringify(a.http.slice(0, 80))}`);
  assert.notEqual(a.localPort, 0, 'the TCP connection was made');
  const e = await waitForEvent(h, `tls_handshake from port ${a.localPort}`, (x) => x.type === 'tls_handshake' && x.source.port === a.localPort);
  assert.equal(e.reason, reason);
  assert.equal(e.decision, 'deny');
  assert.equal(e.status, 0);
  assert.equal(e.source.ip, '127.0.0.1');
  if (cert) assert.equal(e.peer?.fingerprint, fingerprint(cert), 'the presented certificate is identified by its fingerprint');
  else assert.equal(e.peer, null);
}

describe('strict mode: the TLS handshake refuses unverifiable client certificates', () => {
  let h: Harness;
  let adv: AdversarialCerts;
  before(async () => { h = await startHarness(); adv = h.pki.adversarial(); });
  after(() => h.close());

  const cases: { name: string; cert: () => IssuedCert | null; reason: string }[] = [
    { name: 'no client certificate is refused with peer_cert_missing', cert: () => null, reason: 'peer_cert_missing' },
    { name: 'a certificate from another CA is refused with peer_cert_untrusted', cert: () => adv.otherCa, reason: 'peer_cert_untrusted' },
    { name: 'an expired certificate is refused with peer_cert_expired', cert: () => adv.expired, reason: 'peer_cert_expired' },
    { name: 'a not-yet-valid certificate is refused with peer_cert_expired', cert: () => adv.notYetValid, reason: 'peer_cert_expired' },
    { name: 'a certificate without clientAuth extended key usage is refused with peer_cert_untrusted', cert: () => adv.serverAuthOnly, reason: 'peer_cert_untrusted' },
  ];
  for (const c of cases) test(c.name, () => assertRefusedAtHandshake(h, c.cert(), c.reason));

  test('a certificate revoked while the gateway runs is refused with peer_cert_revoked after the CRL hot reload', async () => {
    const victim = h.pki.issueClient({ name: 'to-revoke', spiffeIds: [h.pki.client.spiffeIds[0]!] });
    const ok = await attempt(h, victim);
    assert.equal(rawStatus(ok.http), 200, 'the certificate works before it is revoked');
    const before = (await tlsStatus(h)).reloads;
    h.pki.revoke(victim);
    const deadline = Date.now() + 5000;
    while ((await tlsStatus(h)).reloads === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok((await tlsStatus(h)).reloads > before, 'the CRL change was picked up');
    await assertRefusedAtHandshake(h, victim, 'peer_cert_revoked');
    assert.equal(rawStatus((await attempt(h, h.pki.client)).http), 200, 'other certificates of the CA still work');
  });

  test('refused handshakes are counted in meshgate_tls_handshake_failures_total by reason', async () => {
    const text = await adminText(h, '/metrics');
    for (const reason of ['peer_cert_missing', 'peer_cert_untrusted', 'peer_cert_expired', 'peer_cert_revoked']) {
      const v = metricValue(text, 'meshgate_tls_handshake_failures_total', { reason });
      assert.ok(v !== undefined && v >= 1, `meshgate_tls_handshake_failures_total{reason="${reason}"} is ${v}`);
    }
  });
});

describe('strict mode: verified certificates that break the X509-SVID rules get 403', () => {
  let h: Harness;
  let adv: AdversarialCerts;
  before(async () => { h = await startHarness(); adv = h.pki.adversarial(); });
  after(() => h.close());

  const cases: { name: string; cert: () => IssuedCert; reason: string }[] = [
    { name: 'a SPIFFE ID from a trust domain that is not allowed gets 403 trust_domain_not_allowed', cert: () => adv.otherTrustDomain, reason: 'trust_domain_not_allowed' },
    { name: 'a certificate with two URI SANs gets 403 spiffe_multiple_uri_sans', cert: () => adv.twoUris, reason: 'spiffe_multiple_uri_sans' },
    // OpenSSL accepts a cA=true certificate as a TLS client certificate; the
    // gateway's own leaf check (X509-SVID §4.1) is what refuses it.
    { name: 'a CA certificate used as a client certificate gets 403 spiffe_not_leaf', cert: () => adv.caAsClient, reason: 'spiffe_not_leaf' },
    { name: 'a certificate without a URI SAN gets 403 spiffe_id_missing', cert: () => adv.noUri, reason: 'spiffe_id_missing' },
    { name: 'a URI SAN that is not a valid SPIFFE ID gets 403 spiffe_id_invalid', cert: () => adv.invalidSpiffeId, reason: 'spiffe_id_invalid' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const r = await h.request('/svc/x', { cert: c.cert() });
      assert.equal(r.status, 403);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const body = r.json<{ reason: string; requestId: string }>();
      assert.equal(body.reason, c.reason);
      const e = await waitForEvent(h, `request ${body.requestId}`, (x) => x.requestId === body.requestId);
      assert.equal(e.type, 'request');
      assert.equal(e.reason, c.reason);
      assert.equal(e.status, 403);
      assert.equal(e.decision, 'deny');
      assert.equal(e.peer?.fingerprint, fingerprint(c.cert()));
      assert.equal(e.peer?.spiffeId, '', 'a refused certificate yields no identity');
      assert.equal(h.upstreamRequests.length, 0, 'nothing reached the upstream');
    });
  }

  test('a valid workload certificate is identified by its SPIFFE ID and fingerprint', async () => {
    const r = await h.request('/svc/x');
    assert.equal(r.status, 200);
    const e = await waitForEvent(h, 'the allowed /svc/x request', (x) => x.type === 'request' && x.path === '/svc/x' && x.status === 200);
    assert.equal(e.reason, 'allowed');
    assert.deepEqual(e.peer, { spiffeId: h.pki.client.spiffeIds[0], fingerprint: fingerprint(h.pki.client) });
  });
});

describe('connections that never start a TLS handshake', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(() => h.close());

  // TCP health checks and port scans connect and leave; an audit event (and a
  // handshake-failure count) for each would flood the log with noise.
  test('a TCP connection closed before any TLS handshake is neither audited nor counted as a refused handshake', async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => {
        const s = tcpConnect(h.gateway.address.port, '127.0.0.1');
        s.on('connect', () => s.end());
        s.on('error', () => { /* the gateway may reset: irrelevant here */ });
        s.on('close', () => resolve());
      });
    }
    // A request after the probes: once its event is in the log, any probe event would be too.
    const r = await h.request('/svc/x');
    assert.equal(r.status, 200);
    await waitForEvent(h, 'the /svc/x request', (x) => x.type === 'request' && x.path === '/svc/x');
    const handshakes = (await h.auditEvents()).filter((x) => x.type === 'tls_handshake');
    assert.deepEqual(handshakes.map((x) => ({ reason: x.reason, tls: x.tls })), []);
    const v = metricValue(await adminText(h, '/metrics'), 'meshgate_tls_handshake_failures_total', {});
    assert.equal(v, undefined, 'no handshake failure was counted');
  });
});

describe('permissive mode: a client certificate is optional, but a bad one is still refused', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ tlsMode: 'permissive' }); });
  after(() => h.close());

  test('no certificate on an auth:none route is served as anonymous (200)', async () => {
    const r = await h.request('/healthz', { cert: null });
    assert.equal(r.status, 200);
    const e = await waitForEvent(h, 'the anonymous /healthz request', (x) => x.type === 'request' && x.path === '/healthz');
    assert.equal(e.reason, 'allowed');
    assert.equal(e.peer, null);
    assert.equal(e.rule, 'policy.csv:1: p, anonymous, /healthz, GET, allow', 'the matched policy line, with file and line');
  });

  test('no certificate on an mtls route gets 401 peer_cert_required', async () => {
    const r = await h.request('/svc/x', { cert: null });
    assert.equal(r.status, 401);
    const body = r.json<{ reason: string; requestId: string }>();
    assert.equal(body.reason, 'peer_cert_required');
    const e = await waitForEvent(h, `request ${body.requestId}`, (x) => x.requestId === body.requestId);
    assert.equal(e.reason, 'peer_cert_required');
    assert.equal(e.status, 401);
  });

  test('a certificate from another CA is refused even in permissive mode (peer_cert_untrusted)', async () => {
    const bad = h.pki.adversarial().otherCa;
    const a = await attempt(h, bad, '/healthz');
    assert.equal(rawStatus(a.http), 0, `expected the connection to be refused, got ${JSON.stringify(a.http.slice(0, 80))}`);
    const e = await waitForEvent(h, `tls_handshake from port ${a.localPort}`, (x) => x.type === 'tls_handshake' && x.source.port === a.localPort);
    assert.equal(e.reason, 'peer_cert_untrusted');
    assert.equal(e.peer?.fingerprint, fingerprint(bad));
  });

  test('an expired certificate is refused even in permissive mode (peer_cert_expired)', async () => {
    const bad = h.pki.adversarial().expired;
    const a = await attempt(h, bad, '/healthz');
    assert.equal(rawStatus(a.http), 0);
    const e = await waitForEvent(h, `tls_handshake from port ${a.localPort}`, (x) => x.type === 'tls_handshake' && x.source.port === a.localPort);
    assert.equal(e.reason, 'peer_cert_expired');
    assert.equal(e.peer?.fingerprint, fingerprint(bad));
  });

  test('a valid certificate in permissive mode is still identified and authorized by its SPIFFE ID', async () => {
    const a = await attempt(h, h.pki.client, '/svc/x');
    assert.equal(rawStatus(a.http), 200);
    assert.equal(rawJson<{ ok: boolean }>(a.http).ok, true);
  });
});
