/**
 * Path confusion over raw TLS: the bytes on the wire are exactly the targets
 * below (undici would normalize some of them). Every target is either decided
 * on its canonical path AND forwarded as that path, or refused with 400.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { rawJson, rawStatus, startHarness, type Harness } from '../helpers/gateway.ts';

let h: Harness;
let alice: string;
let root: string;

before(async () => {
  h = await startHarness();
  alice = await h.pki.mintToken({ sub: 'alice' });
  root = await h.pki.mintToken({ sub: 'root' });
});
after(() => h.close());

function get(target: string, token?: string): string {
  return `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${token ? `Authorization: Bearer ${token}\r\n` : ''}Connection: close\r\n\r\n`;
}

async function send(target: string, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = await h.raw(get(target, token));
  return { status: rawStatus(text), body: rawJson(text) };
}

interface Confusable { readonly target: string; readonly canonical: string }
interface Refused { readonly target: string; readonly reason: string }

const CONFUSABLE: readonly Confusable[] = [
  { target: '/public/../admin/x', canonical: '/admin/x' },
  { target: '//admin/x', canonical: '/admin/x' },
  { target: '/%61dmin/x', canonical: '/admin/x' },
  { target: '/public/%2e%2e/admin/x', canonical: '/admin/x' },
  { target: '/public/%2E%2E/%2E/admin//x', canonical: '/admin/x' },
  { target: '/public/./../../../admin/x', canonical: '/admin/x' },
];

const REFUSED: readonly Refused[] = [
  { target: '/admin%2fx', reason: 'path_encoded_slash' },
  { target: '/public/..%5cadmin', reason: 'path_encoded_backslash' },
  { target: '/public/..\\admin', reason: 'path_encoded_backslash' },
  { target: '/a%00b', reason: 'path_nul_byte' },
  { target: '/public/%zz', reason: 'path_malformed_encoding' },
  { target: '/public/..;/admin/x', reason: 'path_invalid_character' },
  { target: 'https://localhost/admin/x', reason: 'bad_request_target' },
  { target: '*', reason: 'bad_request_target' },
];

for (const c of CONFUSABLE) {
  test(`${c.target} is decided as ${c.canonical}: a reader's token gets 403 authz_no_matching_rule and nothing reaches the upstream`, async () => {
    h.upstreamRequests.length = 0;
    const r = await send(c.target, alice);
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'authz_no_matching_rule');
    assert.equal(h.upstreamRequests.length, 0);
  });

  test(`${c.target} is decided as ${c.canonical}: an admin's token gets 200 and the upstream receives exactly ${c.canonical}`, async () => {
    h.upstreamRequests.length = 0;
    const r = await send(c.target, root);
    assert.equal(r.status, 200);
    assert.deepEqual(h.upstreamRequests.map((u) => u.url), [c.canonical]);
    assert.equal(r.body.url, c.canonical);
  });

  test(`${c.target} without a token is routed as ${c.canonical} and gets 401 jwt_missing, not the anonymous /public/ route`, async () => {
    const r = await send(c.target);
    assert.equal(r.status, 401);
    assert.equal(r.body.reason, 'jwt_missing');
  });
}

for (const c of REFUSED) {
  test(`${JSON.stringify(c.target)} is refused with 400 ${c.reason} even with an admin's token`, async () => {
    h.upstreamRequests.length = 0;
    const r = await send(c.target, root);
    assert.equal(r.status, 400);
    assert.equal(r.body.reason, c.reason);
    assert.equal(h.upstreamRequests.length, 0);
  });
}

const QUERIES: readonly { target: string; token: 'alice' | 'root'; status: number; reason?: string; forwarded?: string }[] = [
  // The query is forwarded byte for byte, including escapes the path would refuse.
  { target: '/public/../admin/x?next=/orders&q=%2F..%00', token: 'root', status: 200, forwarded: '/admin/x?next=/orders&q=%2F..%00' },
  // A query that names an allowed path does not authorize a denied one...
  { target: '/admin/x?/orders', token: 'alice', status: 403, reason: 'authz_no_matching_rule' },
  { target: '/orders/../admin/x?x=/orders', token: 'alice', status: 403, reason: 'authz_no_matching_rule' },
  // ...and a query naming a denied path does not deny an allowed one.
  { target: '/orders?/admin/x', token: 'alice', status: 200, forwarded: '/orders?/admin/x' },
  { target: '/./orders?a=..%2f..', token: 'alice', status: 200, forwarded: '/orders?a=..%2f..' },
];

for (const c of QUERIES) {
  test(`query strings are forwarded verbatim but not authorized: ${c.target} with ${c.token}'s token → ${c.status}`, async () => {
    h.upstreamRequests.length = 0;
    const r = await send(c.target, c.token === 'root' ? root : alice);
    assert.equal(r.status, c.status);
    if (c.forwarded !== undefined) {
      assert.deepEqual(h.upstreamRequests.map((u) => u.url), [c.forwarded]);
    } else {
      assert.equal(r.body.reason, c.reason);
      assert.equal(h.upstreamRequests.length, 0);
    }
  });
}

test('the audit event records the canonical path that was decided and the raw path as received', async () => {
  await send('/public/%2e%2e/admin/x?z=1', root);
  await h.gateway.stop();
  const events = await h.auditEvents();
  const ev = events.filter((e) => e.rawPath === '/public/%2e%2e/admin/x').at(-1);
  assert.ok(ev, 'an event with the raw path exists');
  assert.equal(ev.path, '/admin/x');
  assert.equal(ev.route, 'default');
  assert.equal(ev.decision, 'allow');
  assert.equal(ev.reason, 'allowed');
  assert.equal(ev.status, 200);
  const refused = events.find((e) => e.reason === 'path_encoded_slash');
  assert.ok(refused, 'refused targets are audited too');
  assert.equal(refused.status, 400);
  assert.equal(refused.path, null);
});
