import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { ManualClock } from '../../src/core/clock.ts';
import { FileKeySource } from '../../src/jwt/file-key-source.ts';
import { importJwks } from '../../src/jwt/key-set.ts';
import { JwtVerifier } from '../../src/jwt/verifier.ts';
import { issuer, jwks, jwtConfig, makeKey, rejectsWith, sign, tempDir, type TestKey } from './jwt-helpers.ts';

const tmp = tempDir();
let a: TestKey;
let b: TestKey;

before(async () => {
  a = await makeKey('a');
  b = await makeKey('b');
});
after(() => tmp.cleanup());

/** Polls (no timing assertion) until `cond` holds, failing after a generous deadline. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 8000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Replaces the file the way config managers do: write a new file, rename it over. */
function replace(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

describe('JWKS file source', () => {
  test('a broken JWKS file at start is a hard error naming the file', async () => {
    const f = tmp.path('broken.json');
    writeFileSync(f, '{"keys": [');
    assert.throws(() => FileKeySource.open(f, { watch: false }), /broken\.json: not valid JSON/);
    await assert.rejects(() => JwtVerifier.create(jwtConfig([issuer({ jwksFile: f })]), { watch: false }), /broken\.json/);
    assert.throws(() => FileKeySource.open(tmp.path('missing.json'), { watch: false }), /missing\.json/);
  });

  test('rotating keys in the file is picked up by the watcher; tokens of the removed key stop working even if cached', async () => {
    const f = tmp.path('rotate.json');
    writeFileSync(f, jwks(a));
    const clock = new ManualClock();
    const v = await JwtVerifier.create(jwtConfig([issuer({ jwksFile: f })]), { clock, watch: { debounceMs: 20, pollMs: 100 } });
    try {
      const ta = await sign(a, clock.now());
      const tb = await sign(b, clock.now());
      await v.verify(ta, undefined);
      await rejectsWith(() => v.verify(tb, undefined), 'jwt_unknown_key');
      replace(f, jwks(b));
      await until(() => (v.status()[0]?.reloads ?? 0) >= 2, 'the JWKS reload');
      assert.equal((await v.verify(tb, undefined)).sub, 'alice');
      await rejectsWith(() => v.verify(ta, undefined), 'jwt_unknown_key');
    } finally {
      v.close();
    }
  });

  test('a broken new file is rejected, counted and logged while the previous keys stay in use', async () => {
    const f = tmp.path('keep.json');
    writeFileSync(f, jwks(a));
    const warnings: string[] = [];
    const { pino } = await import('pino');
    const logger = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(line); } });
    const src = FileKeySource.open(f, { watch: false, logger });
    try {
      const before = src.current();
      for (const bad of ['{"keys": [', '{"nokeys": []}', JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }), '']) {
        writeFileSync(f, bad);
        assert.equal(src.reload(), false);
        assert.equal(src.current(), before);
      }
      const s = src.status();
      assert.deepEqual([s.ready, s.state, s.reloadFailures, s.keys], [true, 'degraded', 4, 1]);
      assert.match(s.lastError ?? '', /keep\.json/);
      assert.equal(warnings.length, 4);
      assert.ok(warnings.every((w) => !w.includes('"x"') && !w.includes('c2VjcmV0')), 'no key material in logs');
      writeFileSync(f, jwks(a));
      assert.equal(src.reload(), true);
      assert.deepEqual([src.status().state, src.status().lastError], ['ok', undefined]);
      assert.equal(src.current(), before, 'identical content keeps the same key set');
    } finally {
      src.close();
    }
  });

  test('a broken file picked up by the watcher keeps verification working', async () => {
    const f = tmp.path('watch-broken.json');
    writeFileSync(f, jwks(a));
    const clock = new ManualClock();
    const v = await JwtVerifier.create(jwtConfig([issuer({ jwksFile: f })], { cacheEntries: 0 }), { clock, watch: { debounceMs: 20, pollMs: 100 } });
    try {
      replace(f, 'not json');
      await until(() => (v.status()[0]?.reloadFailures ?? 0) >= 1, 'the rejected reload');
      assert.equal((await v.verify(await sign(a, clock.now()), undefined)).sub, 'alice');
    } finally {
      v.close();
    }
  });
});

describe('importJwks', () => {
  test('symmetric, private, encryption-only and undersized keys are ignored; usable ones are kept', async () => {
    const ec = await generateKeyPair('ES256', { extractable: true });
    const priv = await exportJWK(ec.privateKey);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const set = importJwks(JSON.stringify({
      keys: [
        { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' },
        { ...priv, kid: 'private' },
        { ...a.publicJwk, kid: 'enc', use: 'enc' },
        { ...a.publicJwk, kid: 'ops', key_ops: ['encrypt'] },
        { ...small, kid: 'small' },
        { ...a.publicJwk, kid: 'mismatch', alg: 'RS256' },
        'not an object',
        a.publicJwk,
      ],
    }));
    assert.equal(set.size, 1);
    assert.equal(set.ignored.length, 7);
    for (const kid of ['hmac', 'private', 'enc', 'ops', 'small', 'mismatch']) assert.equal(set.hasKid(kid), false, kid);
    assert.equal(set.candidates('a', 'ES256').length, 1);
    assert.equal(set.candidates('a', 'ES384').length, 0, 'curve must fit the algorithm');
    assert.equal(set.candidates('a', 'RS256').length, 0, 'key type must fit the algorithm');
    assert.equal(set.candidates('a', 'HS256').length, 0);
    assert.ok(set.ignored.every((r) => !r.includes('c2VjcmV0')), 'reasons never echo key material');
  });

  test('a JWKS without any usable key is refused', () => {
    assert.throws(() => importJwks('{"keys": []}'), /no usable/);
    assert.throws(() => importJwks('[]'), /not a JWKS/);
  });
});
