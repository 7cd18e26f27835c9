import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalizeTarget, type CanonicalTarget, type EncodedSlashMode } from '../../src/http/canonical-path.ts';
import { MeshgateError } from '../../src/core/errors.ts';

const RUNS = { numRuns: 5000 };
const MODES: readonly EncodedSlashMode[] = ['reject', 'keep'];

/** Path fragments chosen to hit every branch: dots, escapes of every class, separators, junk. */
const TOKENS = [
  '/', '/', '/', '.', '..', 'a', 'Z', '0', '-', '_', '~', ';', ':', '@', '!', '=', '+',
  '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '%25', '%61', '%7e', '%7E', '%3a', '%3F', '%20', '%c3%a9', '%00',
  '%', '%4', '%zz', '?', '#', '\\', ' ', '\u0000', '\t', '|', '{', '"', '^', '`', '[', ']', '\u00e9', '..;', '.;',
];

const tokenPath = fc.array(fc.constantFrom(...TOKENS), { maxLength: 24 }).map((parts) => '/' + parts.join(''));
const asciiPath = fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => '/' + s);
const anyPath = fc.oneof(tokenPath, asciiPath);

/** Canonicalize, or undefined when the input is rejected with a MeshgateError. */
function tryCanon(target: string, mode: EncodedSlashMode): CanonicalTarget | undefined {
  try {
    return canonicalizeTarget(target, { encodedSlash: mode });
  } catch (e) {
    if (e instanceof MeshgateError) return undefined;
    throw e;
  }
}

const PCHAR_PATH = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*$/;
const UNRESERVED_BYTE = /^[A-Za-z0-9\-._~]$/;

describe('canonicalizeTarget properties', () => {
  for (const mode of MODES) {
    it(`canonicalizing a canonical path changes nothing (${mode})`, () => {
      fc.assert(
        fc.property(anyPath, (target) => {
          const once = tryCanon(target, mode);
          if (once === undefined) return;
          const twice = canonicalizeTarget(once.path, { encodedSlash: mode });
          assert.equal(twice.path, once.path);
          assert.equal(twice.query, '');
        }),
        RUNS,
      );
    });

    it(`the canonical path has no dot segments and no empty segments except a trailing slash (${mode})`, () => {
      fc.assert(
        fc.property(anyPath, (target) => {
          const out = tryCanon(target, mode);
          if (out === undefined) return;
          assert.equal(out.path.charAt(0), '/');
          const segs = out.path.split('/').slice(1);
          segs.forEach((s, i) => {
            assert.notEqual(s, '.');
            assert.notEqual(s, '..');
            if (i < segs.length - 1) assert.notEqual(s, '', `empty segment in ${out.path}`);
          });
          if (out.path !== '/') assert.notEqual(segs[0], '');
        }),
        RUNS,
      );
    });

    it(`the canonical path contains only pchar characters, '/' and upper-case escapes of non-unreserved bytes (${mode})`, () => {
      fc.assert(
        fc.property(anyPath, (target) => {
          const out = tryCanon(target, mode);
          if (out === undefined) return;
          assert.match(out.path, PCHAR_PATH);
          for (const m of out.path.matchAll(/%([0-9A-F]{2})/g)) {
            const byte = String.fromCharCode(parseInt(m[1] ?? '', 16));
            assert.doesNotMatch(byte, UNRESERVED_BYTE, `unreserved byte left encoded in ${out.path}`);
            if (mode === 'reject') assert.ok(byte !== '/' && byte !== '\\', `encoded separator kept in ${out.path}`);
          }
        }),
        RUNS,
      );
    });
  }

  it('decoding the canonical path of a fully encoded segment once yields the original text: no byte is decoded twice', () => {
    // encodeURIComponent encodes '%' as %25, so any escape-looking text inside s
    // (e.g. "%2e%2e" or "%61") reaches the canonicalizer as %252e / %2561 and
    // must come back out as exactly that text after ONE decode.
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.array(fc.constantFrom('%', '2', '5', 'e', 'E', 'f', '6', '1', '0', 'a', '.', '/', '\\', ';'), { maxLength: 30 }).map((a) => a.join('')),
    );
    fc.assert(
      fc.property(text, (s) => {
        fc.pre(!s.includes('\u0000') && s !== '.' && s !== '..' && s !== '');
        const out = canonicalizeTarget('/x/' + encodeURIComponent(s), { encodedSlash: 'keep' });
        assert.equal(decodeURIComponent(out.path.slice('/x/'.length)), s);
      }),
      RUNS,
    );
  });

  it('the query never influences the canonical path', () => {
    fc.assert(
      fc.property(tokenPath, fc.string({ unit: 'binary-ascii', maxLength: 20 }), (path, query) => {
        const bare = tryCanon(path.split('?')[0] ?? '', 'reject');
        const withQuery = tryCanon(path.split('?')[0] + '?' + query, 'reject');
        if (bare === undefined || withQuery === undefined) return;
        assert.equal(withQuery.path, bare.path);
        assert.equal(withQuery.query, query);
      }),
      RUNS,
    );
  });

  it('every rejection is a MeshgateError with status 400, never another exception', () => {
    fc.assert(
      fc.property(fc.oneof(anyPath, fc.string({ unit: 'binary', maxLength: 30 })), (target) => {
        for (const mode of MODES) {
          try {
            canonicalizeTarget(target, { encodedSlash: mode });
          } catch (e) {
            assert.ok(e instanceof MeshgateError, `unexpected ${String(e)}`);
            assert.equal(e.status, 400);
          }
        }
      }),
      RUNS,
    );
  });
});
