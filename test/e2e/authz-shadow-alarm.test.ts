import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MODEL, POLICY, rawStatus, startHarness, type Harness } from '../helpers/gateway.ts';

async function metric(h: Harness, name: string): Promise<number> {
  const text = await (await fetch(h.adminUrl('/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('shadow policy', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      patch: (cfg, dir) => {
        // The candidate drops alice's reader grant on /orders/:id and adds /reports for readers.
        writeFileSync(join(dir, 'shadow-model.conf'), MODEL);
        writeFileSync(join(dir, 'shadow-policy.csv'), POLICY.replace('p, reader, /orders/:id, GET, allow\n', '') + 'p, reader, /reports, GET, allow\n');
        return { ...cfg, authz: { ...cfg.authz, shadow: { model: join(dir, 'shadow-model.conf'), policy: join(dir, 'shadow-policy.csv') } } };
      },
    });
  });
  after(() => h.close());

  test('shadow decisions are audited and counted but never enforced', async () => {
    const token = await h.pki.mintToken({ sub: 'alice' });
    const a = await h.request('/orders/42', { token });
    assert.equal(a.status, 200, 'the enforced policy allows it even though the shadow would deny');
    const b = await h.request('/reports', { token });
    assert.equal(b.status, 403, 'the enforced policy denies it even though the shadow would allow');
    assert.equal(b.json().reason, 'authz_no_matching_rule');
    const c = await h.request('/orders', { token });
    assert.equal(c.status, 200);

    const events = await h.auditEvents();
    const byPath = (p: string) => events.find((e) => e.type === 'request' && e.path === p);
    assert.deepEqual(
      { decision: byPath('/orders/42')?.decision, shadow: byPath('/orders/42')?.shadow?.decision, mismatch: byPath('/orders/42')?.shadow?.mismatch },
      { decision: 'allow', shadow: 'deny', mismatch: true },
    );
    assert.equal(byPath('/orders/42')?.shadow?.reason, 'authz_no_matching_rule');
    assert.equal(byPath('/reports')?.shadow?.decision, 'allow');
    assert.match(byPath('/reports')?.shadow?.rule ?? '', /shadow-policy\.csv:\d+: p, reader, \/reports, GET, allow/);
    assert.equal(byPath('/orders')?.shadow?.mismatch, false);
    assert.notEqual(byPath('/orders')?.shadow?.policyVersion, byPath('/orders')?.policyVersion);

    assert.equal(await metric(h, 'meshgate_shadow_mismatch_total'), 2);
    assert.equal(await metric(h, 'meshgate_shadow_allow_total'), 2);
    assert.equal(await metric(h, 'meshgate_shadow_deny_total'), 1);
    const ready = await (await fetch(h.adminUrl('/readyz'))).json() as { components: { name: string; ready: boolean }[] };
    assert.equal(ready.components.find((c) => c.name === 'shadow-policy')?.ready, true);
  });
});

describe('path-confusion alarm', () => {
  let h: Harness;
  // Readers may read /public/*; a proxy that authorized raw paths would let `/public/../admin/x` through.
  before(async () => { h = await startHarness({ policy: `${POLICY}p, reader, /public/*, GET, allow\n` }); });
  after(() => h.close());

  test('a raw path the policy would decide differently raises a high-severity path_confusion event', async () => {
    const token = await h.pki.mintToken({ sub: 'alice' });
    // Raw `/public/../admin/x` matches `/public/*` (allowed to readers); canonical `/admin/x` is denied to alice.
    const raw = await h.raw(`GET /public/../admin/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(raw), 403);
    // A raw path that normalizes but is decided the same way raises nothing.
    const same = await h.raw(`GET //orders HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    assert.equal(rawStatus(same), 200);

    const events = await h.auditEvents();
    const alarms = events.filter((e) => e.type === 'alarm');
    assert.equal(alarms.length, 1);
    const [alarm] = alarms;
    const request = events.find((e) => e.type === 'request' && e.requestId === alarm?.requestId);
    assert.ok(request, 'the alarm shares the request id of its request event');
    assert.deepEqual(
      { reason: alarm?.reason, severity: alarm?.severity, path: alarm?.path, rawPath: alarm?.rawPath, decision: alarm?.decision, rawDecision: alarm?.alarm?.rawDecision },
      { reason: 'path_confusion', severity: 'high', path: '/admin/x', rawPath: '/public/../admin/x', decision: 'deny', rawDecision: 'allow' },
    );
    assert.match(alarm?.alarm?.rawRule ?? '', /p, reader, \/public\/\*, GET, allow/);
    assert.notEqual(alarm?.id, request?.id);
    assert.equal(await metric(h, 'meshgate_alarms_total'), 1);
  });
});
