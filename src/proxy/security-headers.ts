/**
 * Security response headers from helmet, computed once at start-up by running
 * helmet's middleware against a recording response: the request path then
 * only copies a frozen object. Headers the upstream sets itself win (an
 * upstream web app may need its own CSP); these fill the gaps.
 */
import helmet from 'helmet';

let cached: Readonly<Record<string, string>> | undefined;

export function securityHeaders(): Readonly<Record<string, string>> {
  if (cached) return cached;
  const out: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) { out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value); },
    removeHeader(name: string) { delete out[name.toLowerCase()]; },
    getHeader(name: string) { return out[name.toLowerCase()]; },
  };
  const mw = helmet({
    // An API gateway's own replies are JSON: the strictest CSP costs nothing.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  });
  let done = false;
  mw({} as never, res as never, () => { done = true; });
  if (!done) throw new Error('helmet middleware did not complete synchronously');
  cached = Object.freeze(out);
  return cached;
}
