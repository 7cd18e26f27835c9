import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPolicyStore, type PolicyStore } from '../../src/authz/policy-store.ts';
import { PolicyError } from '../../src/authz/policy-error.ts';
import type { Authorizer } from '../../src/authz/authorizer.ts';
import type { AuthzRequest } from '../../src/core/types.ts';

const MODEL = `[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act, eft
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
[matchers]
m = r.sub == p.sub && keyMatch2(r.obj, p.obj) && r.act == p.act
`;
const V1 = 'p, alice, /v1, GET, allow\n';
const V2 = 'p, alice, /v2, GET, allow\n';
const alice = (obj: string): AuthzRequest => ({ sub: 'alice', peer: '', obj, act: 'GET', claims: {} });

async function withStore(fn: (s: PolicyStore, dir: string) => Promise<void>, watch = true): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mg-policy-store-'));
  writeFileSync(join(dir, 'model.conf'), MODEL);
  writeFileSync(join(dir, 'policy.csv'), V1);
  const store = await createPolicyStore({
    modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv'), decisionCacheEntries: 100, watch, debounceMs: 20,
  });
  try {
    await fn(store, dir);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resolves with the next swapped-in authorizer, or rejects after `ms`. */
function nextReload(store: PolicyStore, ms: number): Promise<Authorizer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no reload within ${ms} ms`)); }, ms);
    const off = store.onReload((a) => { clearTimeout(timer); off(); resolve(a); });
  });
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('editing policy.csv swaps in the new policy within 1 s and the old instance keeps its own decisions', async () => {
  await withStore(async (store, dir) => {
    const old = store.current();
    assert.equal(old.decide(alice('/v1')).allowed, true);
    const swapped = nextReload(store, 1000);
    writeFileSync(join(dir, 'policy.csv'), V2);
    const next = await swapped;
    assert.equal(store.current(), next);
    assert.notEqual(next.version, old.version);
    assert.equal(next.decide(alice('/v2')).allowed, true);
    assert.equal(next.decide(alice('/v1')).allowed, false);
    // A request that took the old instance finishes with the old policy.
    assert.equal(old.decide(alice('/v1')).allowed, true);
    const st = store.status();
    assert.equal(st.name, 'policy');
    assert.equal(st.ready, true);
    assert.equal(st.state, 'ok');
    assert.equal(st.version, next.version);
    assert.equal(st.reloads, 2);
  });
});

test('a broken edit is rejected with file:line in status().lastError and the last good policy keeps serving', async () => {
  await withStore(async (store, dir) => {
    const good = store.current();
    writeFileSync(join(dir, 'policy.csv'), V1 + 'p, bob, /x, GET\n');
    await until(() => store.status().reloadFailures === 1, 5000, 'the rejected reload');
    assert.equal(store.current(), good);
    const st = store.status();
    assert.equal(st.state, 'degraded');
    assert.equal(st.ready, true);
    assert.equal(st.version, good.version);
    assert.equal(st.lastError, `${join(dir, 'policy.csv')}:2: p line has 3 column(s), the model's p = sub, obj, act, eft has 4`);
    assert.equal(store.current().decide(alice('/v1')).allowed, true);

    // Fixing the file recovers: the error clears and the fixed policy is served.
    const swapped = nextReload(store, 5000);
    writeFileSync(join(dir, 'policy.csv'), V2);
    await swapped;
    assert.equal(store.status().state, 'ok');
    assert.equal(store.status().lastError, undefined);
    assert.equal(store.current().decide(alice('/v2')).allowed, true);
  });
});

test('a broken model edit is rejected too, naming model.conf and its line', async () => {
  await withStore(async (store, dir) => {
    writeFileSync(join(dir, 'model.conf'), MODEL.replace('r = sub, obj, act', 'r = sub, obj, act, header'));
    await until(() => store.status().reloadFailures === 1, 5000, 'the rejected reload');
    assert.match(store.status().lastError ?? '', /model\.conf:2: unknown request token "header"/);
  });
});

test('a policy written elsewhere and renamed over policy.csv is picked up', async () => {
  await withStore(async (store, dir) => {
    const swapped = nextReload(store, 5000);
    writeFileSync(join(dir, 'policy.csv.tmp'), V2);
    renameSync(join(dir, 'policy.csv.tmp'), join(dir, 'policy.csv'));
    const next = await swapped;
    assert.equal(next.decide(alice('/v2')).allowed, true);
  });
});

test('reload() reports success or rejection, and reloading identical bytes keeps the same instance', async () => {
  await withStore(async (store, dir) => {
    const first = store.current();
    assert.equal(await store.reload(), true);
    assert.equal(store.current(), first);
    writeFileSync(join(dir, 'policy.csv'), 'p, "alice, /v1, GET, allow\n');
    assert.equal(await store.reload(), false);
    assert.equal(store.current(), first);
    assert.match(store.status().lastError ?? '', /policy\.csv:1: CSV syntax: unbalanced double quote$/);
    writeFileSync(join(dir, 'policy.csv'), V2);
    assert.equal(await store.reload(), true);
    assert.notEqual(store.current(), first);
  }, false);
});

test('a store cannot start from a broken policy: creation rejects with the PolicyError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-policy-store-'));
  try {
    writeFileSync(join(dir, 'model.conf'), MODEL);
    writeFileSync(join(dir, 'policy.csv'), 'p2, alice, /x, GET, allow\n');
    await assert.rejects(
      createPolicyStore({ modelPath: join(dir, 'model.conf'), policyPath: join(dir, 'policy.csv'), decisionCacheEntries: 0, watch: true }),
      (e: unknown) => e instanceof PolicyError && e.line === 1 && /unknown policy type "p2"/.test(e.reason),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
