/**
 * Who may use the admin API and UI: every endpoint refuses anonymous
 * callers; the admin token works as a bearer token and through the sign-in
 * form (HttpOnly SameSite=Strict session cookie); POSTs on a session need
 * the CSRF header and a same-origin request; failed sign-ins are
 * rate-limited; an admin SPIFFE ID over mTLS is signed in automatically.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { ADMIN_SPIFFE, BEARER, PEER_HEADER, startFixture, TOKEN, type Fixture } from './admin-api-helpers.ts';

const ALERT = 'a'.repeat(32);
const EVENT = '01890a5d-ac96-774b-bcce-b302099a8057';

/** Every API endpoint (and an unknown one): none may answer an anonymous caller. */
const ENDPOINTS: readonly [string, string][] = [
  ['GET', '/api/session'], ['POST', '/api/session/sign-out'],
  ['GET', '/api/events'], ['GET', `/api/events/${EVENT}`],
  ['GET', '/api/stats/timeseries?bucket=1m&since=1h'], ['GET', '/api/stats/top?by=identity&decision=deny'],
  ['GET', '/api/alerts'], ['GET', `/api/alerts/${ALERT}`], ['POST', `/api/alerts/${ALERT}/ack`], ['POST', `/api/alerts/${ALERT}/false-positive`],
  ['GET', '/api/decisions'], ['GET', '/api/chain'], ['POST', '/api/chain/verify'],
  ['GET', '/api/no-such-endpoint'], ['GET', '/api'],
];

function setCookie(res: request.Response): string {
  const raw = res.headers['set-cookie'] as unknown as string[] | undefined;
  assert.ok(raw && raw.length === 1, 'one Set-Cookie');
  return raw[0] as string;
}

async function signIn(f: Fixture): Promise<{ cookie: string; csrf: string }> {
  const res = await request(f.server).post('/ui/sign-in').type('form').send({ token: TOKEN });
  assert.equal(res.status, 303);
  assert.equal(res.headers['location'], '/ui/');
  const cookie = setCookie(res).split(';')[0] as string;
  const s = await request(f.server).get('/api/session').set('cookie', cookie);
  assert.equal(s.status, 200);
  return { cookie, csrf: s.body.csrfToken as string };
}

describe('admin API authorization', () => {
  let f: Fixture;
  before(async () => { f = await startFixture(); });
  after(() => f.close());

  for (const [method, path] of ENDPOINTS) {
    test(`${method} ${path} without credentials is refused with 401 problem+json admin_unauthenticated`, async () => {
      const res = await request(f.server)[method === 'GET' ? 'get' : 'post'](path);
      assert.equal(res.status, 401);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.body.code, 'MG_ERR_ADMIN_UNAUTHENTICATED');
      assert.equal(res.body.reason, 'admin_unauthenticated');
      assert.equal(res.body.status, 401);
    });
  }

  test('a wrong bearer token is refused with 401 admin_bad_credentials and the token is not echoed', async () => {
    const res = await request(f.server).get('/api/events').set('authorization', 'Bearer not-the-token-xyz');
    assert.equal(res.status, 401);
    assert.equal(res.body.reason, 'admin_bad_credentials');
    assert.doesNotMatch(res.text, /not-the-token-xyz/);
    f.limiter.succeed('::ffff:127.0.0.1');
    f.limiter.succeed('127.0.0.1');
  });

  test('a malformed Authorization header (Basic) is refused with 401, not treated as anonymous', async () => {
    const res = await request(f.server).get('/api/events').set('authorization', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`);
    assert.equal(res.status, 401);
    assert.equal(res.body.reason, 'admin_bad_credentials');
  });

  test('the admin token as a bearer token is accepted on GET and on POST without a CSRF header (scripts)', async () => {
    const g = await request(f.server).get('/api/chain').set('authorization', BEARER);
    assert.equal(g.status, 200);
    const p = await request(f.server).post('/api/chain/verify').set('authorization', BEARER);
    assert.equal(p.status, 200);
    assert.equal(p.body.last.ok, true);
  });

  test('an unknown API path with valid credentials is 404 problem+json; a wrong method is 405 with Allow', async () => {
    const nf = await request(f.server).get('/api/nope').set('authorization', BEARER);
    assert.equal(nf.status, 404);
    assert.equal(nf.body.code, 'MG_ERR_ADMIN_NOT_FOUND');
    const m = await request(f.server).delete('/api/chain').set('authorization', BEARER);
    assert.equal(m.status, 405);
    assert.equal(m.body.reason, 'admin_method_not_allowed');
    assert.match(String(m.headers['allow']), /GET/);
  });

  test('the UI page redirects an anonymous browser to the sign-in page; static assets need no session', async () => {
    const page = await request(f.server).get('/ui/');
    assert.equal(page.status, 303);
    assert.equal(page.headers['location'], '/ui/sign-in');
    const signInPage = await request(f.server).get('/ui/sign-in');
    assert.equal(signInPage.status, 200);
    assert.match(signInPage.text, /<form method="post" action="\/ui\/sign-in"/);
    const css = await request(f.server).get('/ui/css/app.css');
    assert.equal(css.status, 200);
    const uplot = await request(f.server).get('/ui/vendor/uPlot.esm.js');
    assert.equal(uplot.status, 200);
    assert.match(String(uplot.headers['content-type']), /javascript/);
  });

  test('every response carries a strict CSP: no inline script or style, no framing, Trusted Types', async () => {
    const res = await request(f.server).get('/ui/sign-in');
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /require-trusted-types-for 'script'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['referrer-policy'], 'same-origin');
    assert.doesNotMatch(res.text, /<script(?![^>]*\bsrc=)/, 'no inline <script> in the page');
    assert.doesNotMatch(res.text, /\sstyle=|<style/, 'no inline style in the page');
  });
});

describe('sign-in, sessions and CSRF', () => {
  let f: Fixture;
  before(async () => { f = await startFixture(); });
  after(() => f.close());

  test('signing in with the token sets an HttpOnly SameSite=Strict session cookie (not Secure over plain HTTP) and opens the UI', async () => {
    const res = await request(f.server).post('/ui/sign-in').type('form').send({ token: TOKEN });
    assert.equal(res.status, 303);
    const c = setCookie(res);
    assert.match(c, /^mg_session=[A-Za-z0-9_-]{43};/);
    assert.match(c, /HttpOnly/);
    assert.match(c, /SameSite=Strict/);
    assert.doesNotMatch(c, /Secure/);
    assert.doesNotMatch(c, new RegExp(TOKEN), 'the cookie is a random id, not the token');
    const page = await request(f.server).get('/ui/').set('cookie', c.split(';')[0] as string);
    assert.equal(page.status, 200);
    assert.match(page.text, /<script type="module" src="\/ui\/js\/main\.js"><\/script>/);
  });

  test('a wrong token on the form redirects back with error=bad and sets no cookie', async () => {
    const res = await request(f.server).post('/ui/sign-in').type('form').send({ token: 'nope' });
    assert.equal(res.status, 303);
    assert.equal(res.headers['location'], '/ui/sign-in?error=bad');
    assert.equal(res.headers['set-cookie'], undefined);
    f.limiter.succeed('::ffff:127.0.0.1');
    f.limiter.succeed('127.0.0.1');
  });

  test('a sign-in form posted from another site is refused with 403 admin_csrf_rejected', async () => {
    const res = await request(f.server).post('/ui/sign-in').type('form').set('origin', 'https://evil.example').send({ token: TOKEN });
    assert.equal(res.status, 403);
    assert.equal(res.body.reason, 'admin_csrf_rejected');
    assert.equal(res.headers['set-cookie'], undefined);
  });

  test('a POST on a session without the CSRF header is refused with 403; with it, it succeeds', async () => {
    const s = await signIn(f);
    const bad = await request(f.server).post(`/api/alerts/${ALERT}/ack`).set('cookie', s.cookie);
    assert.equal(bad.status, 403);
    assert.equal(bad.body.code, 'MG_ERR_ADMIN_CSRF');
    const wrong = await request(f.server).post(`/api/alerts/${ALERT}/ack`).set('cookie', s.cookie).set('x-csrf-token', 'x'.repeat(43));
    assert.equal(wrong.status, 403);
    const ok = await request(f.server).post(`/api/alerts/${ALERT}/ack`).set('cookie', s.cookie).set('x-csrf-token', s.csrf);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.ack.by, 'token');
  });

  test('a POST with the right CSRF token but a cross-site Origin or Sec-Fetch-Site is refused', async () => {
    const s = await signIn(f);
    for (const [h, v] of [['origin', 'http://evil.example'], ['sec-fetch-site', 'cross-site'], ['sec-fetch-site', 'same-site']] as const) {
      const res = await request(f.server).post('/api/chain/verify').set('cookie', s.cookie).set('x-csrf-token', s.csrf).set(h, v);
      assert.equal(res.status, 403, `${h}: ${v}`);
      assert.equal(res.body.reason, 'admin_csrf_rejected');
    }
  });

  test('signing out ends the session server-side: the old cookie is refused afterwards', async () => {
    const s = await signIn(f);
    const out = await request(f.server).post('/api/session/sign-out').set('cookie', s.cookie).set('x-csrf-token', s.csrf);
    assert.equal(out.status, 204);
    assert.match(setCookie(out), /Max-Age=0/);
    const after = await request(f.server).get('/api/session').set('cookie', s.cookie);
    assert.equal(after.status, 401);
  });

  test('a session expires after 30 minutes without use and after its absolute lifetime', async () => {
    const s = await signIn(f);
    f.clock.advance(29 * 60_000);
    assert.equal((await request(f.server).get('/api/session').set('cookie', s.cookie)).status, 200);
    f.clock.advance(30 * 60_000 + 1);
    assert.equal((await request(f.server).get('/api/session').set('cookie', s.cookie)).status, 401);
    const t = await signIn(f);
    for (let i = 0; i < 17; i++) {
      f.clock.advance(29 * 60_000);
      await request(f.server).get('/api/session').set('cookie', t.cookie);
    }
    assert.equal((await request(f.server).get('/api/session').set('cookie', t.cookie)).status, 401, 'past 8 h even when used');
  });
});

describe('failed sign-in rate limit', () => {
  let f: Fixture;
  before(async () => { f = await startFixture(); });
  after(() => f.close());

  test('after 5 failures an address gets 429 with Retry-After, even for the right token, until the window passes', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await request(f.server).get('/api/events').set('authorization', `Bearer wrong-${i}`);
      assert.equal(r.status, 401);
    }
    const limited = await request(f.server).get('/api/events').set('authorization', BEARER);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.reason, 'admin_sign_in_rate_limited');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    const form = await request(f.server).post('/ui/sign-in').type('form').send({ token: TOKEN });
    assert.equal(form.headers['location'], '/ui/sign-in?error=rate');
    f.clock.advance(5 * 60_000 + 1);
    assert.equal((await request(f.server).get('/api/events').set('authorization', BEARER)).status, 200);
  });
});

describe('automatic sign-in for an admin SPIFFE ID', () => {
  let f: Fixture;
  before(async () => { f = await startFixture({ secure: true }); });
  after(() => f.close());

  test('a verified admin SPIFFE ID opens a session on GET: Secure __Host- cookie, via spiffe, with a CSRF token', async () => {
    const res = await request(f.server).get('/api/session').set(PEER_HEADER, ADMIN_SPIFFE);
    assert.equal(res.status, 200);
    assert.equal(res.body.via, 'spiffe');
    assert.equal(res.body.spiffeId, ADMIN_SPIFFE);
    assert.match(res.body.csrfToken, /^[A-Za-z0-9_-]{43}$/);
    const c = setCookie(res);
    assert.match(c, /^__Host-mg_session=/);
    assert.match(c, /; Secure/);
    assert.match(c, /Path=\//);
  });

  test('a SPIFFE ID not in admin.spiffeIds is not signed in', async () => {
    const res = await request(f.server).get('/api/session').set(PEER_HEADER, 'spiffe://mesh.local/ns/prod/sa/web');
    assert.equal(res.status, 401);
  });

  test('a certificate-opened session is refused on a connection without that certificate', async () => {
    const res = await request(f.server).get('/api/session').set(PEER_HEADER, ADMIN_SPIFFE);
    const cookie = setCookie(res).split(';')[0] as string;
    assert.equal((await request(f.server).get('/api/events').set('cookie', cookie).set(PEER_HEADER, ADMIN_SPIFFE)).status, 200);
    assert.equal((await request(f.server).get('/api/events').set('cookie', cookie)).status, 401);
  });

  test('a certificate alone never authorizes a POST: a state change needs the session and its CSRF token', async () => {
    const res = await request(f.server).post('/api/chain/verify').set(PEER_HEADER, ADMIN_SPIFFE);
    assert.equal(res.status, 401);
  });
});

describe('no credentials configured', () => {
  let f: Fixture;
  before(async () => { f = await startFixture({ deps: { token: undefined, spiffeIds: [] } }); });
  after(() => f.close());

  test('with no admin token configured every token is refused (fail closed), even an empty one', async () => {
    assert.equal((await request(f.server).get('/api/events').set('authorization', 'Bearer undefined')).status, 401);
    const form = await request(f.server).post('/ui/sign-in').type('form').send({ token: '' });
    assert.equal(form.headers['location'], '/ui/sign-in?error=bad');
  });
});
