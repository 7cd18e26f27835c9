/**
 * Alerts through the admin API over a real alerts.jsonl and decisions.json:
 * list and detail (evidence events fetched by id from the audit log, the
 * quarantine decision), acknowledgement persisted atomically in acks.json,
 * and "false positive", which creates an exception with the DecisionStore
 * and deletes the decision the alert ordered.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { AlertsLog } from '../../src/analyzer/sinks/alerts-log.ts';
import { DecisionStore } from '../../src/decisions/decision-store.ts';
import { BEARER, startFixture, type Fixture } from './admin-api-helpers.ts';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

function get(f: Fixture, url: string): request.Test {
  return request(f.server).get(url).set('authorization', BEARER);
}
function post(f: Fixture, url: string, body?: object): request.Test {
  const r = request(f.server).post(url).set('authorization', BEARER);
  return body === undefined ? r : r.send(body);
}

describe('alerts API', () => {
  let f: Fixture;
  before(async () => { f = await startFixture(); });
  after(() => f.close());

  test('lists alerts newest first, one per id, with their review state', async () => {
    const res = await get(f, '/api/alerts');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.items.map((a: { id: string }) => a.id), [B, A]);
    assert.equal(res.body.items[1].ack, null);
    assert.equal(res.body.page.total, 2);
    const high = await get(f, '/api/alerts?severity=high');
    assert.deepEqual(high.body.items.map((a: { id: string }) => a.id), [A]);
  });

  test('a later emission of the same alert id replaces the earlier one (upsert), keeping its decision id', async () => {
    const log = await AlertsLog.open(f.analyzerDir);
    const a = f.alerts[0]!;
    const { decisionId: _d, ...rest } = a;
    log.emit({ ...rest, count: a.count + 1, revision: 2 });
    await log.close();
    const res = await get(f, `/api/alerts/${A}`);
    assert.equal(res.body.alert.count, a.count + 1);
    assert.equal(res.body.alert.decisionId, f.decision.id);
    assert.equal((await get(f, '/api/alerts')).body.items.length, 2);
  });

  test('detail carries the evidence events from the audit log, the missing ones, and the quarantine decision', async () => {
    const res = await get(f, `/api/alerts/${A}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.evidence.map((e: { id: string }) => e.id), f.alerts[0]!.evidence);
    assert.ok(res.body.evidence.every((e: { decision: string }) => e.decision === 'deny'));
    assert.deepEqual(res.body.missingEvidence, []);
    assert.equal(res.body.decision.id, f.decision.id);
    assert.equal(res.body.decision.scope, 'sub');
    const b = await get(f, `/api/alerts/${B}`);
    assert.equal(b.body.evidence.length, 1);
    assert.deepEqual(b.body.missingEvidence, [f.alerts[1]!.evidence[1]]);
    assert.equal(b.body.decision, null);
  });

  test('acknowledging persists in acks.json (atomic, 0600) and shows in the list and the detail', async () => {
    const res = await post(f, `/api/alerts/${B}/ack`, { note: 'scanner from the pentest' });
    assert.equal(res.status, 200);
    assert.equal(res.body.ack.by, 'token');
    assert.equal(res.body.ack.note, 'scanner from the pentest');
    const file = path.join(f.analyzerDir, 'acks.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(doc.v, 1);
    assert.equal(doc.acks[B].note, 'scanner from the pentest');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(f.analyzerDir).filter((n) => n.endsWith('.tmp') || n.endsWith('.lock')), []);
    const open = await get(f, '/api/alerts?state=open');
    assert.deepEqual(open.body.items.map((a: { id: string }) => a.id), [A]);
    const acked = await get(f, '/api/alerts?state=acked');
    assert.deepEqual(acked.body.items.map((a: { id: string }) => a.id), [B]);
  });

  test('concurrent acknowledgements of different alerts are all kept', async () => {
    const results = await Promise.all([post(f, `/api/alerts/${A}/ack`), post(f, `/api/alerts/${B}/ack`, { note: 'again' })]);
    assert.deepEqual(results.map((r) => r.status), [200, 200]);
    const doc = JSON.parse(fs.readFileSync(path.join(f.analyzerDir, 'acks.json'), 'utf8'));
    assert.deepEqual(Object.keys(doc.acks).sort(), [A, B]);
  });

  test('marking a false positive creates an exception for the rule and identity and deletes the alert\'s decision', async () => {
    const res = await post(f, `/api/alerts/${A}/false-positive`, { duration: '1d', note: 'load test account' });
    assert.equal(res.status, 200);
    assert.equal(res.body.exception.rule, 'privilege-probing');
    assert.equal(res.body.exception.scope, 'sub');
    assert.equal(res.body.exception.value, 'mallory');
    assert.equal(Date.parse(res.body.exception.expiresAt) - Date.parse(res.body.exception.createdAt), 86_400_000);
    assert.equal(res.body.removedDecision.id, f.decision.id);
    assert.deepEqual(res.body.ack.falsePositive, { exceptionId: res.body.exception.id, removedDecisionId: f.decision.id });
    // The decisions file itself, as the gateway and the analyzer read it.
    const store = await DecisionStore.open(f.analyzerDir, { clock: f.clock });
    const list = await store.list({ includeExpired: true });
    assert.equal(list.decisions.find((d) => d.id === f.decision.id), undefined);
    assert.equal(list.exceptions.length, 1);
    assert.equal(await store.exceptionFor('privilege-probing', 'sub', 'mallory'), list.exceptions[0]);
    const detail = await get(f, `/api/alerts/${A}`);
    assert.equal(detail.body.decision, null);
    assert.equal(detail.body.exceptions.length, 1);
    const decisions = await get(f, '/api/decisions');
    assert.equal(decisions.body.exceptions[0].id, res.body.exception.id);
  });

  const BAD: readonly [string, object, string][] = [
    ['ack', { note: 'x'.repeat(501) }, 'note'],
    ['ack', { note: 5 }, 'note'],
    ['ack', { colour: 'red' }, 'colour'],
    ['ack', { note: 'bell\u0007' }, 'note'],
    ['false-positive', { duration: '1y' }, 'duration'],
    ['false-positive', { duration: '91d' }, 'duration'],
    ['false-positive', { rule: '*' }, 'rule'],
  ];
  for (const [what, body, param] of BAD) {
    test(`POST ${what} with ${JSON.stringify(body).slice(0, 40)} is refused with 400 naming "${param}"`, async () => {
      const res = await post(f, `/api/alerts/${B}/${what}`, body);
      assert.equal(res.status, 400);
      assert.equal(res.body.reason, 'admin_invalid_parameter');
      assert.equal(res.body.param, param);
    });
  }

  test('a body that is not JSON is refused with 400 naming content-type; invalid JSON with 400 naming body', async () => {
    const form = await request(f.server).post(`/api/alerts/${B}/ack`).set('authorization', BEARER).type('form').send({ note: 'x' });
    assert.equal(form.status, 400);
    assert.equal(form.body.param, 'content-type');
    const broken = await request(f.server).post(`/api/alerts/${B}/ack`).set('authorization', BEARER).set('content-type', 'application/json').send('{"note":');
    assert.equal(broken.status, 400);
    assert.equal(broken.body.param, 'body');
  });

  test('an unknown alert is 404; a malformed alert id is 400; unknown list parameters are 400', async () => {
    assert.equal((await get(f, `/api/alerts/${'c'.repeat(32)}`)).status, 404);
    assert.equal((await post(f, `/api/alerts/${'c'.repeat(32)}/ack`)).body.reason, 'admin_not_found');
    const bad = await get(f, '/api/alerts/not-hex!');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.param, 'id');
    const unknown = await get(f, '/api/alerts?sort=desc');
    assert.equal(unknown.body.param, 'sort');
    const sev = await get(f, '/api/alerts?severity=urgent');
    assert.equal(sev.body.param, 'severity');
  });

  test('a corrupt acks.json is reported as a server error and is not overwritten', async () => {
    const file = path.join(f.analyzerDir, 'acks.json');
    fs.writeFileSync(file, '{"v":1,"acks":');
    const res = await post(f, `/api/alerts/${B}/ack`);
    assert.equal(res.status, 500);
    assert.equal(res.body.code, 'MG_ERR_GW_INTERNAL');
    assert.equal(fs.readFileSync(file, 'utf8'), '{"v":1,"acks":');
  });
});

describe('alerts API without an analyzer state yet', () => {
  let f: Fixture;
  before(async () => { f = await startFixture({ writeAlerts: false }); });
  after(() => f.close());

  test('no alerts.jsonl reads as no alerts, and decisions lists what decisions.json holds', async () => {
    const res = await get(f, '/api/alerts');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.items, []);
    const d = await get(f, '/api/decisions');
    assert.equal(d.status, 200);
    assert.equal(d.body.decisions.length, 1);
    assert.equal((await get(f, '/api/decisions?all=yes')).body.param, 'all');
  });
});
