/**
 * The closed loop (PRODUCT §1.8 ★): a quarantine decision — ordered by a
 * detection rule in the embedded analyzer, or by a person — makes the
 * gateway refuse the identity within a second, and the refusal is audited
 * with the decision id.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DecisionStore } from '../../src/decisions/decision-store.ts';
import { startHarness, type Harness } from '../helpers/gateway.ts';

async function until<T>(probe: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('manual quarantine decisions', () => {
  let h: Harness;
  let store: DecisionStore;
  before(async () => {
    h = await startHarness();
    store = await DecisionStore.open(join(h.config.audit.dir, 'analyzer'));
  });
  after(() => h.close());

  test('a token subject put in quarantine is refused with 403 quarantined within a second; others pass', async () => {
    const alice = await h.pki.mintToken({ sub: 'alice' });
    assert.equal((await h.request('/orders', { token: alice })).status, 200);
    const added = await store.add({ scope: 'sub', value: 'alice', durationMs: 60_000, reason: 'test' });
    assert.equal(added.status, 'created');
    const id = added.status === 'created' ? added.decision.id : '';
    const started = Date.now();
    const refused = await until(async () => { const r = await h.request('/orders', { token: alice }); return r.status === 403 ? r : undefined; });
    assert.ok(Date.now() - started < 1000, `enforced after ${Date.now() - started} ms`);
    assert.equal(refused.json().reason, 'quarantined');
    // Another principal on the same certificate is not affected: the decision names the subject only.
    const root = await h.pki.mintToken({ sub: 'root' });
    assert.equal((await h.request('/admin/x', { token: root })).status, 200);

    const events = await h.auditEvents();
    const denied = events.filter((e) => e.reason === 'quarantined');
    assert.ok(denied.length >= 1);
    assert.deepEqual(denied[0]?.quarantine, { decisionId: id, scope: 'sub', simulated: false });
    assert.equal(denied[0]?.status, 403);

    // Deleting the decision lifts the quarantine just as fast.
    await store.remove(id);
    await until(async () => ((await h.request('/orders', { token: alice })).status === 200 ? true : undefined));
  });

  test('a simulated decision only records "would block"', async () => {
    const bob = await h.pki.mintToken({ sub: 'bob' });
    writeFileSync(join(h.dir, 'policy.csv'), `${await import('node:fs').then((fs) => fs.readFileSync(join(h.dir, 'policy.csv'), 'utf8'))}g, bob, reader\n`);
    await until(async () => ((await h.request('/orders', { token: bob })).status === 200 ? true : undefined));
    const added = await store.add({ scope: 'sub', value: 'bob', durationMs: 60_000, simulated: true });
    const id = added.status === 'created' ? added.decision.id : '';
    await until(async () => {
      const r = await h.request('/orders', { token: bob });
      assert.equal(r.status, 200, 'simulated decisions are never enforced');
      const events = await h.auditEvents();
      return events.find((e) => e.principal?.sub === 'bob' && e.quarantine?.decisionId === id);
    }).then((e) => assert.deepEqual(e.quarantine, { decisionId: id, scope: 'sub', simulated: true }));
  });
});

describe('detection closes the loop', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      analyzer: true,
      patch: (cfg, dir) => {
        writeFileSync(join(dir, 'detections.yaml'), `version: 1
rules:
  - name: forged-token-algorithm
    title: Forged token (alg none or algorithm confusion)
    severity: critical
    description: an alg a correct client never sends
    kind: single
    groupBy: [spiffe, cert, ip]
    filter: { type: request, reason: jwt_alg_not_allowed }
    dedup: 1h
    remediation: { duration: 1h, simulated: false }
`);
        return { ...cfg, analyzer: { enabled: true, rules: join(dir, 'detections.yaml') } };
      },
    });
  });
  after(() => h.close());

  test('an alg:none token makes the analyzer quarantine the sending workload, and the gateway refuses it', async () => {
    const good = await h.pki.mintToken({ sub: 'alice' });
    assert.equal((await h.request('/orders', { token: good })).status, 200);
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ iss: 'https://issuer.mesh.local', sub: 'root', aud: 'orders', exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
    const forged = await h.request('/admin/x', { token: `${header}.${payload}.` });
    assert.equal(forged.status, 401);
    assert.equal(forged.json().reason, 'jwt_alg_not_allowed');
    // The workload (SPIFFE ID of the client certificate) is now quarantined, even with a valid token.
    const refused = await until(async () => { const r = await h.request('/orders', { token: good }); return r.status === 403 ? r : undefined; });
    assert.equal(refused.json().reason, 'quarantined');
    const events = await h.auditEvents();
    const q = events.find((e) => e.reason === 'quarantined');
    assert.equal(q?.quarantine?.scope, 'spiffe');
    assert.equal(q?.peer?.spiffeId, h.pki.client.spiffeIds[0]);
    // A different workload is unaffected.
    const other = h.pki.issueClient({ spiffeIds: [`spiffe://${h.pki.trustDomain}/ns/default/sa/other`] });
    assert.equal((await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice' }), cert: other })).status, 200);
  });
});
