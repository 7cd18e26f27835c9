/**
 * HAProxy 2.6 doing the checks meshgate does, for `npm run bench`: mTLS
 * (client certificate required, verified against the same CA bundle and
 * CRL), JWT verification of the ES256 bearer token (alg allow-list,
 * signature, iss, aud, exp), URI normalization, and RBAC — the token's `sub`
 * looked up in a map of the policy's users to their role's path segment, and
 * the request path must be under it (GET only). Then it forwards to the same
 * upstream over keep-alive connections. One thread (`nbthread 1`), pinned to
 * the same core as meshgate by the caller.
 *
 * Not checked by HAProxy here (no 2.6 fetch for it): the SPIFFE URI SAN and
 * trust domain of the client certificate. So HAProxy does slightly less
 * work than meshgate, never more.
 */
import { createPublicKey } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onPath } from './harness/proc.ts';

/** Where the HAProxy process finds its inputs. */
export interface HaproxyFiles {
  /** Folder to write haproxy.cfg and the derived PEM files into. */
  readonly dir: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly caFile: string;
  readonly crlFile?: string;
  /** The JWT signing key (PKCS#8) or any PEM createPublicKey accepts: only its public half is written. */
  readonly jwtKeyPem: string;
  /** `user-j <segment>` lines (rbacHaproxyMap). */
  readonly usersMap: string;
  readonly issuer: string;
  readonly audience: string;
  readonly port: number;
  readonly upstreamPort: number;
}

/** True when an `haproxy` binary is on PATH. */
export function haproxyAvailable(): boolean {
  return onPath('haproxy');
}

/** The first line of `haproxy -v` (e.g. "HAProxy version 2.6.12-1+deb12u4 …"), or undefined. */
export function haproxyVersion(): string | undefined {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0] : undefined;
}

/** Writes haproxy.cfg (and the PEM/map files it names) into `f.dir`; returns its path. */
export function writeHaproxyConfig(f: HaproxyFiles): string {
  const crt = join(f.dir, 'haproxy-gateway.pem');
  const pub = join(f.dir, 'haproxy-jwt.pub.pem');
  const map = join(f.dir, 'haproxy-users.map');
  writeFileSync(crt, `${f.certPem.trim()}\n${f.keyPem.trim()}\n`, { mode: 0o600 });
  // HAProxy's jwt_verify wants the public key as a PEM file, not a JWKS.
  writeFileSync(pub, createPublicKey(f.jwtKeyPem).export({ type: 'spki', format: 'pem' }).toString());
  writeFileSync(map, f.usersMap);
  const crl = f.crlFile ? ` crl-file ${f.crlFile}` : '';
  const cfg = `global
  nbthread 1
  # normalize-uri is still marked experimental in 2.6.
  expose-experimental-directives
  maxconn 5000
  ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 30s
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always

frontend mtls
  bind 127.0.0.1:${f.port} ssl crt ${crt} ca-file ${f.caFile}${crl} verify required alpn http/1.1
  # One canonical path, as meshgate computes it.
  http-request normalize-uri path-merge-slashes
  http-request normalize-uri path-strip-dotdot
  http-request normalize-uri percent-decode-unreserved
  http-request deny status 405 unless METH_GET
  # JWT: bearer present, alg allow-list (never none/HMAC), signature, iss, aud, exp.
  http-request set-var(txn.bearer) http_auth_bearer
  http-request deny status 401 unless { var(txn.bearer) -m found }
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny status 401 unless { var(txn.alg) -m str ES256 }
  http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"${pub}") -m int 1 }
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request deny status 401 unless { var(txn.iss) -m str "${f.issuer}" }
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
  http-request deny status 401 unless { var(txn.aud) -m str "${f.audience}" }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
  # RBAC: sub -> role path segment (map), and the path must be /api/<segment>/...
  http-request set-var(txn.sub) var(txn.bearer),jwt_payload_query('$.sub')
  http-request set-var(txn.grant) var(txn.sub),map(${map})
  http-request deny status 403 unless { var(txn.grant) -m found }
  http-request set-var(txn.seg) path,field(3,/)
  http-request deny status 403 unless { path_beg /api/ } { var(txn.seg),strcmp(txn.grant) eq 0 }
  default_backend upstream

backend upstream
  server up 127.0.0.1:${f.upstreamPort} maxconn 256
`;
  const file = join(f.dir, 'haproxy.cfg');
  writeFileSync(file, cfg);
  return file;
}
