import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.ts';
import { RemoteKeySource } from '../../src/jwt/remote-key-source.ts';
import { JwtVerifier } from '../../src/jwt/verifier.ts';
import { issuer, jwks, jwksServer, jwtConfig, makeKey, rejectsWith, sign, type JwksServer, type TestKey } from './jwt-helpers.ts';

let k1: TestKey;
let k2: TestKey;
let k3: TestKey;

before(async () => {
  k1 = await makeKey('k1');
  k2 = await makeKey('k2');
  k3 = await makeKey('k3');
});

const HOUR = 3_600_000;

async function setup(over: Parameters<typeof issuer>[0] = {}): Promise<{ server: JwksServer; clock: ManualClock; v: JwtVerifier; done(): Promise<void> }> {
  const server = await jwksServer(jwks(k1));
  const clock = new ManualClock();
  const v = await JwtVerifier.create(jwtConfig([issuer({ jwksUrl: server.url, refetchCooldown: 30_000, maxStale: HOUR, ...over })]), { clock });
  return { server, clock, v, done: async () => { v.close(); await server.close(); } };
}

describe('remote JWKS', () => {
  test('keys are fetched at start and a valid token is accepted', async () => {
    const { server, clock, v, done } = await setup();
    try {
      assert.equal(server.hits, 1);
      assert.equal((await v.verify(await sign(k1, clock.now()), undefined)).sub, 'alice');
      assert.deepEqual([v.status()[0]?.state, v.status()[0]?.ready, v.status()[0]?.keys], ['ok', true, 1]);
    } finally { await done(); }
  });

  test('an unknown kid triggers one refetch that picks up a rotated key', async () => {
    const { server, clock, v, done } = await setup();
    try {
      server.body = jwks(k1, k2);
      assert.equal((await v.verify(await sign(k2, clock.now()), undefined)).sub, 'alice');
      assert.equal(server.hits, 2);
    } finally { await done(); }
  });

  test('refetches on unknown kids are limited to one per cooldown, and concurrent requests share one fetch', async () => {
    const { server, clock, v, done } = await setup();
    try {
      const bogus = await Promise.all([1, 2, 3, 4, 5].map((i) => sign({ ...k3, kid: `bogus-${i}` }, clock.now())));
      const results = await Promise.allSettled(bogus.map((t) => v.verify(t, undefined)));
      assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as { reason: string }).reason === 'jwt_unknown_key'));
      assert.equal(server.hits, 2, 'five concurrent unknown kids cause a single refetch');
      // Within the cooldown, even a genuinely rotated key is not fetched.
      server.body = jwks(k1, k2);
      const t2 = await sign(k2, clock.now());
      clock.advance(29_000);
      await rejectsWith(() => v.verify(t2, undefined), 'jwt_unknown_key');
      assert.equal(server.hits, 2);
      clock.advance(1_000);
      assert.equal((await v.verify(t2, undefined)).sub, 'alice');
      assert.equal(server.hits, 3);
    } finally { await done(); }
  });

  test('during an outage the last good keys serve (state stale) until maxStale, then jwks_unavailable, and recover when the server returns', async () => {
    const { server, clock, v, done } = await setup();
    try {
      const src = v.status()[0];
      assert.equal(src?.state, 'ok');
      await server.stop();
      clock.advance(10 * 60_000);
      // A token with an unknown kid forces a fetch attempt that fails.
      await rejectsWith(async () => v.verify(await sign(k2, clock.now()), undefined), 'jwt_unknown_key');
      let s = v.status()[0];
      assert.deepEqual([s?.state, s?.ready, s?.keys, s?.staleSeconds], ['stale', true, 1, 600]);
      assert.equal(s?.reloadFailures, 1);
      assert.ok(s?.lastError);
      assert.equal((await v.verify(await sign(k1, clock.now()), undefined)).sub, 'alice');
      const cached = await sign(k1, clock.now(), { exp: Math.floor(clock.now() / 1000) + 7200 });
      await v.verify(cached, undefined);

      clock.advance(HOUR - 10 * 60_000 + 1);
      const err = await rejectsWith(() => v.verify(cached, undefined), 'jwks_unavailable');
      assert.equal(err.code, 'MG_ERR_JWT_KEYS_UNAVAILABLE');
      s = v.status()[0];
      assert.deepEqual([s?.state, s?.ready, s?.keys], ['unavailable', false, 0]);

      await server.start();
      clock.advance(30_000);
      assert.equal((await v.verify(cached, undefined)).sub, 'alice');
      s = v.status()[0];
      assert.deepEqual([s?.state, s?.ready, s?.staleSeconds], ['ok', true, undefined]);
    } finally { await done(); }
  });

  test('an HTTP error or an invalid document from the endpoint keeps the previous keys', async () => {
    const server = await jwksServer(jwks(k1));
    const clock = new ManualClock();
    const src = await RemoteKeySource.open({ url: server.url, refreshInterval: HOUR, refetchCooldown: 1000, maxStale: HOUR, fetchTimeout: 2000 }, { clock });
    try {
      const before = src.current();
      for (const mode of ['error', 'garbage'] as const) {
        server.mode = mode;
        assert.equal(await src.refresh(), false);
        assert.equal(src.current(), before);
        assert.equal(src.status().state, 'stale');
      }
      server.body = JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k1' }] });
      server.mode = 'ok';
      assert.equal(await src.refresh(), false, 'a JWKS with only a symmetric key is rejected');
      assert.equal(src.status().reloadFailures, 3);
      assert.equal(src.current()?.hasKid('k1'), true);
    } finally {
      src.close();
      await server.close();
    }
  });

  test('a hanging or oversized JWKS response fails the fetch within fetchTimeout and keeps the previous keys', async () => {
    const server = await jwksServer(jwks(k1));
    const src = await RemoteKeySource.open(
      { url: server.url, refreshInterval: HOUR, refetchCooldown: 1000, maxStale: HOUR, fetchTimeout: 300 },
      { clock: new ManualClock(), maxBytes: 4096 },
    );
    try {
      server.mode = 'hang';
      assert.equal(await src.refresh(), false);
      server.mode = 'ok';
      server.body = JSON.stringify({ keys: [k1.publicJwk], padding: 'x'.repeat(5000) });
      assert.equal(await src.refresh(), false);
      assert.match(src.status().lastError ?? '', /larger than 4096/);
      assert.deepEqual([src.status().state, src.current()?.hasKid('k1')], ['stale', true]);
    } finally {
      src.close();
      await server.close();
    }
  });

  test('an unchanged document keeps the same key set so cached verifications stay warm', async () => {
    const { clock, v, done, server } = await setup({ refetchCooldown: 0 });
    try {
      const token = await sign(k1, clock.now());
      await v.verify(token, undefined);
      await rejectsWith(async () => v.verify(await sign(k3, clock.now()), undefined), 'jwt_unknown_key');
      assert.equal(server.hits, 2);
      await v.verify(token, undefined);
      assert.equal(v.stats().cacheHits, 1);
    } finally { await done(); }
  });

  test('an endpoint unreachable at start is not fatal: not ready, tokens fail closed, recovery on demand', async () => {
    const server = await jwksServer(jwks(k1));
    await server.stop();
    const clock = new ManualClock();
    const v = await JwtVerifier.create(jwtConfig([issuer({ jwksUrl: server.url, refetchCooldown: 30_000 })]), { clock });
    try {
      assert.deepEqual([v.status()[0]?.ready, v.status()[0]?.state], [false, 'unavailable']);
      const token = await sign(k1, clock.now());
      await rejectsWith(() => v.verify(token, undefined), 'jwks_unavailable');
      await server.start();
      await rejectsWith(() => v.verify(token, undefined), 'jwks_unavailable');
      assert.equal(server.hits, 0, 'cooldown holds back the retry');
      clock.advance(30_000);
      assert.equal((await v.verify(token, undefined)).sub, 'alice');
      assert.equal(v.status()[0]?.ready, true);
    } finally {
      v.close();
      await server.close();
    }
  });
});

