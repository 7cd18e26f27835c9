/**
 * JWT verification (PRODUCT §1.3): the one module that owns jose.
 *
 * Order of checks on a cache miss, and why:
 *   1. decode header/payload untrusted — only to route the token;
 *   2. refuse `none`/HMAC/unknown `alg` — before the issuer, so forged-token
 *      attempts are reported as such whatever `iss` they claim;
 *   3. issuer by exact `iss`, then that issuer's `alg` allow-list — before
 *      any key lookup, so a token can never choose how its key is used
 *      (RFC 8725 §3.1);
 *   4. key by `kid` (refetch on unknown kid, rate-limited by the source) —
 *      only from the configured JWKS, never from the token's own
 *      `jwk`/`jku`/`x5u`/`x5c` headers, which an attacker controls;
 *   5. signature, then iss/aud/exp/nbf (with skew) and required claims —
 *      synchronously with node:crypto (fast-verify.ts, jose's semantics and
 *      error classes), or with jose's jwtVerify when `signatureEngine: 'jose'`;
 *   6. RFC 8705 binding against the peer certificate — on every request,
 *      cache hit or not, because the same token may arrive over another
 *      connection.
 */
import { hash as digest, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { errors, jwtVerify, type JWTPayload } from 'jose';
import type { IssuerConfig, JwtConfig } from '../config/schema.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { Errors, MeshgateError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { ANONYMOUS, type Peer, type Principal } from '../core/types.ts';
import type { WatchOptions } from '../core/watch.ts';
import { decodeToken, MAX_TOKEN_LENGTH } from './decode-token.ts';
import { extractToken } from './extract-token.ts';
import { verifyJwtSync, type FastJwtVerifyOptions } from './fast-verify.ts';
import { FileKeySource } from './file-key-source.ts';
import { isSupportedAlg, type KeySet, type VerificationKey } from './key-set.ts';
import type { KeySource, KeySourceStatus } from './key-source.ts';
import { mapJoseError } from './map-jose-error.ts';
import { RemoteKeySource } from './remote-key-source.ts';
import { MAX_CACHE_TTL_MS, TokenCache, type CachedToken } from './token-cache.ts';

export interface JwtVerifierOptions {
  /** Time source for exp/nbf, cache expiry and JWKS staleness (tests pass a ManualClock). */
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** JWKS file watching (default on). */
  readonly watch?: boolean | WatchOptions;
  /**
   * Who checks signature and claims on a cache miss: `node` (default) —
   * synchronous node:crypto on the imported KeyObjects, no threadpool hop;
   * `jose` — jose's jwtVerify over WebCrypto, the reference the node path
   * is differentially tested against. Both give the same answers.
   */
  readonly signatureEngine?: 'node' | 'jose';
}

/** Counters for metrics and tests. */
export interface JwtVerifierStats {
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly cacheSize: number;
  /** Signature verifications performed (one per candidate key tried). */
  readonly signatureChecks: number;
}

interface Issuer {
  readonly cfg: IssuerConfig;
  readonly source: KeySource;
  readonly algorithms: ReadonlySet<string>;
  readonly requiredClaims: readonly string[];
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

function claimError(detail: string): MeshgateError {
  return new MeshgateError(Errors.JWT_CLAIM, detail);
}

/** RFC 8705 §3: a bound token is only valid over a connection authenticated with that certificate. */
function checkBinding(cnf: Buffer | undefined, peer: Peer | undefined): void {
  if (cnf === undefined) return;
  if (peer === undefined) throw new MeshgateError(Errors.JWT_CNF_MISMATCH, 'token is certificate-bound but no client certificate was presented');
  const got = Buffer.from(peer.x5tS256, 'utf8');
  if (got.length !== cnf.length || !timingSafeEqual(got, cnf)) {
    throw new MeshgateError(Errors.JWT_CNF_MISMATCH, 'token is bound to a different client certificate');
  }
}

/** Reads RFC 8705 `cnf["x5t#S256"]` (RFC 7800 §3.1 confirmation) from verified claims. */
function readBinding(payload: JWTPayload): Buffer | undefined {
  const cnf = payload['cnf'];
  if (cnf === undefined) return undefined;
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) throw claimError('cnf is not an object');
  const t = (cnf as Record<string, unknown>)['x5t#S256'];
  // A proof-of-possession method we cannot check (e.g. DPoP `jkt`) must not
  // degrade to a bearer token: fail closed.
  if (t === undefined) throw new MeshgateError(Errors.JWT_CNF_MISMATCH, 'token uses a confirmation method meshgate cannot check');
  if (typeof t !== 'string' || t === '') throw claimError('cnf x5t#S256 is not a string');
  return Buffer.from(t, 'utf8');
}

/** Verifies bearer tokens for the configured issuers, with a verified-token cache. */
export class JwtVerifier {
  readonly #cfg: JwtConfig;
  readonly #clock: Clock;
  readonly #issuers: ReadonlyMap<string, Issuer>;
  readonly #cache: TokenCache;
  readonly #toleranceSec: number;
  readonly #useJose: boolean;
  #hits = 0;
  #misses = 0;
  #signatureChecks = 0;

  private constructor(cfg: JwtConfig, clock: Clock, issuers: ReadonlyMap<string, Issuer>, useJose: boolean) {
    this.#cfg = cfg;
    this.#useJose = useJose;
    this.#clock = clock;
    this.#issuers = issuers;
    this.#cache = new TokenCache(cfg.cacheEntries);
    this.#toleranceSec = cfg.clockSkew / 1000;
  }

  /**
   * Opens every issuer's key source. Throws Error when a JWKS file is broken
   * and TypeError on an impossible config (duplicate issuer, non-asymmetric
   * algorithm). An unreachable JWKS URL is not fatal: that issuer reports
   * `unavailable` and its tokens fail with jwks_unavailable until a fetch succeeds.
   */
  static async create(cfg: JwtConfig, opts: JwtVerifierOptions = {}): Promise<JwtVerifier> {
    const clock = opts.clock ?? systemClock;
    const logger = opts.logger ?? silentLogger;
    const seen = new Set<string>();
    for (const ic of cfg.issuers) {
      if (seen.has(ic.issuer)) throw new TypeError(`duplicate JWT issuer ${JSON.stringify(ic.issuer)}`);
      seen.add(ic.issuer);
      for (const a of ic.algorithms) if (!isSupportedAlg(a)) throw new TypeError(`algorithm ${a} is not an asymmetric signature algorithm`);
      if ((ic.jwksFile === undefined) === (ic.jwksUrl === undefined)) throw new TypeError(`issuer ${ic.issuer}: exactly one of jwksFile or jwksUrl is required`);
    }
    const opening = cfg.issuers.map(async (ic): Promise<KeySource> => {
      const name = `jwks:${ic.issuer}`;
      const log = logger.child({ issuer: ic.issuer });
      if (ic.jwksFile !== undefined) return FileKeySource.open(ic.jwksFile, { clock, logger: log, name, ...(opts.watch === undefined ? {} : { watch: opts.watch }) });
      return RemoteKeySource.open({
        url: ic.jwksUrl as string, refreshInterval: ic.refreshInterval, refetchCooldown: ic.refetchCooldown,
        maxStale: ic.maxStale, fetchTimeout: ic.fetchTimeout,
      }, { clock, logger: log, name });
    });
    const settled = await Promise.allSettled(opening);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) {
      for (const s of settled) if (s.status === 'fulfilled') s.value.close();
      throw failed.reason;
    }
    const issuers = new Map<string, Issuer>();
    cfg.issuers.forEach((ic, i) => {
      const s = settled[i] as PromiseFulfilledResult<KeySource>;
      issuers.set(ic.issuer, {
        cfg: ic,
        source: s.value,
        algorithms: new Set(ic.algorithms),
        // `exp` is required so every accepted token, and every cache entry, has a bound lifetime.
        requiredClaims: [...new Set(['exp', 'sub', ...ic.requiredClaims])],
      });
    });
    return new JwtVerifier(cfg, clock, issuers, opts.signatureEngine === 'jose');
  }

  /** The token from the configured locations (see extractToken); throws JWT_MALFORMED when ambiguous. */
  extract(headers: IncomingHttpHeaders): string | undefined {
    return extractToken(headers, this.#cfg.locations);
  }

  /**
   * The principal of a token verified before and still cached, with its
   * certificate binding checked against `peer` (throws JWT_CNF_*); undefined
   * on a miss, and then `verify` does the work. Synchronous: the common case
   * on the request path costs no promise.
   */
  cached(token: string, peer: Peer | undefined): Principal | undefined {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return undefined;
    const hit = this.#cache.get(digest('sha256', token, 'base64url'), this.#clock.now());
    if (hit === undefined) return undefined;
    this.#hits++;
    checkBinding(hit.cnf, peer);
    return hit.principal;
  }

  /**
   * Verifies `token` and checks its certificate binding against `peer`.
   * Throws MeshgateError with a JWT_* code; never returns a partial principal.
   */
  async verify(token: string, peer: Peer | undefined): Promise<Principal> {
    if (typeof token !== 'string') throw new TypeError('token must be a string');
    if (token.length > MAX_TOKEN_LENGTH) throw new MeshgateError(Errors.JWT_MALFORMED, 'token too long');
    const hash = digest('sha256', token, 'base64url');
    const now = this.#clock.now();
    const hit = this.#cache.get(hash, now);
    if (hit !== undefined) {
      this.#hits++;
      checkBinding(hit.cnf, peer);
      return hit.principal;
    }
    this.#misses++;
    const entry = await this.#verifyFresh(token, hash, now);
    checkBinding(entry.cnf, peer);
    return entry.principal;
  }

  /** One status per issuer, named `jwks:<issuer>`. */
  status(): KeySourceStatus[] {
    return [...this.#issuers.values()].map((i) => i.source.status());
  }

  stats(): JwtVerifierStats {
    return { cacheHits: this.#hits, cacheMisses: this.#misses, cacheSize: this.#cache.size, signatureChecks: this.#signatureChecks };
  }

  /** Stops JWKS timers and watchers and forgets cached verifications. */
  close(): void {
    for (const i of this.#issuers.values()) i.source.close();
    this.#cache.clear();
  }

  async #verifyFresh(token: string, hash: string, now: number): Promise<CachedToken> {
    const u = decodeToken(token);
    if (!isSupportedAlg(u.alg)) throw new MeshgateError(Errors.JWT_ALG, `alg ${JSON.stringify(u.alg.slice(0, 16))} is never accepted`);
    const issuer = this.#issuers.get(u.iss);
    if (issuer === undefined) throw new MeshgateError(Errors.JWT_ISSUER);
    if (!issuer.algorithms.has(u.alg)) throw new MeshgateError(Errors.JWT_ALG, `alg ${u.alg} is not allowed for this issuer`);

    const { source } = issuer;
    let keys: KeySet | undefined = source.current() ?? await source.demand();
    if (keys === undefined) throw new MeshgateError(Errors.JWT_KEYS_UNAVAILABLE);
    let candidates = keys.candidates(u.kid, u.alg);
    if (candidates.length === 0 && !(u.kid !== undefined && keys.hasKid(u.kid))) {
      // Unknown kid: the issuer may have rotated keys since our last fetch.
      keys = await source.demand();
      if (keys === undefined) throw new MeshgateError(Errors.JWT_KEYS_UNAVAILABLE);
      candidates = keys.candidates(u.kid, u.alg);
    }
    if (candidates.length === 0) throw new MeshgateError(Errors.JWT_UNKNOWN_KID);

    const payload = this.#useJose ? await this.#checkSignatureJose(token, candidates, issuer, u.alg, now) : this.#checkSignature(token, candidates, issuer, u.alg, now);
    const rawSub = payload.sub;
    if (typeof rawSub !== 'string' || rawSub === '') throw claimError('sub must be a non-empty string');
    // `anonymous` is the subject of requests without identity: a token may not claim it.
    if (rawSub === ANONYMOUS) throw claimError('sub must not be "anonymous"');
    // With several issuers each has its own subject namespace (config requires
    // distinct prefixes), so one issuer can never mint another's subject.
    const sub = issuer.cfg.subjectPrefix === undefined ? rawSub : `${issuer.cfg.subjectPrefix}${rawSub}`;
    const jti = payload.jti;
    if (jti !== undefined && typeof jti !== 'string') throw claimError('jti must be a string');
    const exp = payload.exp as number; // required and type-checked by the claim check
    const cnf = readBinding(payload);
    // The verified payload is freshly parsed for this call: freezing it (deeply) makes the
    // cached principal safe to share between requests.
    const principal: Principal = Object.freeze({
      iss: u.iss, sub, jti, tokenHash: hash, exp, certBound: cnf !== undefined, claims: deepFreeze(payload as Record<string, unknown>),
    });
    const entry: CachedToken = { principal, cnf, source, keys, validUntil: Math.min(exp * 1000, now + MAX_CACHE_TTL_MS) };
    if (entry.validUntil > now) this.#cache.set(hash, entry);
    return entry;
  }

  #options(issuer: Issuer, alg: string, now: number): FastJwtVerifyOptions {
    return {
      algorithms: [alg],
      issuer: issuer.cfg.issuer,
      audience: issuer.cfg.audiences,
      clockTolerance: this.#toleranceSec,
      currentDate: new Date(now),
      requiredClaims: issuer.requiredClaims,
      ...(issuer.cfg.typ !== undefined ? { typ: issuer.cfg.typ } : {}),
    };
  }

  #checkSignature(token: string, candidates: readonly VerificationKey[], issuer: Issuer, alg: string, now: number): JWTPayload {
    const options = this.#options(issuer, alg, now);
    let lastError: unknown;
    for (const k of candidates) {
      this.#signatureChecks++;
      try {
        return verifyJwtSync(token, k.key, options);
      } catch (e) {
        // Only a signature failure means "try the next key"; a claim failure
        // comes after a valid signature and is final.
        if (!(e instanceof errors.JWSSignatureVerificationFailed)) throw mapJoseError(e);
        lastError = e;
      }
    }
    throw mapJoseError(lastError);
  }

  async #checkSignatureJose(token: string, candidates: readonly VerificationKey[], issuer: Issuer, alg: string, now: number): Promise<JWTPayload> {
    const o = this.#options(issuer, alg, now);
    const options = { ...o, algorithms: [...o.algorithms], audience: [...o.audience], requiredClaims: [...o.requiredClaims] };
    let lastError: unknown;
    for (const k of candidates) {
      this.#signatureChecks++;
      try {
        return (await jwtVerify(token, k.key, options)).payload;
      } catch (e) {
        if (!(e instanceof errors.JWSSignatureVerificationFailed)) throw mapJoseError(e);
        lastError = e;
      }
    }
    throw mapJoseError(lastError);
  }
}
