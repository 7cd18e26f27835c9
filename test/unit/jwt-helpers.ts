/**
 * Fixtures shared by the jwt-*.test.ts files: real keys, signed tokens, a
 * real JWKS HTTP server the tests can break, and config builders.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import type { IssuerConfig, JwtConfig } from '../../src/config/schema.ts';
import type { Peer } from '../../src/core/types.ts';

export const ISS = 'https://issuer.mesh.local';
export const AUD = 'orders';

export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** A fresh signing key pair; the public half as a JWK with kid/alg/use. */
export async function makeKey(kid: string, alg = 'ES256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

export function jwks(...keys: TestKey[]): string {
  return JSON.stringify({ keys: keys.map((k) => k.publicJwk) });
}

/** Signs claims (defaults: iss, aud, sub, exp = now + 10 min) at the given clock time. */
export async function sign(
  key: TestKey,
  nowMs: number,
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const now = Math.floor(nowMs / 1000);
  const body: JWTPayload = { iss: ISS, aud: AUD, sub: 'alice', iat: now, exp: now + 600, ...claims };
  for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
  return new SignJWT(body).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(key.privateKey);
}

export function b64(obj: unknown): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

export function issuer(over: Partial<IssuerConfig>): IssuerConfig {
  return {
    issuer: ISS,
    audiences: [AUD],
    algorithms: ['ES256'],
    requiredClaims: [],
    refreshInterval: 3_600_000,
    refetchCooldown: 30_000,
    maxStale: 3_600_000,
    fetchTimeout: 2_000,
    ...over,
  } as IssuerConfig;
}

export function jwtConfig(issuers: IssuerConfig[], over: Partial<JwtConfig> = {}): JwtConfig {
  return {
    issuers,
    clockSkew: 30_000,
    locations: [{ header: 'authorization', scheme: 'Bearer' }],
    cacheEntries: 100,
    forwardClaims: [],
    ...over,
  } as JwtConfig;
}

export function peer(x5tS256: string): Peer {
  return {
    spiffeId: 'spiffe://mesh.local/ns/default/sa/web',
    trustDomain: 'mesh.local',
    fingerprint256: 'ab'.repeat(32),
    x5tS256,
    serialNumber: '01',
  };
}

export function tempDir(): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-jwt-'));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A real JWKS endpoint on 127.0.0.1:0 whose content and health the test controls. */
export interface JwksServer {
  readonly url: string;
  /** Requests served so far (including failed ones). */
  hits: number;
  body: string;
  /** `ok` serves `body`; `error` answers 500; `garbage` serves invalid JSON; `hang` never answers. */
  mode: 'ok' | 'error' | 'garbage' | 'hang';
  /** Stops listening (connections refused) — an outage. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function jwksServer(body: string): Promise<JwksServer> {
  let server: Server;
  const state = {
    url: '',
    hits: 0,
    body,
    mode: 'ok' as JwksServer['mode'],
    port: 0,
  };
  const make = (): Server => createServer((req, res) => {
    state.hits++;
    req.resume();
    if (state.mode === 'hang') return;
    if (state.mode === 'error') { res.writeHead(500).end('boom'); return; }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
    res.end(state.mode === 'garbage' ? '{"keys": [' : state.body);
  });
  const listen = (port: number): Promise<void> => new Promise((resolve, reject) => {
    server = make();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      state.port = (server.address() as AddressInfo).port;
      resolve();
    });
  });
  const stop = (): Promise<void> => new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await listen(0);
  state.url = `http://127.0.0.1:${state.port}/.well-known/jwks.json`;
  const api: JwksServer = {
    get url() { return state.url; },
    get hits() { return state.hits; },
    set hits(v) { state.hits = v; },
    get body() { return state.body; },
    set body(v) { state.body = v; },
    get mode() { return state.mode; },
    set mode(v) { state.mode = v; },
    stop,
    start: () => listen(state.port),
    close: () => (server.listening ? stop() : Promise.resolve()),
  };
  return api;
}

/** Runs `fn` expecting a MeshgateError with this reason; returns it. */
export async function rejectsWith(fn: () => Promise<unknown>, reason: string): Promise<{ reason: string; code: string; status: number; cause?: unknown }> {
  try {
    await fn();
  } catch (e) {
    const err = e as { reason?: string; code?: string; status?: number };
    if (err.reason !== reason) throw new Error(`expected reason ${reason}, got ${err.reason ?? String(e)}`, { cause: e });
    return e as { reason: string; code: string; status: number };
  }
  throw new Error(`expected rejection with reason ${reason}, but it resolved`);
}
