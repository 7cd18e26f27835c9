/**
 * Request header hygiene (PRODUCT §1.2): the first thing done with a
 * request's headers, so no later stage — and never the upstream — sees an
 * identity header a client made up.
 *
 * Decision on `Connection`-listed headers: RFC 9110 §7.6.1 makes every field
 * named in `Connection` hop-by-hop, so it is removed from the upstream copy —
 * and that removal is the ONLY effect. The sanitizer never mutates its input:
 * stages that need a credential (the JWT stage reads `authorization`) read it
 * from the original headers, so `Connection: authorization` cannot disable
 * authentication, and `Connection: x-meshgate-principal` merely removes the
 * client's forgery before meshgate sets its own. Everything stripped is
 * returned in `removed` so the caller can audit it. Framing and routing
 * fields (`host`, `content-length`) are never removed on a client's request;
 * the caller owns them.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Hop-by-hop fields (RFC 9110 §7.6.1, plus the legacy `keep-alive`/`proxy-connection`). */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/**
 * Identity headers meshgate sets upstream itself, and RFC 9440's client
 * certificate fields that other proxies set: always removed from clients.
 */
export const IDENTITY_HEADERS: ReadonlySet<string> = new Set(['x-forwarded-client-cert', 'client-cert', 'client-cert-chain']);

/**
 * Headers with which frameworks let a request claim another method or URL
 * (Express method-override, Symfony/IIS X-Original-URL): the upstream would
 * execute something other than what was authorized. Removed unless
 * `keepOverride` is set.
 */
export const OVERRIDE_HEADERS: ReadonlySet<string> = new Set([
  'x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-method', 'x-original-url', 'x-rewrite-url',
]);

/** Prefixes of identity headers meshgate sets upstream itself: always removed from clients. */
export const IDENTITY_HEADER_PREFIXES: readonly string[] = Object.freeze(['x-meshgate-']);

/** Forwarding headers removed unless the peer is a trusted forwarder. */
export const FORWARDED_HEADERS: ReadonlySet<string> = new Set(['forwarded', 'x-real-ip']);

/** Prefixes of forwarding / proxy-internal headers removed unless the peer is trusted. */
export const FORWARDED_HEADER_PREFIXES: readonly string[] = Object.freeze(['x-forwarded-', 'x-envoy-']);

/** Fields a `Connection` header cannot make us drop: the caller relies on them for framing and routing. */
const CONNECTION_PROTECTED: ReadonlySet<string> = new Set(['host', 'content-length']);

export interface SanitizeOptions {
  /** Keep `forwarded`, `x-forwarded-*`, `x-real-ip`, `x-envoy-*` (the peer is a trusted forwarder). */
  readonly keepForwarded: boolean;
  /** Keep method/URL override headers (OVERRIDE_HEADERS); off by default. */
  readonly keepOverride?: boolean;
  /** Keep `upgrade` and send `connection: upgrade` for a WebSocket handshake. */
  readonly websocket?: boolean;
}

export interface SanitizedHeaders {
  /** A new header object for the upstream request; the input is not modified. */
  readonly upstream: Record<string, string | string[]>;
  /** Lower-case names of the headers that were stripped, each once, for the audit event. */
  readonly removed: string[];
}

/**
 * Build the upstream header set from a client's request headers: strips
 * hop-by-hop fields, fields named in `Connection`, identity headers meshgate
 * sets itself and (unless `keepForwarded`) forwarding headers. HTTP/2
 * pseudo-headers (`:path`, …) are dropped silently: they are not fields and
 * the upstream request gets its own.
 */
export function sanitizeRequestHeaders(headers: IncomingHttpHeaders, opts: SanitizeOptions): SanitizedHeaders {
  const upstream: Record<string, string | string[]> = {};
  const removed: string[] = [];
  // Node's header object always has lower-case names; a mixed-case `Connection` in a
  // hand-built object is not honoured, which only means fewer optional removals.
  const listed = connectionTokens(headers['connection']);
  const websocket = opts.websocket === true;

  for (const rawName in headers) {
    const value = headers[rawName];
    if (value === undefined) continue;
    // Node lower-cases incoming names already; a hand-built object might not.
    const name = rawName.toLowerCase();
    if (name.charCodeAt(0) === 0x3a) continue; // HTTP/2 pseudo-header
    // A name with `_` is dropped, as nginx does by default: WSGI, CGI and Rack
    // map `_` and `-` to the same variable, so `x_meshgate_principal` would
    // reach the application as meshgate's own identity header.
    if (name.includes('_') || shouldRemove(name, listed, opts.keepForwarded, websocket) || (opts.keepOverride !== true && OVERRIDE_HEADERS.has(name))) {
      if (!removed.includes(name)) removed.push(name);
      continue;
    }
    const copy = typeof value === 'string' ? value : value.slice();
    const existing = upstream[name];
    if (existing === undefined) upstream[name] = copy;
    else upstream[name] = ([] as string[]).concat(existing, copy);
  }

  // The WebSocket handshake needs exactly `Connection: upgrade` upstream
  // (RFC 6455 §4.1); no other connection option is passed on.
  if (websocket && upstream['upgrade'] !== undefined) upstream['connection'] = 'upgrade';
  return { upstream, removed };
}

function shouldRemove(name: string, listed: ReadonlySet<string> | undefined, keepForwarded: boolean, websocket: boolean): boolean {
  if (HOP_BY_HOP_HEADERS.has(name)) return !(websocket && name === 'upgrade');
  if (IDENTITY_HEADERS.has(name)) return true;
  // Every prefixed name starts with "x-": one cheap check skips the prefix scan for most headers.
  const xDash = name.charCodeAt(0) === 0x78 && name.charCodeAt(1) === 0x2d;
  if (xDash && hasPrefix(name, IDENTITY_HEADER_PREFIXES)) return true;
  if (!keepForwarded && (FORWARDED_HEADERS.has(name) || (xDash && hasPrefix(name, FORWARDED_HEADER_PREFIXES)))) return true;
  return listed !== undefined && listed.has(name) && !CONNECTION_PROTECTED.has(name);
}

function hasPrefix(name: string, prefixes: readonly string[]): boolean {
  for (const p of prefixes) if (name.startsWith(p)) return true;
  return false;
}

/** Connection options (RFC 9110 §7.6.1: a comma-separated list of tokens, case-insensitive). */
function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  const out = new Set<string>();
  for (const v of typeof value === 'string' ? [value] : value) {
    for (const part of v.split(',')) {
      const token = part.trim().toLowerCase();
      if (token !== '') out.add(token);
    }
  }
  return out;
}

/**
 * True when the request's body length is ambiguous and it must be refused
 * with 400 (request smuggling defence, RFC 9112 §6.3): both Content-Length and
 * Transfer-Encoding present (§6.3 item 3 — a proxy must not pick one),
 * Transfer-Encoding whose final coding is not `chunked` (item 4), or
 * Content-Length values that differ or are not plain digits (item 5).
 * Accepts Node's joined form (`"5, 5"`) and arrays.
 */
export function hasAmbiguousFraming(headers: IncomingHttpHeaders): boolean {
  const cl = headers['content-length'];
  const te = headers['transfer-encoding'];
  if (cl !== undefined && te !== undefined) return true;
  if (te !== undefined) return !chunkedIsFinal(te);
  if (cl === undefined) return false;
  let first: string | undefined;
  for (const v of typeof cl === 'string' ? [cl] : cl) {
    for (const part of v.split(',')) {
      const n = trimOws(part);
      if (!isDigits(n)) return true;
      // Leading zeros denote the same length ("05" == "5"); compare numerically without overflow risk.
      const norm = n.replace(/^0+(?=\d)/, '');
      if (first === undefined) first = norm;
      else if (norm !== first) return true;
    }
  }
  return first === undefined;
}

function chunkedIsFinal(te: string | string[]): boolean {
  const codings: string[] = [];
  for (const v of typeof te === 'string' ? [te] : te) {
    for (const part of v.split(',')) {
      const c = trimOws(part).toLowerCase();
      if (c !== '') codings.push(c); // empty list elements are allowed (RFC 9110 §5.6.1)
    }
  }
  // chunked must be last and applied once (RFC 9112 §6.1); anything else has no knowable length.
  const i = codings.indexOf('chunked');
  return i !== -1 && i === codings.length - 1;
}

/** Strip optional whitespace (SP / HTAB only, RFC 9110 §5.6.3): a looser trim could read `chunked\u00a0` as chunked. */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return s.slice(a, b);
}

function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
