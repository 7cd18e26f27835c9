/**
 * The configuration rules that span keys (route names unique, upstream TLS
 * only with https, JWKS over https, one subject namespace per issuer, NATS
 * without the embedded analyzer, …), checked after the schema has parsed the
 * file; load.ts turns each issue into file:line:col.
 */
import type { Config } from './schema.ts';

type Path = readonly PropertyKey[];

/** A rule across keys that the configuration breaks: where, and why. */
export interface SemanticIssue {
  readonly path: Path;
  readonly message: string;
}

/** Rules that span keys, which the per-key schema cannot express. */
export function checkSemantics(c: Config): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const seen = new Map<string, number>();
  c.routes.forEach((r, i) => {
    const name = r.name ?? `route-${i}`;
    const first = seen.get(name);
    if (first !== undefined) out.push({ path: ['routes', i, 'name'], message: `duplicate route name "${name}" (also routes[${first}])` });
    else seen.set(name, i);
    // No JWT config would mean no token can ever verify: the route is either
    // dead or, worse, tempting to "fix" by relaxing its auth. Refuse it here.
    if ((r.auth === 'jwt' || r.auth === 'mtls+jwt') && c.jwt === undefined) {
      out.push({ path: ['routes', i, 'auth'], message: `requires jwt config (auth ${r.auth} verifies tokens but there is no jwt section)` });
    }
  });
  const issuers = new Map<string, number>();
  c.jwt?.issuers.forEach((iss, i) => {
    const first = issuers.get(iss.issuer);
    if (first !== undefined) out.push({ path: ['jwt', 'issuers', i, 'issuer'], message: `duplicate issuer (also jwt.issuers[${first}])` });
    else issuers.set(iss.issuer, i);
    // Keys fetched over plain http can be swapped by anyone on the path, which
    // forges every token; loopback (a local key agent, tests) is the exception.
    if (iss.jwksUrl !== undefined && !isSecureUrl(iss.jwksUrl)) {
      out.push({ path: ['jwt', 'issuers', i, 'jwksUrl'], message: 'must be an https:// URL (plain http only to a loopback host)' });
    }
  });
  if (c.upstream.tls !== undefined && !c.upstream.url.startsWith('https:')) {
    // Otherwise the operator believes upstream traffic is mTLS while it is plaintext.
    out.push({ path: ['upstream', 'tls'], message: 'upstream.tls requires an https upstream.url' });
  }
  if (c.audit.sink?.nats !== undefined && c.analyzer.enabled) {
    // Two writers of one alerts.jsonl (the embedded analyzer and the alerts mirror) would duplicate alerts and race on its tail.
    out.push({ path: ['analyzer', 'enabled'], message: 'with audit.sink.nats, detection runs in the `meshgate analyzer run --nats` replicas and this gateway mirrors their alerts into alerts.jsonl: set analyzer.enabled: false' });
  }
  // Two issuers must never be able to mint the same subject (a partner IdP's `sub: root` is not our root).
  const issuerList = c.jwt?.issuers ?? [];
  if (issuerList.length > 1) {
    const seen = new Map<string, number>();
    issuerList.forEach((iss, i) => {
      if (iss.subjectPrefix === undefined) out.push({ path: ['jwt', 'issuers', i, 'subjectPrefix'], message: 'required when more than one issuer is configured (subjects of different issuers must not collide)' });
      else if (seen.has(iss.subjectPrefix)) out.push({ path: ['jwt', 'issuers', i, 'subjectPrefix'], message: `duplicates jwt.issuers[${seen.get(iss.subjectPrefix)}].subjectPrefix` });
      else seen.set(iss.subjectPrefix, i);
    });
  }
  if (c.admin.token !== undefined && c.admin.tokenFile !== undefined) {
    out.push({ path: ['admin', 'tokenFile'], message: 'set admin.token or admin.tokenFile, not both' });
  } else if (c.admin.token !== undefined && c.admin.token.trim() === '') {
    out.push({ path: ['admin', 'token'], message: 'admin token must not be empty' });
  }
  return out;
}

function isSecureUrl(url: string): boolean {
  const u = new URL(url);
  return u.protocol === 'https:' || ['localhost', '[::1]'].includes(u.hostname) || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
}

/** Reads admin.tokenFile into admin.token; problems are appended to `out`. */
