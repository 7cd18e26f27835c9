/**
 * The route table: first match wins; no match is a 404, never an unchecked
 * pass (PRODUCT §2). Matching runs on the canonical path only.
 *
 * `pathPrefix` is segment-aware, like Envoy's `path_separated_prefix`: `/api`
 * matches `/api` and `/api/x` but not `/apix`, so a prefix can never leak into
 * a sibling route. A prefix ending in `/` (including `/` itself) matches any
 * path that starts with it.
 */
import type { RouteConfig } from '../config/schema.ts';
import type { Route } from '../core/types.ts';

export interface RouteTable {
  readonly routes: readonly Route[];
  /** The first route matching (canonical path, method), or undefined. */
  match(path: string, method: string): Route | undefined;
}

function prefixMatches(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false;
  if (prefix.endsWith('/') || path.length === prefix.length) return true;
  return path.charCodeAt(prefix.length) === 47; // '/'
}

export function compileRoutes(configs: readonly RouteConfig[]): RouteTable {
  const routes: Route[] = configs.map((c, index) => Object.freeze({
    name: c.name ?? `route-${index}`,
    index,
    match: Object.freeze({ ...c.match, methods: c.match.methods ? Object.freeze([...c.match.methods]) : undefined }),
    auth: c.auth,
    requireBoundToken: c.requireBoundToken,
  }));
  const matchers = routes.map((r) => {
    const methods = r.match.methods ? new Set(r.match.methods) : undefined;
    const { path: exact, pathPrefix } = r.match;
    return (path: string, method: string): boolean =>
      (methods === undefined || methods.has(method)) &&
      (exact !== undefined ? path === exact : prefixMatches(pathPrefix as string, path));
  });
  return Object.freeze({
    routes: Object.freeze(routes),
    match(path: string, method: string): Route | undefined {
      for (let i = 0; i < matchers.length; i++) if ((matchers[i] as (p: string, m: string) => boolean)(path, method)) return routes[i];
      return undefined;
    },
  });
}
