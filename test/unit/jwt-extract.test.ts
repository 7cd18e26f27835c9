import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { MeshgateError } from '../../src/core/errors.ts';
import { extractToken, type TokenLocation } from '../../src/jwt/extract-token.ts';

const T = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
const bearer: TokenLocation[] = [{ header: 'authorization', scheme: 'Bearer' }];

type Expect = string | undefined | 'MALFORMED';
const cases: Array<[string, IncomingHttpHeaders, TokenLocation[], Expect]> = [
  ['Bearer token', { authorization: `Bearer ${T}` }, bearer, T],
  ['lower-case scheme', { authorization: `bearer ${T}` }, bearer, T],
  ['upper-case scheme', { authorization: `BEARER ${T}` }, bearer, T],
  ['several spaces after the scheme', { authorization: `Bearer   ${T}` }, bearer, T],
  ['no header at all', {}, bearer, undefined],
  ['an empty header', { authorization: '' }, bearer, undefined],
  ['another scheme (Basic)', { authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' }, bearer, undefined],
  ['a scheme that only starts with Bearer', { authorization: `Bearerx ${T}` }, bearer, undefined],
  ['the scheme without a token', { authorization: 'Bearer' }, bearer, 'MALFORMED'],
  ['the scheme followed by spaces only', { authorization: 'Bearer    ' }, bearer, 'MALFORMED'],
  ['two tokens separated by a space', { authorization: `Bearer ${T} ${T}` }, bearer, 'MALFORMED'],
  ['two tokens separated by a comma', { authorization: `Bearer ${T}, Bearer ${T}` }, bearer, 'MALFORMED'],
  ['the header twice (array)', { authorization: [`Bearer ${T}`, `Bearer ${T}`] as unknown as string }, bearer, 'MALFORMED'],
  ['a raw header without scheme', { 'x-token': T }, [{ header: 'X-Token' }], T],
  ['a raw header with two tokens', { 'x-token': `${T}, ${T}` }, [{ header: 'x-token' }], 'MALFORMED'],
  ['a cookie', { cookie: `a=1; session=${T}; b=2` }, [{ cookie: 'session' }], T],
  ['a quoted cookie', { cookie: `session="${T}"` }, [{ cookie: 'session' }], T],
  ['a cookie name differing in case', { cookie: `Session=${T}` }, [{ cookie: 'session' }], undefined],
  ['a repeated cookie (cookie tossing)', { cookie: `session=${T}; session=other` }, [{ cookie: 'session' }], 'MALFORMED'],
  ['an empty cookie', { cookie: 'session=' }, [{ cookie: 'session' }], undefined],
  ['the second location when the first is absent', { cookie: `s=${T}` }, [...bearer, { cookie: 's' }], T],
  ['the first location when both are present', { authorization: `Bearer ${T}`, cookie: 's=other' }, [...bearer, { cookie: 's' }], T],
  ['a custom scheme', { authorization: `Token ${T}` }, [{ header: 'authorization', scheme: 'Token' }], T],
];

describe('extractToken', () => {
  for (const [name, headers, locations, expected] of cases) {
    const outcome = expected === 'MALFORMED' ? 'is rejected with jwt_malformed' : expected === undefined ? 'yields no token' : 'yields the token';
    test(`${name} ${outcome}`, () => {
      if (expected === 'MALFORMED') {
        assert.throws(() => extractToken(headers, locations), (e: unknown) => e instanceof MeshgateError && e.reason === 'jwt_malformed' && e.status === 401);
      } else {
        assert.equal(extractToken(headers, locations), expected);
      }
    });
  }

  test('error details never echo the token', () => {
    try {
      extractToken({ authorization: `Bearer ${T} ${T}` }, bearer);
      assert.fail('expected a throw');
    } catch (e) {
      assert.ok(!(e as Error).message.includes(T));
    }
  });
});
