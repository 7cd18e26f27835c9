/**
 * End-to-end harness: a real meshgate (real TLS with certificates from our own
 * PKI code, real Casbin policy, real audit log) in front of a real recording
 * upstream, all on 127.0.0.1 port 0 in a temporary directory.
 *
 *   const h = await startHarness();
 *   const r = await h.request('/orders', { token: await h.pki.mintToken({ sub: 'alice' }) });
 *   await h.close();
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import { Gateway } from '../../src/app.ts';
import type { AuditRecord } from '../../src/audit/event.ts';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import { configSchema, type Config, type ConfigInput } from '../../src/config/schema.ts';
import { silentLogger, type Logger } from '../../src/core/log.ts';
import type { IssuedCert } from '../../src/pki/issue-cert.ts';
import { makeTestPki, type TestPki } from './pki.ts';

export const MODEL = `[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && (r.act == p.act || p.act == "*")
`;

export const POLICY = `p, anonymous, /healthz, GET, allow
p, anonymous, /public/*, GET, allow
p, reader, /orders, GET, allow
p, reader, /orders/:id, GET, allow
p, alice, /orders/secret, GET, deny
p, admin, /admin/*, *, allow
p, reader, /upload, POST, allow
p, reader, /download, GET, allow
p, reader, /slow, GET, allow
p, reader, /ws, GET, allow
p, reader, /bound/x, GET, allow
p, spiffe://mesh.local/ns/default/sa/client, /svc/*, GET, allow
g, alice, reader
g, root, admin
`;

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface HarnessResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface Harness {
  readonly dir: string;
  readonly pki: TestPki;
  readonly gateway: Gateway;
  readonly config: Config;
  readonly upstreamRequests: RecordedRequest[];
  /** Replace the upstream's behaviour (default: 200 JSON echo). */
  setUpstream(handler: Parameters<typeof createServer>[1]): void;
  request(path: string, opts?: { cert?: IssuedCert | null; token?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<HarnessResponse>;
  /** Sends raw bytes over mTLS and returns the raw response text (for targets undici would not send). */
  raw(text: string, opts?: { cert?: IssuedCert | null; waitMs?: number }): Promise<string>;
  adminUrl(path: string): string;
  /** `https://localhost:PORT` + path, for clients other than `request` (streams, ws). */
  url(path: string): string;
  /** The undici Agent `request` uses for `cert` (default the PKI's client; null = no cert). */
  dispatcher(cert?: IssuedCert | null): Agent;
  /** Every audit record written so far (flushes the writer first; also works after close()). */
  auditEvents(): Promise<AuditRecord[]>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly tlsMode?: 'strict' | 'permissive';
  readonly policy?: string;
  readonly model?: string;
  readonly patch?: (cfg: ConfigInput, dir: string, pki: TestPki) => ConfigInput;
  /** Run the embedded analyzer (default false). */
  readonly analyzer?: boolean;
  /** Start the upstream (default true); false leaves the upstream address closed. */
  readonly upstream?: boolean;
  /** An 'upgrade' listener for the upstream server (e.g. a `ws` WebSocketServer's handleUpgrade). */
  readonly upstreamUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The gateway's logger (default silent), e.g. to inspect what it logs. */
  readonly log?: Logger;
}

function echoUpstream(record: RecordedRequest[]): Parameters<typeof createServer>[1] {
  return (req, res) => {
    record.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ ok: true, url: req.url });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  };
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-e2e-'));
  const pki = await makeTestPki(join(dir, 'certs'));
  writeFileSync(join(dir, 'model.conf'), opts.model ?? MODEL);
  writeFileSync(join(dir, 'policy.csv'), opts.policy ?? POLICY);
  const upstreamRequests: RecordedRequest[] = [];
  let handler = echoUpstream(upstreamRequests);
  const upstream: Server = createServer((req, res) => handler?.(req, res));
  if (opts.upstreamUpgrade) upstream.on('upgrade', opts.upstreamUpgrade);
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const upstreamPort = (upstream.address() as AddressInfo).port;
  if (opts.upstream === false) await new Promise((r) => upstream.close(r));

  let input: ConfigInput = {
    listen: { host: '127.0.0.1', port: 0, headersTimeout: '2s', drainTimeout: '2s' },
    admin: { host: '127.0.0.1', port: 0, token: 'test-admin-token' },
    upstream: { url: `http://127.0.0.1:${upstreamPort}`, responseTimeout: '1s' },
    tls: {
      cert: pki.paths.gatewayCert, key: pki.paths.gatewayKey, clientCa: pki.paths.caCert, crl: pki.paths.crl,
      mode: opts.tlsMode ?? 'strict', trustDomains: [pki.trustDomain],
    },
    jwt: { issuers: [{ issuer: 'https://issuer.mesh.local', audiences: ['orders'], jwksFile: pki.paths.jwks, algorithms: ['ES256'] }] },
    authz: { model: join(dir, 'model.conf'), policy: join(dir, 'policy.csv') },
    routes: [
      { name: 'healthz', match: { pathPrefix: '/healthz' }, auth: 'none' },
      { name: 'public', match: { pathPrefix: '/public/' }, auth: 'none' },
      { name: 'svc', match: { pathPrefix: '/svc/' }, auth: 'mtls' },
      { name: 'bound', match: { pathPrefix: '/bound/' }, auth: 'mtls+jwt', requireBoundToken: true },
      { name: 'default', match: { pathPrefix: '/' }, auth: 'mtls+jwt' },
    ],
    audit: { dir: join(dir, 'audit'), fsyncInterval: '100ms' },
    // Off unless a test asks: the default rules would (rightly) quarantine the adversarial test clients.
    analyzer: { enabled: opts.analyzer ?? false },
  };
  if (opts.patch) input = opts.patch(input, dir, pki);
  const config = configSchema.parse(input);
  const gateway = await Gateway.start(config, { log: opts.log ?? silentLogger, processMetrics: false });
  const base = `https://localhost:${gateway.address.port}`;
  const agents = new Map<IssuedCert | null, Agent>();
  const agentFor = (cert: IssuedCert | null): Agent => {
    let a = agents.get(cert);
    if (!a) {
      a = new Agent({ connect: { ca: pki.ca.certPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}), servername: 'localhost' } });
      agents.set(cert, a);
    }
    return a;
  };
  let closed = false;
  return {
    dir, pki, gateway, config, upstreamRequests,
    setUpstream(h) { handler = h; },
    async request(path, o = {}) {
      const cert = o.cert === undefined ? pki.client : o.cert;
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      const r = await request(`${base}${path}`, { dispatcher: agentFor(cert), method: (o.method ?? 'GET') as 'GET', headers, body: o.body ?? null });
      const text = await r.body.text();
      return { status: r.statusCode, headers: r.headers, text, json: <T>() => JSON.parse(text) as T };
    },
    raw(text, o = {}) {
      const cert = o.cert === undefined ? pki.client : o.cert;
      return new Promise((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: gateway.address.port, ca: pki.ca.certPem, servername: 'localhost', ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) });
        let out = '';
        s.on('secureConnect', () => s.write(text));
        s.on('data', (c: Buffer) => { out += c.toString('latin1'); });
        s.on('error', (e) => (out ? resolve(out) : reject(e)));
        s.on('close', () => resolve(out));
        setTimeout(() => s.destroy(), o.waitMs ?? 3000).unref();
      });
    },
    adminUrl(path) { return `http://127.0.0.1:${gateway.adminAddress.port}${path}`; },
    url(path) { return `${base}${path}`; },
    dispatcher(cert) { return agentFor(cert === undefined ? pki.client : cert); },
    async auditEvents() {
      // The event is recorded just after the response; give the handler a moment, then flush.
      await new Promise((r) => setTimeout(r, 20));
      if (!closed) await gateway.flushAudit();
      const out: AuditRecord[] = [];
      for await (const r of readAuditEvents(config.audit.dir)) out.push(r);
      return out;
    },
    async close() {
      closed = true;
      await Promise.all([...agents.values()].map((a) => a.close()));
      await gateway.stop();
      if (upstream.listening) { upstream.closeAllConnections(); await new Promise((r) => upstream.close(r)); }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Parses the status code from a raw HTTP response. */
export function rawStatus(text: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Parses the JSON body of a raw HTTP/1.1 response (Content-Length framed, as meshgate's replies are). */
export function rawJson<T = Record<string, unknown>>(text: string): T {
  const at = text.indexOf('\r\n\r\n');
  if (at === -1) throw new Error(`no complete response head in ${JSON.stringify(text.slice(0, 200))}`);
  return JSON.parse(text.slice(at + 4)) as T;
}
