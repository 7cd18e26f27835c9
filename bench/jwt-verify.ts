/**
 * Micro-benchmark of JwtVerifier.verify: a cache miss (full signature and
 * claim checks) with each signature engine — `node` (synchronous
 * node:crypto, the default) and `jose` (WebCrypto, the reference) — and a
 * cache hit (hash + LRU lookup + per-request checks), for ES256, RS256 and
 * EdDSA, in wall ns/op and CPU ns/op.  Run: node bench/jwt-verify.ts
 * (pin it for stable numbers: taskset -c 1 node bench/jwt-verify.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { JwtConfig } from '../src/config/schema.ts';
import type { Peer } from '../src/core/types.ts';
import { JwtVerifier } from '../src/jwt/verifier.ts';

const ISS = 'https://issuer.bench';
const x5t = 'q3Ht8QvW3xT0rMZp8uXqkqk3w1b2KcJ0m5e1bQx0X2E';
const peer: Peer = { spiffeId: 'spiffe://mesh.local/sa/bench', trustDomain: 'mesh.local', fingerprint256: '00', x5tS256: x5t, serialNumber: '1' };

async function time(label: string, n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(n, 1000); i++) await fn(i); // warm up
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  const c = process.cpuUsage(c0);
  const cpu = ((c.user + c.system) * 1000) / n;
  console.log(`${label.padEnd(32)} ${ns.toFixed(0).padStart(9)} ns/op  ${cpu.toFixed(0).padStart(9)} cpu ns/op  (${n} ops)`);
}

const dir = mkdtempSync(join(tmpdir(), 'meshgate-bench-jwt-'));
try {
  for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
    const { privateKey, publicKey } = await generateKeyPair(alg);
    const file = join(dir, `${alg}.json`);
    writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg, use: 'sig' }] }));
    const cfg = (cacheEntries: number): JwtConfig => ({
      issuers: [{
        issuer: ISS, audiences: ['svc'], jwksFile: file, algorithms: [alg], requiredClaims: [],
        refreshInterval: 300_000, refetchCooldown: 30_000, maxStale: 3_600_000, fetchTimeout: 5_000,
      }],
      clockSkew: 30_000, locations: [{ header: 'authorization', scheme: 'Bearer' }], cacheEntries, forwardClaims: [],
    } as JwtConfig);
    const token = await new SignJWT({ sub: 'svc-a', aud: 'svc', scope: 'orders:read orders:write', jti: 'j', cnf: { 'x5t#S256': x5t } })
      .setProtectedHeader({ alg, kid: 'k' }).setIssuer(ISS).setIssuedAt().setExpirationTime('1h').sign(privateKey);

    for (const signatureEngine of ['jose', 'node'] as const) {
      const noCache = await JwtVerifier.create(cfg(0), { watch: false, signatureEngine });
      await time(`${alg} miss (${signatureEngine})`, 5_000, () => noCache.verify(token, peer));
      noCache.close();
    }

    const cached = await JwtVerifier.create(cfg(10_000), { watch: false });
    await time(`${alg} hit (cache)`, 200_000, () => cached.verify(token, peer));
    const headers = { authorization: `Bearer ${token}` };
    await time(`${alg} extract + hit`, 200_000, () => cached.verify(cached.extract(headers) as string, peer));
    cached.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
