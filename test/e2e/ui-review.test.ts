/**
 * The audit review web UI in a real browser (Debian chromium, headless),
 * against a real gateway: real requests through mTLS make the audit log,
 * the analyzer's AlertsLog and DecisionStore hold an alert with a
 * quarantine. A reviewer signs in, reads the charts, filters events, opens
 * one, acknowledges an alert, marks another a false positive, and verifies
 * the chain — with the page's CSP never violated. Screenshots go to
 * test-artifacts/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { request } from 'undici';
import { AlertsLog } from '../../src/analyzer/sinks/alerts-log.ts';
import type { Alert } from '../../src/analyzer/types.ts';
import type { AuditRecord } from '../../src/audit/event.ts';
import { DecisionStore } from '../../src/decisions/decision-store.ts';
import { browserSkip, launchBrowser, type PageReports, type TestBrowser } from '../helpers/browser.ts';
import { startHarness, type Harness } from '../helpers/gateway.ts';

const TOKEN = 'test-admin-token';
const PROBE = 'c0ffee'.padEnd(32, '0');
const MISSING = 'bad70ce0'.padEnd(32, '0');

async function adminJson<T>(h: Harness, path: string): Promise<T> {
  const r = await request(h.adminUrl(path), { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.statusCode, 200, path);
  return (await r.body.json()) as T;
}

async function makeTraffic(h: Harness): Promise<AuditRecord[]> {
  const alice = await h.pki.mintToken({ sub: 'alice' });
  const mallory = await h.pki.mintToken({ sub: 'mallory' });
  const expect = async (path: string, status: number, token?: string): Promise<void> => {
    assert.equal((await h.request(path, token ? { token } : {})).status, status, path);
  };
  await expect('/orders', 200, alice);
  await expect('/orders/7', 200, alice);
  await expect('/orders/secret', 403, alice);
  await expect('/orders', 401);
  for (const p of ['/admin/users', '/admin/keys', '/admin/config', '/admin/audit']) await expect(p, 403, mallory);
  await expect('/public/../admin/users', 403, mallory);
  // A client without a certificate: refused in the handshake (strict mode), audited as tls_handshake.
  await h.request('/orders', { cert: null }).catch(() => undefined);
  const events = await h.auditEvents();
  assert.ok(events.length >= 10, `${events.length} audit events`);
  return events;
}

async function writeAlerts(h: Harness, events: AuditRecord[]): Promise<{ probe: Alert; missing: Alert; decisionId: string }> {
  const dir = h.gateway.config.analyzer.dir as string;
  mkdirSync(dir, { recursive: true });
  const probes = events.filter((e) => e.principal?.sub === 'mallory');
  const store = await DecisionStore.open(dir);
  const added = await store.add({ rule: 'privilege-probing', alertId: PROBE, scope: 'sub', value: 'mallory', durationMs: 3_600_000, simulated: false });
  assert.equal(added.status, 'created');
  const decisionId = added.status === 'created' ? added.decision.id : '';
  const noToken = events.filter((e) => e.reason === 'jwt_missing');
  const probe: Alert = {
    v: 1, id: PROBE, rule: 'privilege-probing', severity: 'high', title: 'Privilege probing: many denied routes', scope: 'sub', value: 'mallory',
    firstSeen: probes[0]!.time, lastSeen: probes.at(-1)!.time, count: probes.length, evidence: probes.map((e) => e.id), decisionId,
    summary: `${probes.length} denied requests to ${probes.length} routes in 1m`, revision: 1,
  };
  const missing: Alert = {
    v: 1, id: MISSING, rule: 'missing-token', severity: 'medium', title: 'Requests without a token', scope: 'ip', value: noToken[0]!.source.ip,
    firstSeen: noToken[0]!.time, lastSeen: noToken[0]!.time, count: noToken.length, evidence: noToken.map((e) => e.id),
    summary: `${noToken.length} request(s) without a token`, revision: 1,
  };
  const log = await AlertsLog.open(dir);
  log.emit(probe);
  log.emit(missing);
  await log.close();
  return { probe, missing, decisionId };
}

/** Waits until `loc` matches exactly `n` elements (the page re-renders after each navigation). */
async function countIs(loc: Locator, n: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await loc.count()) !== n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} elements, found ${await loc.count()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const skip = browserSkip();

describe('audit review UI in chromium', { skip }, () => {
  let h: Harness;
  let b: TestBrowser;
  let page: Page;
  let reports: PageReports;
  let events: AuditRecord[];
  let alerts: { probe: Alert; missing: Alert; decisionId: string };

  before(async () => {
    h = await startHarness();
    events = await makeTraffic(h);
    alerts = await writeAlerts(h, events);
    b = await launchBrowser();
    page = await b.context.newPage();
    reports = b.watch(page);
  });
  after(async () => {
    await b?.close();
    await h?.close();
  });

  test('an anonymous visit lands on the sign-in page; a wrong token is refused, the admin token signs in', async () => {
    await page.goto(h.adminUrl('/ui/'));
    assert.match(page.url(), /\/ui\/sign-in$/);
    await page.getByLabel('Admin token').fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/error=bad/);
    assert.equal(await page.getByRole('alert').textContent(), 'That admin token is not valid.');
    await b.screenshot(page, 'ui-sign-in-error');
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByLabel('Admin token').press('Enter');
    await page.waitForURL(/\/ui\/$/);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    assert.match(await page.locator('#who').textContent() ?? '', /admin token/);
  });

  test('the overview charts render the API time series: uPlot canvases with as many points as the API has buckets', async () => {
    const api = await adminJson<{ t: number[]; requests: number[]; denials: number[] }>(h, '/api/stats/timeseries?bucket=1m&since=1h');
    const sum = (xs: number[]): number => xs.reduce((a, c) => a + c, 0);
    assert.ok(sum(api.requests) >= events.length - 1, 'the API counts the real traffic');
    for (const id of ['chart-traffic', 'chart-alerts']) {
      const fig = page.locator(`#${id}[data-points]`);
      await fig.waitFor();
      assert.equal(await fig.getAttribute('data-points'), String(api.t.length), `${id} points`);
      assert.equal(await page.locator(`#${id} canvas`).count(), 1, `${id} has a uPlot canvas`);
      const box = await page.locator(`#${id} canvas`).boundingBox();
      assert.ok(box && box.width > 200 && box.height > 100, `${id} canvas is drawn at a visible size`);
    }
    assert.equal(await page.locator('#chart-traffic').getAttribute('data-series'), 'requests,denials');
    assert.match(await page.locator('#chart-traffic-summary').textContent() ?? '', new RegExp(`^${sum(api.requests)} requests, ${sum(api.denials)} denials`));
    assert.match(await page.locator('#chart-alerts-summary').textContent() ?? '', /^2 alerts/);
    // Top denied identities: mallory first (5 denials), as a link to her events.
    const top = page.getByRole('table', { name: 'Identities with the most denied requests' });
    assert.equal(await top.locator('tbody tr').first().locator('td').first().textContent(), 'mallory');
    await b.screenshot(page, 'ui-overview');
  });

  test('events can be filtered like `audit query`, and a row opens the event with its decision explanation', async () => {
    await page.getByRole('link', { name: 'Events', exact: true }).click();
    await page.getByRole('heading', { name: 'Audit events' }).waitFor();
    await page.getByLabel('Identity').fill('mallory');
    await page.getByLabel('Decision').selectOption('deny');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/identity=mallory/);
    const rows = page.locator('table.events tbody tr');
    await countIs(rows, 5);
    assert.deepEqual(await rows.locator('td:nth-child(2)').allTextContents(), Array(5).fill('deny'));
    await b.screenshot(page, 'ui-events-filtered');

    // A bad filter value is shown on the field, named by the API.
    await page.getByLabel('Status').fill('6xx');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('#filter-error').waitFor();
    assert.equal(await page.getByLabel('Status').getAttribute('aria-invalid'), 'true');

    // Keyboard: the first row's link opens the event.
    await page.getByLabel('Status').fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await countIs(rows, 5);
    const first = rows.first().locator('a');
    const id = await rows.first().getAttribute('data-event-id');
    await first.focus();
    await page.keyboard.press('Enter');
    await page.locator('#recorded-stages').waitFor();
    assert.match(page.url(), new RegExp(`#/events/${id}$`));
    const verdicts: string[] = [];
    for (const tr of await page.locator('#recorded-stages tbody tr').all()) verdicts.push(`${await tr.getAttribute('data-stage')}:${await tr.getAttribute('data-verdict')}`);
    assert.deepEqual(verdicts, ['tls:ok', 'normalize:ok', 'route:ok', 'authn:ok', 'authz:fail', 'quarantine:not-reached', 'upstream:not-reached']);
    assert.match(await page.locator('#recorded-stages tbody tr[data-stage="authz"] td').last().textContent() ?? '', /authz_no_matching_rule/);
    // Re-evaluated with the live policy (still denied) and linked to the alert citing it.
    await page.locator('#main').getByText('The current policy decides the same: deny').waitFor();
    assert.equal(await page.locator('#quarantine').textContent(), 'No quarantine decision applied.');
    await page.getByRole('link', { name: /privilege-probing/ }).waitFor();
    await b.screenshot(page, 'ui-event-detail');
  });

  test('an alert shows its evidence events and quarantine; acknowledging it persists in acks.json', async () => {
    await page.getByRole('link', { name: 'Alerts', exact: true }).click();
    await page.locator('#alerts tbody tr').first().waitFor();
    assert.equal(await page.locator('#alerts tbody tr').count(), 2);
    await page.getByRole('link', { name: 'missing-token' }).click();
    await page.getByRole('heading', { name: 'Requests without a token' }).waitFor();
    assert.equal(await page.locator('table.events tbody tr').count(), alerts.missing.evidence.length);
    assert.match(await page.locator('#decision').textContent() ?? '', /ordered no quarantine/);
    await page.getByLabel('Note (optional)').fill('health checker without a token');
    await page.getByRole('button', { name: 'Acknowledge' }).click();
    await page.locator('#main').getByText('Alert acknowledged.').waitFor();
    assert.match(await page.locator('#review').textContent() ?? '', /acknowledged by token/);
    const acks = JSON.parse(readFileSync(join(h.gateway.config.analyzer.dir as string, 'acks.json'), 'utf8'));
    assert.equal(acks.acks[MISSING].note, 'health checker without a token');
    await b.screenshot(page, 'ui-alert-acknowledged');
  });

  test('marking an alert a false positive creates an exception and lifts its quarantine', async () => {
    await page.goto(h.adminUrl(`/ui/#/alerts/${PROBE}`));
    await page.getByRole('heading', { name: /Privilege probing/ }).waitFor();
    assert.equal(await page.locator('table.events tbody tr').count(), alerts.probe.evidence.length);
    assert.match(await page.locator('#decision').textContent() ?? '', new RegExp(alerts.decisionId));
    await page.getByLabel('Exception lasts').selectOption('1d');
    await page.getByRole('button', { name: 'Mark false positive' }).click();
    await page.locator('#main').getByText('Marked false positive: exception created.').waitFor();
    assert.match(await page.locator('#decision').textContent() ?? '', /ordered no quarantine/);
    const store = await DecisionStore.open(h.gateway.config.analyzer.dir as string);
    const list = await store.list();
    assert.equal(list.decisions.find((d) => d.id === alerts.decisionId), undefined);
    assert.deepEqual(list.exceptions.map((x) => `${x.rule} ${x.scope} ${x.value}`), ['privilege-probing sub mallory']);
    assert.equal(await page.getByRole('button', { name: 'Mark false positive' }).isDisabled(), true);
  });

  test('the audit chain page verifies the log on demand and shows the result', async () => {
    await page.getByRole('link', { name: 'Audit chain' }).click();
    await page.locator('#main').getByText('Not verified since the gateway started.').waitFor();
    await page.getByRole('button', { name: 'Verify now' }).click();
    await page.locator('#chain-result[data-ok="true"]').waitFor();
    const api = await adminJson<{ last: { records: number } }>(h, '/api/chain');
    assert.ok(api.last.records >= events.length);
    assert.match(await page.locator('#chain-result').textContent() ?? '', /intact/);
    await b.screenshot(page, 'ui-chain');
  });

  test('no CSP or Trusted Types violation and no script error was reported by the page', () => {
    assert.deepEqual(reports.cspViolations, []);
    assert.deepEqual(reports.pageErrors, []);
    // The only console errors allowed are the browser's own logs of the deliberate 400 (bad filter).
    assert.deepEqual(reports.consoleErrors.filter((m) => !/status of 400/.test(m)), []);
  });

  test('signing out ends the session: the UI sends the browser back to sign-in', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/ui\/sign-in$/);
    await page.goto(h.adminUrl('/ui/'));
    assert.match(page.url(), /\/ui\/sign-in$/);
  });
});
