/**
 * How meshgate's verified request tuple maps onto a model's
 * `[request_definition]`: by token NAME, never by position, so a model can
 * order or omit tokens freely and can never read anything that did not come
 * from verified identity (PRODUCT §1.4: never from a raw header).
 */
import type { AuthzRequest } from '../core/types.ts';

/** The request tokens a model may declare in `r = …`. */
export const REQUEST_TOKENS = ['sub', 'peer', 'obj', 'act', 'claims', 'dom'] as const;

/** One of {@link REQUEST_TOKENS}. */
export type RequestToken = (typeof REQUEST_TOKENS)[number];

const TOKEN_SET: ReadonlySet<string> = new Set(REQUEST_TOKENS);

/** True when `name` is a request token meshgate can supply. */
export function isRequestToken(name: string): name is RequestToken {
  return TOKEN_SET.has(name);
}

/**
 * The trust domain of a peer SPIFFE ID (`spiffe://<td>/…` → `<td>`), or ''
 * when there is no peer. The peer was validated by the TLS stage; anything
 * that does not look like a SPIFFE ID yields '' rather than a guess.
 */
export function trustDomainOf(peer: string): string {
  if (!peer.startsWith('spiffe://')) return '';
  const rest = peer.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash);
}

/** The value handed to the engine for one request token. */
export function requestValue(token: RequestToken, req: AuthzRequest): unknown {
  switch (token) {
    case 'sub': return req.sub;
    case 'peer': return req.peer;
    case 'obj': return req.obj;
    case 'act': return req.act;
    case 'claims': return req.claims;
    case 'dom': return trustDomainOf(req.peer);
  }
}

/**
 * Decision-cache key over every claim-free input (`dom` is derived from
 * `peer` but kept for clarity). JSON encoding keeps it unambiguous even if a
 * JWT subject contains the separator a plain join would use.
 */
export function decisionCacheKey(req: AuthzRequest): string {
  return JSON.stringify([req.sub, req.peer, trustDomainOf(req.peer), req.obj, req.act]);
}
