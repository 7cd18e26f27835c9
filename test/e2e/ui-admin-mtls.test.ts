/**
 * The admin listener in TLS mode (`admin.tls: true`): HTTPS with the
 * gateway's own certificate, client certificates asked for but optional. A
 * verified certificate whose SPIFFE ID is in `admin.spiffeIds` signs in to
 * the UI and API automatically; any other certificate (another workload, an
 * expired one, one from an untrusted CA) does not; the admin token still
 * works without a certificate; /healthz keeps answering.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import type { IssuedCert } from '../../src/pki/issue-cert.ts';
import { startHarness, type Harness } from '../helpers/gateway.ts';

const ADMIN = 'spiffe://mesh.local/ns/ops/sa/admin';

describe('admin listener over mTLS', () => {
  let h: Harness;
  let admin: IssuedCert;
  const agents: Agent[] = [];
  const agent = (cert?: IssuedCert): Agent => {
    const a = new Agent({ connect: { ca: h.pki.ca.certPem, servername: 'localhost', ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) } });
    agents.push(a);
    return a;
  };
  const get = async (path: string, opts: { cert?: IssuedCert; headers?: Record<string, string> } = {}) => {
    const r = await request(`https://localhost:${h.gateway.adminAddress.port}${path}`, { dispatcher: agent(opts.cert), headers: opts.headers ?? {} });
    const text = await r.body.text();
    return { status: r.statusCode, headers: r.headers, body: text ? JSON.parse(text) as Record<string, unknown> : {} };
  };

  before(async () => {
    h = await startHarness({ patch: (cfg) => ({ ...cfg, admin: { ...cfg.admin, tls: true, spiffeIds: [ADMIN] } }) });
    admin = h.pki.issueClient({ name: 'admin', spiffeIds: [ADMIN] });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await h.close();
  });

  test('/healthz is served over HTTPS without a client certificate', async () => {
    const r = await get('/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ok' });
  });

  test('an admin SPIFFE ID certificate is signed in automatically: a Secure __Host- session cookie, via spiffe', async () => {
    const r = await get('/api/session', { cert: admin });
    assert.equal(r.status, 200);
    assert.equal(r.body['via'], 'spiffe');
    assert.equal(r.body['spiffeId'], ADMIN);
    const cookie = String(r.headers['set-cookie']);
    assert.match(cookie, /^__Host-mg_session=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Strict; Secure/);
    assert.match(String(r.headers['strict-transport-security']), /max-age=/);
    // The session works with the same certificate and not without it.
    const sid = cookie.split(';')[0] as string;
    assert.equal((await get('/api/events', { cert: admin, headers: { cookie: sid } })).status, 200);
    assert.equal((await get('/api/events', { headers: { cookie: sid } })).status, 401);
  });

  test('the UI page opens for the admin certificate and redirects other browsers to sign-in', async () => {
    assert.equal((await request(`https://localhost:${h.gateway.adminAddress.port}/ui/`, { dispatcher: agent(admin) })).statusCode, 200);
    const other = await request(`https://localhost:${h.gateway.adminAddress.port}/ui/`, { dispatcher: agent(h.pki.client) });
    assert.equal(other.statusCode, 303);
    assert.equal(other.headers['location'], '/ui/sign-in');
  });

  test('a verified certificate of another workload is not signed in', async () => {
    const r = await get('/api/session', { cert: h.pki.client });
    assert.equal(r.status, 401);
    assert.equal(r.body['reason'], 'admin_unauthenticated');
  });

  test('an expired certificate or one from an untrusted CA carrying the admin SPIFFE ID is not signed in', async () => {
    const day = 86_400_000;
    const expired = h.pki.issueClient({ name: 'admin-expired', spiffeIds: [ADMIN], notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) });
    assert.equal((await get('/api/session', { cert: expired })).status, 401);
    const forged = h.pki.issueClient({ name: 'admin-forged', spiffeIds: [ADMIN], ca: h.pki.otherCa() });
    assert.equal((await get('/api/session', { cert: forged })).status, 401);
  });

  test('the admin token still works as a bearer token without a certificate', async () => {
    const r = await get('/api/chain', { headers: { authorization: 'Bearer test-admin-token' } });
    assert.equal(r.status, 200);
  });
});
