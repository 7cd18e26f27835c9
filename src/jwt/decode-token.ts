/**
 * Reads a compact JWS's header and payload WITHOUT verifying them.
 *
 * The result is untrusted and used only to route the token: choose the
 * issuer configuration (`iss`), reject a forbidden `alg` before any key is
 * looked up, and pick the key (`kid`). Nothing read here is ever returned
 * as identity; the verifier re-reads everything from jose's verified output.
 */
import { Errors, MeshgateError } from '../core/errors.ts';

/** Routing fields of an unverified token. */
export interface UnverifiedToken {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly iss: string;
}

/** Longest token accepted; larger ones are refused before any decoding work. */
export const MAX_TOKEN_LENGTH = 16_384;

const B64URL = /^[A-Za-z0-9_-]+$/;

function malformed(detail: string, cause?: unknown): MeshgateError {
  return new MeshgateError(Errors.JWT_MALFORMED, detail, cause === undefined ? undefined : { cause });
}

function decodeJsonObject(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (e) {
    throw malformed(`${what} is not base64url-encoded JSON`, e);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Splits and decodes a compact JWS (RFC 7515 §7.1). Throws MeshgateError:
 * JWT_MALFORMED for anything that is not a three-part JWS with JSON header
 * and payload (a JWE's five parts included), or that uses `crit` (RFC 7515
 * §4.1.11: we understand no extensions, so the token must be rejected).
 */
export function decodeToken(token: string): UnverifiedToken {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw malformed('token is empty or too long');
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0) throw malformed('not a compact JWS (three parts)');
  const h = token.slice(0, first);
  const p = token.slice(first + 1, second);
  const s = token.slice(second + 1);
  // An empty signature is the `alg: none` shape: report it as an algorithm refusal below, not here.
  if (!B64URL.test(h) || !B64URL.test(p) || (s.length > 0 && !B64URL.test(s))) throw malformed('token parts are not base64url');
  const header = decodeJsonObject(h, 'header');
  const payload = decodeJsonObject(p, 'payload');
  const { alg, kid, crit } = header;
  if (typeof alg !== 'string' || alg.length === 0) throw malformed('header has no alg');
  if (crit !== undefined) throw malformed('header uses crit extensions');
  if (kid !== undefined && typeof kid !== 'string') throw malformed('header kid is not a string');
  const iss = payload['iss'];
  // RFC 7519 §4.1.1: iss is a StringOrURI; without one we cannot tell whose keys apply.
  if (typeof iss !== 'string') throw new MeshgateError(Errors.JWT_ISSUER, 'token has no iss');
  return { alg, kid, iss };
}
