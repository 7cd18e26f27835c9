/**
 * The one canonical path (PRODUCT §1.2). It is computed once per request and
 * used both for the authorization decision and for the request forwarded
 * upstream, so the service can never see a path other than the one that was
 * authorized.
 *
 * Decisions worth knowing:
 * - Only unreserved characters are percent-decoded (RFC 3986 §2.3, §6.2.2.2);
 *   every other escape is kept and its hex upper-cased (§6.2.2.1). Decoding is
 *   a single left-to-right pass, so `%2561` stays `%2561` — no byte is ever
 *   decoded twice.
 * - Dot segments are removed (§5.2.4) after that decoding, so `%2e%2e` cannot
 *   smuggle a `..` past the authorizer. Empty segments are merged first, and
 *   `..` never climbs above the root.
 * - Printable ASCII that RFC 3986 forbids in a path (`"<>[]^\`{|}`) is
 *   percent-encoded rather than rejected, so `/a|b` and `/a%7Cb` are one path.
 *   Control characters, space, DEL and raw non-ASCII are rejected.
 * - A segment whose part before `;` is `.` or `..` (`..;/`) is rejected: RFC
 *   3986 treats it as an ordinary segment, but Tomcat and Jetty resolve it as
 *   a dot segment — a classic authorizer/upstream path confusion.
 * - The query is forwarded verbatim (it is not part of what is authorized),
 *   but it may not carry control characters, space, non-ASCII or a fragment:
 *   those cannot be forwarded faithfully, and failing here gives a clean 400.
 */
import { Errors, MeshgateError } from '../core/errors.ts';

/** How `%2F`, `%5C` and a raw `\` in the path are treated. */
export type EncodedSlashMode = 'reject' | 'keep';

export interface CanonicalizeOptions {
  /** 'reject' → 400; 'keep' → stays encoded (upper-case) and is never a separator. */
  readonly encodedSlash: EncodedSlashMode;
  /**
   * ';' in the path (matrix parameters): 'reject' (the default) → 400
   * path_parameter; 'keep' → kept verbatim. Tomcat, Jetty and Spring strip
   * `;…` from a segment before routing, so `/secret;x` would be authorized as
   * one path and served as another.
   */
  readonly pathParams?: 'reject' | 'keep' | undefined;
}

export interface CanonicalTarget {
  /** Canonical path; always starts with '/'. */
  readonly path: string;
  /** Query string without the '?', verbatim; '' when there is none. */
  readonly query: string;
}

// Character classes for raw (not percent-encoded) characters of the target.
const C_INVALID = 0; // control, space, DEL
const C_PLAIN = 1; // RFC 3986 pchar other than '%': may appear raw in the canonical path
const C_SLASH = 2;
const C_PERCENT = 3;
const C_ENCODE = 4; // printable but not allowed raw in a path: percent-encode it
const C_BACKSLASH = 5;
const C_HASH = 6;
const C_NUL = 7;
const C_QUESTION = 8;

const CLASS = new Uint8Array(128);
const UNRESERVED = new Uint8Array(256);
const HEX_VALUE = new Int8Array(128).fill(-1);
const HEX_DIGITS = '0123456789ABCDEF';
/** `%XX` upper-case spelling of every byte, precomputed. */
const ESCAPED: string[] = [];
/** Single-character string for each unreserved byte. */
const CHAR: string[] = [];

for (let b = 0; b < 256; b++) {
  ESCAPED.push('%' + HEX_DIGITS.charAt(b >> 4) + HEX_DIGITS.charAt(b & 15));
  CHAR.push(String.fromCharCode(b));
}
for (let c = 0x21; c < 0x7f; c++) CLASS[c] = C_ENCODE;
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') {
  UNRESERVED[ch.charCodeAt(0)] = 1;
  CLASS[ch.charCodeAt(0)] = C_PLAIN;
}
for (const ch of "!$&'()*+,;=:@") CLASS[ch.charCodeAt(0)] = C_PLAIN; // sub-delims, ':' and '@' (RFC 3986 §3.3)
CLASS[0x2f] = C_SLASH;
CLASS[0x25] = C_PERCENT;
CLASS[0x5c] = C_BACKSLASH;
CLASS[0x23] = C_HASH;
CLASS[0x3f] = C_QUESTION;
CLASS[0x00] = C_NUL;
for (let i = 0; i < 16; i++) {
  HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(i)] = i;
}

function fail(spec: (typeof Errors)[keyof typeof Errors], at: number): never {
  // The offset is safe to show; the target itself is attacker-controlled and is not echoed.
  throw new MeshgateError(spec, `at offset ${at}`);
}

/**
 * Canonicalize an HTTP request target (the raw `req.url`). Returns the
 * canonical path and the verbatim query. Throws a MeshgateError with a
 * REQ_* code for anything that is not a well-formed origin-form target
 * (RFC 9112 §3.2.1).
 */
export function canonicalizeTarget(rawTarget: string, opts: CanonicalizeOptions): CanonicalTarget {
  if (typeof rawTarget !== 'string') throw new TypeError('rawTarget must be a string');
  // Only origin-form reaches an origin server's sidecar; absolute-form,
  // authority-form and asterisk-form are for proxies/CONNECT/OPTIONS * (RFC 9112 §3.2).
  if (rawTarget.charCodeAt(0) !== 0x2f) fail(Errors.REQ_TARGET_FORM, 0);

  // Fast path: an already-canonical ASCII path — only plain pchars, no '%',
  // no '//' and no segment starting with '.' — is returned as a slice.
  const len = rawTarget.length;
  let prev = 0x2f;
  let i = 1;
  for (; i < len; i++) {
    const c = rawTarget.charCodeAt(i);
    if (c >= 128) break;
    const cls = CLASS[c];
    if (cls === C_PLAIN) {
      if (c === 0x2e && prev === 0x2f) break;
    } else if (cls === C_SLASH) {
      if (prev === 0x2f) break;
    } else {
      break;
    }
    prev = c;
  }
  const params = opts.pathParams !== 'keep';
  if (i === len) return { path: params ? noParams(rawTarget) : rawTarget, query: '' };
  // Stopped on '?' with a clean prefix: every earlier character passed the checks above.
  if (rawTarget.charCodeAt(i) === 0x3f) {
    const path = rawTarget.slice(0, i);
    return { path: params ? noParams(path) : path, query: checkQuery(rawTarget, i + 1) };
  }

  const q = rawTarget.indexOf('?');
  const pathEnd = q === -1 ? len : q;
  const path = canonicalizeSlow(rawTarget, pathEnd, opts.encodedSlash === 'keep');
  return { path: params ? noParams(path) : path, query: q === -1 ? '' : checkQuery(rawTarget, q + 1) };
}

function noParams(path: string): string {
  const at = path.indexOf(';');
  if (at !== -1) fail(Errors.REQ_PATH_PARAMETER, at);
  return path;
}

function checkQuery(s: string, from: number): string {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x20 && c < 0x7f) {
      if (c === 0x23) fail(Errors.REQ_TARGET_FORM, i); // a fragment is never sent (RFC 9110 §7.1)
      continue;
    }
    fail(c === 0 ? Errors.REQ_PATH_NUL : Errors.REQ_PATH_INVALID_CHAR, i);
  }
  return s.slice(from);
}

function canonicalizeSlow(s: string, end: number, keepSlash: boolean): string {
  const segments: string[] = [];
  let seg = '';
  let runStart = 1; // start of the run of raw characters not yet copied into seg
  for (let i = 1; i < end; i++) {
    const c = s.charCodeAt(i);
    const cls = c < 128 ? CLASS[c] : C_INVALID;
    if (cls === C_PLAIN) continue;
    if (cls === C_SLASH) {
      seg += s.slice(runStart, i);
      pushSegment(segments, seg, i);
      seg = '';
      runStart = i + 1;
      continue;
    }
    seg += s.slice(runStart, i);
    if (cls === C_PERCENT) {
      const h = i + 2 < end ? hexByte(s, i + 1) : -1;
      if (h < 0) fail(Errors.REQ_PATH_ENCODING, i);
      if (h === 0) fail(Errors.REQ_PATH_NUL, i);
      if (UNRESERVED[h] === 1) seg += CHAR[h];
      else if (h === 0x2f) {
        if (!keepSlash) fail(Errors.REQ_PATH_ENCODED_SLASH, i);
        seg += '%2F';
      } else if (h === 0x5c) {
        if (!keepSlash) fail(Errors.REQ_PATH_ENCODED_BACKSLASH, i);
        seg += '%5C';
      } else seg += ESCAPED[h];
      i += 2;
    } else if (cls === C_ENCODE) {
      seg += ESCAPED[c];
    } else if (cls === C_BACKSLASH) {
      // Windows and some frameworks treat '\' as a separator; keeping it raw would let
      // `/public\..\admin` mean different things to the authorizer and the upstream.
      if (!keepSlash) fail(Errors.REQ_PATH_ENCODED_BACKSLASH, i);
      seg += '%5C';
    } else if (cls === C_HASH) {
      fail(Errors.REQ_TARGET_FORM, i);
    } else if (cls === C_NUL) {
      fail(Errors.REQ_PATH_NUL, i);
    } else {
      fail(Errors.REQ_PATH_INVALID_CHAR, i);
    }
    runStart = i + 1;
  }
  seg += s.slice(runStart, end);
  // The last raw segment decides the trailing slash: `/a/`, `/a/.` and `/a/b/..`
  // all denote a directory (RFC 3986 §5.2.4 keeps the slash in each case).
  const trailing = seg === '' || seg === '.' || seg === '..';
  pushSegment(segments, seg, end);
  if (segments.length === 0) return '/';
  return trailing ? '/' + segments.join('/') + '/' : '/' + segments.join('/');
}

function pushSegment(segments: string[], seg: string, at: number): void {
  if (seg === '' || seg === '.') return; // merge '//' and drop '.'
  if (seg === '..') {
    segments.pop(); // never above the root
    return;
  }
  const semi = seg.indexOf(';');
  if (semi !== -1) {
    const head = seg.slice(0, semi);
    if (head === '.' || head === '..') fail(Errors.REQ_PATH_INVALID_CHAR, at);
  }
  segments.push(seg);
}

function hexByte(s: string, at: number): number {
  const a = s.charCodeAt(at);
  const b = s.charCodeAt(at + 1);
  const hi = a < 128 ? (HEX_VALUE[a] ?? -1) : -1;
  const lo = b < 128 ? (HEX_VALUE[b] ?? -1) : -1;
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}
