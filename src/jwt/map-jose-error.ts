/**
 * The one place jose's error classes become meshgate error codes. The jose
 * error is kept as `cause` (logged, never sent to the client).
 */
import { errors } from 'jose';
import { Errors, MeshgateError, type ErrorSpec } from '../core/errors.ts';

function claimSpec(e: errors.JWTClaimValidationFailed): ErrorSpec {
  // jose reports `missing` / `invalid` (wrong type) / `check_failed` per claim.
  switch (e.claim) {
    case 'aud': return Errors.JWT_AUDIENCE;
    case 'iss': return Errors.JWT_ISSUER;
    case 'nbf': return e.reason === 'check_failed' ? Errors.JWT_NOT_YET_VALID : Errors.JWT_CLAIM;
    default: return Errors.JWT_CLAIM;
  }
}

/** Maps an error thrown by jose's verification to a MeshgateError (JWT_*). */
export function mapJoseError(e: unknown): MeshgateError {
  if (e instanceof MeshgateError) return e;
  if (e instanceof errors.JWTExpired) {
    // jose also uses JWTExpired for a too-old `iat` (maxTokenAge), which we do not set.
    return new MeshgateError(Errors.JWT_EXPIRED, undefined, { cause: e });
  }
  if (e instanceof errors.JWTClaimValidationFailed) {
    return new MeshgateError(claimSpec(e), `claim ${e.claim}: ${e.reason}`, { cause: e });
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return new MeshgateError(Errors.JWT_SIGNATURE, undefined, { cause: e });
  if (e instanceof errors.JOSEAlgNotAllowed) return new MeshgateError(Errors.JWT_ALG, undefined, { cause: e });
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid || e instanceof errors.JOSENotSupported) {
    return new MeshgateError(Errors.JWT_MALFORMED, undefined, { cause: e });
  }
  // Anything else (a TypeError from key handling, a runtime crypto error):
  // fail closed as an invalid signature rather than surface a 500.
  return new MeshgateError(Errors.JWT_SIGNATURE, undefined, { cause: e });
}
