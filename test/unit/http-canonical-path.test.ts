import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalizeTarget, type EncodedSlashMode } from '../../src/http/canonical-path.ts';
import { Errors, MeshgateError } from '../../src/core/errors.ts';

interface Case {
  readonly name: string;
  readonly input: string;
  /** Expected canonical path, or the expected error reason. */
  readonly path?: string;
  readonly query?: string;
  readonly reason?: string;
  /** Modes the case applies to (both when omitted). */
  readonly modes?: readonly EncodedSlashMode[];
}

const cases: readonly Case[] = [
  // dot segments and slashes (RFC 3986 §5.2.4)
  { name: 'parent segment climbs out of /public', input: '/public/../admin', path: '/admin' },
  { name: 'a doubled leading slash is merged', input: '//admin', path: '/admin' },
  { name: 'runs of slashes inside the path are merged', input: '/a///b//c', path: '/a/b/c' },
  { name: 'single and double dot segments are resolved', input: '/./a/./b/../c', path: '/a/c' },
  { name: 'a parent segment at the root stays at the root', input: '/..', path: '/' },
  { name: 'parent segments never climb above the root', input: '/a/../../../b', path: '/b' },
  { name: 'a trailing slash is kept', input: '/a/', path: '/a/' },
  { name: 'a trailing single dot leaves a trailing slash', input: '/a/.', path: '/a/' },
  { name: 'a trailing parent segment leaves the parent directory', input: '/a/b/..', path: '/a/' },
  { name: 'a trailing parent segment from one level leaves the root', input: '/a/..', path: '/' },
  { name: 'doubled trailing slashes collapse to one', input: '/a//', path: '/a/' },
  { name: 'the root stays the root', input: '/', path: '/' },
  { name: 'a segment that only starts with a dot is an ordinary segment', input: '/.well-known/x', path: '/.well-known/x' },
  { name: 'a segment of three dots is an ordinary segment', input: '/a/.../b', path: '/a/.../b' },

  // percent-decoding: unreserved only, exactly once (RFC 3986 §2.3, §6.2.2)
  { name: 'an encoded unreserved letter is decoded', input: '/%61dmin', path: '/admin' },
  { name: 'encoded dots are decoded before dot segments are removed', input: '/public/%2e%2e/admin', path: '/admin' },
  { name: 'mixed-case encoded dots are decoded', input: '/public/.%2E/admin', path: '/admin' },
  { name: 'an encoded tilde is decoded', input: '/%7Euser', path: '/~user' },
  { name: 'an encoded percent is never decoded a second time', input: '/a/%2561', path: '/a/%2561' },
  { name: 'a doubly encoded dot-dot is not a dot segment', input: '/public/%252e%252e/admin', path: '/public/%252e%252e/admin' },
  { name: 'reserved escapes keep their encoding with upper-case hex', input: '/a%3ab%3F', path: '/a%3Ab%3F' },
  { name: 'non-ASCII escapes are kept and upper-cased', input: '/caf%c3%a9', path: '/caf%C3%A9' },
  { name: 'an encoded space stays encoded', input: '/a%20b', path: '/a%20b' },
  { name: 'raw characters RFC 3986 forbids in a path are percent-encoded', input: '/a|b{c}', path: '/a%7Cb%7Bc%7D' },
  { name: 'sub-delims, colon and at-sign stay raw', input: "/a:b@c!$&'()*+,=", path: "/a:b@c!$&'()*+,=" },
  { name: 'a ";" path parameter is rejected (Java servers strip it before routing)', input: '/secret;x', reason: 'path_parameter' },
  { name: 'a ";" after a dot segment is rejected too', input: '/a/./secret;jsessionid=1', reason: 'path_parameter' },

  // query
  { name: 'the query is split off and kept verbatim', input: '/a?x=/../b', path: '/a', query: 'x=/../b' },
  { name: 'only the first question mark splits the query', input: '/a/./b?x?y=%zz', path: '/a/b', query: 'x?y=%zz' },
  { name: 'an empty query is the empty string', input: '/a?', path: '/a', query: '' },
  { name: 'a path without a query has an empty query', input: '/a/b', path: '/a/b', query: '' },

  // encoded separators
  { name: 'an encoded slash is rejected', input: '/admin%2fx', reason: 'path_encoded_slash', modes: ['reject'] },
  { name: 'an encoded slash is kept encoded in upper case in keep mode', input: '/admin%2fx', path: '/admin%2Fx', modes: ['keep'] },
  { name: 'an encoded slash is never a separator for dot segments in keep mode', input: '/a/..%2Fb', path: '/a/..%2Fb', modes: ['keep'] },
  { name: 'an encoded backslash is rejected', input: '/public/..%5cadmin', reason: 'path_encoded_backslash', modes: ['reject'] },
  { name: 'an encoded backslash is kept in keep mode', input: '/public/..%5cadmin', path: '/public/..%5Cadmin', modes: ['keep'] },
  { name: 'a raw backslash is rejected', input: '/public\\..\\admin', reason: 'path_encoded_backslash', modes: ['reject'] },
  { name: 'a raw backslash is encoded in keep mode', input: '/public\\..\\admin', path: '/public%5C..%5Cadmin', modes: ['keep'] },

  // rejected input
  { name: 'an encoded NUL is rejected', input: '/a%00b', reason: 'path_nul_byte' },
  { name: 'a raw NUL is rejected', input: '/a\u0000b', reason: 'path_nul_byte' },
  { name: 'a raw NUL in the query is rejected', input: '/a?b\u0000', reason: 'path_nul_byte' },
  { name: 'an absolute-form target is rejected', input: 'http://evil/admin', reason: 'bad_request_target' },
  { name: 'an asterisk-form target is rejected', input: '*', reason: 'bad_request_target' },
  { name: 'an authority-form target is rejected', input: 'evil.example:443', reason: 'bad_request_target' },
  { name: 'an empty target is rejected', input: '', reason: 'bad_request_target' },
  { name: 'a fragment in the path is rejected', input: '/a#b', reason: 'bad_request_target' },
  { name: 'a fragment after the query is rejected', input: '/a?b#c', reason: 'bad_request_target' },
  { name: 'a lone percent sign is rejected', input: '/%', reason: 'path_malformed_encoding' },
  { name: 'a truncated escape is rejected', input: '/%4', reason: 'path_malformed_encoding' },
  { name: 'a non-hex escape is rejected', input: '/%zz', reason: 'path_malformed_encoding' },
  { name: 'an escape cut off by the query is rejected', input: '/a%4?1', reason: 'path_malformed_encoding' },
  { name: 'a raw space is rejected', input: '/a b', reason: 'path_invalid_character' },
  { name: 'a raw control character is rejected', input: '/a\tb', reason: 'path_invalid_character' },
  { name: 'a raw DEL is rejected', input: '/a\u007fb', reason: 'path_invalid_character' },
  { name: 'a raw non-ASCII byte is rejected', input: '/caf\u00e9', reason: 'path_invalid_character' },
  { name: 'a raw space in the query is rejected', input: '/a?b c', reason: 'path_invalid_character' },
  { name: 'a Tomcat-style dot segment with parameters is rejected', input: '/public/..;/admin', reason: 'path_invalid_character' },
  { name: 'an encoded Tomcat-style dot segment is rejected', input: '/public/%2e%2e;x/admin', reason: 'path_invalid_character' },
  { name: 'a single dot with parameters is rejected', input: '/.;x/admin', reason: 'path_invalid_character' },
];

const reasonToSpec = new Map(Object.values(Errors).map((s) => [s.reason, s]));

describe('canonicalizeTarget', () => {
  for (const c of cases) {
    for (const mode of c.modes ?? (['reject', 'keep'] as const)) {
      it(`${c.name} (${mode})`, () => {
        if (c.reason !== undefined) {
          const spec = reasonToSpec.get(c.reason);
          assert.ok(spec, `unknown reason ${c.reason}`);
          assert.throws(
            () => canonicalizeTarget(c.input, { encodedSlash: mode }),
            (e: unknown) => e instanceof MeshgateError && e.reason === c.reason && e.code === spec.code && e.status === 400,
          );
          return;
        }
        const out = canonicalizeTarget(c.input, { encodedSlash: mode });
        assert.equal(out.path, c.path);
        if (c.query !== undefined) assert.equal(out.query, c.query);
      });
    }
  }

  it('error details never echo the attacker-controlled target', () => {
    const secretish = '/x%zzSENSITIVE';
    assert.throws(
      () => canonicalizeTarget(secretish, { encodedSlash: 'reject' }),
      (e: unknown) => e instanceof MeshgateError && !e.message.includes('SENSITIVE') && !(e.detail ?? '').includes('SENSITIVE'),
    );
  });

  it('a non-string target is caller misuse and throws TypeError', () => {
    assert.throws(() => canonicalizeTarget(undefined as unknown as string, { encodedSlash: 'reject' }), TypeError);
  });

  it('an already-canonical path is returned unchanged', () => {
    const target = '/api/v1/orders/1234/items';
    assert.equal(canonicalizeTarget(target, { encodedSlash: 'reject' }).path, target);
  });
});

describe('canonicalizeTarget: pathParams keep', () => {
  it('keeps ";" verbatim when path parameters are allowed', () => {
    assert.deepEqual(canonicalizeTarget("/a;b=1/c;d?x=;", { encodedSlash: 'reject', pathParams: 'keep' }), { path: '/a;b=1/c;d', query: 'x=;' });
  });
  it('still rejects ".;" and "..;" segments when path parameters are allowed', () => {
    assert.throws(() => canonicalizeTarget('/a/..;x/b', { encodedSlash: 'reject', pathParams: 'keep' }), (e: { reason?: string }) => e.reason === 'path_invalid_character');
  });
});
