/**
 * Composition root: the only module that knows every feature folder. It
 * builds the components from a validated Config, wires them into the
 * pipeline and the listeners, and owns start-up and graceful shutdown.
 */
import { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metrics } from './admin/metrics.ts';
import { createAdminServer, readiness, type Readiness } from './admin/server.ts';
import { AuditWriter } from './audit/writer.ts';
import type { AuditSinkLike } from './cluster/ipc-audit-sink.ts';
import { startEmbeddedAnalyzer } from './analyzer/embedded.ts';
import { decisionsPath } from './decisions/decisions-file.ts';
import { watchQuarantine } from './decisions/watch-quarantine.ts';
import { eitherQuarantine } from './stream/gateway-sink.ts';
import { startGatewayNats, type GatewayNats } from './stream/gateway-nats.ts';
import { createPolicyStore } from './authz/policy-store.ts';
import type { Config } from './config/schema.ts';
import { SHIPPED_DETECTIONS } from './config/load.ts';
import type { Logger } from './core/log.ts';
import type { ComponentStatus } from './core/status.ts';
import { JwtVerifier } from './jwt/verifier.ts';
import { Upstream } from './proxy/forward.ts';
import { createPipeline } from './proxy/pipeline.ts';
import { closeTunnels, createListener, startDraining } from './proxy/server.ts';
import { compileRoutes } from './routes/table.ts';
import { watchRoutes } from './config/route-reloader.ts';
import { TlsMaterialStore } from './tls/material.ts';
import { parseSubjectAltName, socketPeer } from './tls/peer.ts';
import { explainRequest } from './policy/explain.ts';

export interface GatewayOptions {
  readonly log: Logger;
  /** The config file, when there is one: its route table is then hot-reloaded. */
  readonly configFile?: string | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Register default process metrics (off in tests that start many gateways). */
  readonly processMetrics?: boolean;
  /**
   * Cluster worker (workers > 1): audit events go to this sink (the primary
   * writes the one chain), and the admin listener, the embedded analyzer and
   * the NATS shipper run in the primary instead of here.
   */
  readonly worker?: { readonly audit: AuditSinkLike } | undefined;
}

async function openAuditWriter(cfg: Config, log: Logger): Promise<AuditWriter> {
  const writer = new AuditWriter(cfg.audit, { logger: log });
  await writer.open();
  return writer;
}

function gatewayIdentity(certPem: string | Buffer | undefined): string | undefined {
  if (!certPem) return undefined;
  try {
    const san = new X509Certificate(certPem).subjectAltName;
    return san ? parseSubjectAltName(san)?.find((s) => s.type === 'URI' && s.value.startsWith('spiffe://'))?.value : undefined;
  } catch {
    return undefined;
  }
}

export class Gateway {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly #log: Logger;
  readonly #listener: Server;
  readonly #admin: Server | undefined;
  readonly #closers: (() => Promise<void> | void)[];
  readonly #inflight: { count: number };
  readonly #components: () => ComponentStatus[];
  readonly #audit: AuditSinkLike;
  readonly #lifecycle: { draining: boolean };
  #stopping: Promise<void> | undefined;

  private constructor(cfg: Config, log: Logger, parts: {
    listener: Server; admin: Server | undefined; metrics: Metrics; closers: (() => Promise<void> | void)[];
    inflight: { count: number }; components: () => ComponentStatus[]; lifecycle: { draining: boolean }; audit: AuditSinkLike;
  }) {
    this.config = cfg;
    this.#log = log;
    this.#listener = parts.listener;
    this.#admin = parts.admin;
    this.metrics = parts.metrics;
    this.#closers = parts.closers;
    this.#inflight = parts.inflight;
    this.#components = parts.components;
    this.#lifecycle = parts.lifecycle;
    this.#audit = parts.audit;
  }

  /** Resolves when every audit event recorded so far is written and fsynced. */
  flushAudit(): Promise<void> {
    // Once stop() has begun the writer is closing; closing flushes everything.
    if (this.#stopping) return this.#stopping;
    return this.#audit.flush();
  }

  /** Builds every component (failing closed on any broken input) and starts listening. */
  static async start(given: Config, opts: GatewayOptions): Promise<Gateway> {
    const log = opts.log;
    // A config built in code (tests, tools) may leave the analyzer defaults that loadConfig resolves.
    const cfg: Config = given.analyzer.dir !== undefined && given.analyzer.rules !== undefined ? given : {
      ...given,
      analyzer: { ...given.analyzer, dir: given.analyzer.dir ?? resolve(given.audit.dir, 'analyzer'), rules: given.analyzer.rules ?? SHIPPED_DETECTIONS },
    };
    const closers: (() => Promise<void> | void)[] = [];
    try {
      const material = await TlsMaterialStore.open(cfg.tls, log);
      closers.push(() => material.close());
      const policy = await createPolicyStore({
        modelPath: cfg.authz.model, policyPath: cfg.authz.policy,
        decisionCacheEntries: cfg.authz.decisionCacheEntries, engine: cfg.authz.engine, watch: true, logger: log,
      });
      closers.push(() => policy.close());
      // ★ Shadow policy: a candidate evaluated beside the enforced one, hot-reloaded the same way.
      const shadow = cfg.authz.shadow ? await createPolicyStore({
        modelPath: cfg.authz.shadow.model, policyPath: cfg.authz.shadow.policy,
        decisionCacheEntries: cfg.authz.decisionCacheEntries, engine: cfg.authz.engine, watch: true, logger: log, name: 'shadow-policy',
      }) : undefined;
      if (shadow) closers.push(() => shadow.close());
      const jwt = cfg.jwt ? await JwtVerifier.create(cfg.jwt, { logger: log }) : undefined;
      if (jwt) closers.push(() => jwt.close());
      const worker = opts.worker;
      const writer = worker ? undefined : await openAuditWriter(cfg, log);
      const audit: AuditSinkLike = worker?.audit ?? (writer as AuditWriter);
      closers.push(() => audit.close());
      // ★ Closed loop: quarantine decisions (from detection rules or `meshgate decisions add`)
      //   are read from the analyzer's decisions.json and enforced within a second of being written.
      const quarantine = await watchQuarantine(decisionsPath(cfg.analyzer.dir as string), { logger: log });
      closers.push(() => quarantine.close());
      // The embedded analyzer follows this gateway's audit log in a worker thread, off the request path.
      const analyzer = cfg.analyzer.enabled && !worker ? await startEmbeddedAnalyzer(cfg, { logger: log, feed: writer }) : undefined;
      if (analyzer) closers.push(() => analyzer.stop());
      const upstream = new Upstream(cfg.upstream, cfg.listen.maxBodyBytes);
      let routes = compileRoutes(cfg.routes);
      const routeReloader = opts.configFile ? watchRoutes(opts.configFile, cfg, (r) => { routes = compileRoutes(r); }, { log, env: opts.env }) : undefined;
      if (routeReloader) closers.push(() => routeReloader.close());
      const inflight = { count: 0 };
      const components = (): ComponentStatus[] => [
        ...(routeReloader ? [routeReloader.status()] : []), material.status(), policy.status(),
        ...(shadow ? [shadow.status()] : []), ...(jwt ? jwt.status() : []),
        quarantine.status(), ...(analyzer ? [analyzer.status()] : []),
        ...(nats ? nats.components() : []),
      ];
      const metrics = new Metrics({
        components,
        audit: worker ? undefined : () => audit.stats(),
        inflight: () => inflight.count,
        certNotAfter: () => material.current.notAfter,
        analyzer: analyzer ? () => analyzer.stats().analyzer : undefined,
      }, opts.processMetrics ?? true);
      // --- Scale-out on NATS JetStream (audit.sink.nats; src/stream/, docs/operations.md): the shipper
      //     publishes this gateway's audit log, the replicas' alerts are mirrored into alerts.jsonl, and
      //     quarantines from the KV bucket are enforced beside decisions.json. A cluster worker only watches
      //     the bucket: the primary, which writes the one audit chain, ships it and mirrors the alerts.
      const nats: GatewayNats | undefined = cfg.audit.sink?.nats
        ? await startGatewayNats(cfg, log, worker ? { role: 'worker' } : { role: 'gateway', logHead: () => audit.stats().lastSeq, registry: metrics.registry })
        : undefined;
      // Runs before the audit writer closes (closers run in reverse): flush, then ship what was flushed.
      if (nats) closers.push(async () => { await audit.flush().catch(() => {}); await nats.close(); });
      const quarantineLookup = eitherQuarantine(quarantine.table, nats?.quarantine);
      // --- end NATS
      const admit = createPipeline({
        routes: () => routes,
        authorizer: () => policy.current(),
        shadow: shadow ? () => shadow.current() : undefined,
        quarantine: () => quarantineLookup,
        jwt,
        trustedForwarders: new Set(cfg.headers.trustedForwarders),
        encodedSlash: cfg.headers.encodedSlash,
        pathParams: cfg.headers.pathParams,
        keepOverrideHeaders: cfg.headers.keepOverrideHeaders,
        maxHeaders: cfg.listen.maxHeaders,
        maxBodyBytes: cfg.listen.maxBodyBytes,
        forwardClaims: cfg.jwt?.forwardClaims ?? [],
        setClientCertHeader: cfg.tls.forwardClientCert === 'sanitize_set',
        gatewayId: gatewayIdentity(material.current.options.cert as Buffer | undefined),
      });
      const listener = createListener(cfg, {
        admit, upstream, audit, metrics, log, inflight, material,
        trustDomains: new Set(cfg.tls.trustDomains),
        strictTls: cfg.tls.mode === 'strict',
        tunnelIdleMs: cfg.listen.idleTimeout,
        tunnelAllowed: (s) => quarantineLookup.match({
          spiffe: s.peer?.spiffeId, sub: s.principal?.sub, jti: s.principal?.jti, cert: s.peer?.fingerprint256, ip: s.input.source.ip,
        }, Date.now()) === undefined,
        onHandshakeFailure: (reason) => metrics.handshakeFailure(reason),
      });
      const lifecycle = { draining: false };
      const adminTrust = new Set(cfg.tls.trustDomains);
      const admin = worker ? undefined : createAdminServer({
        metrics, components,
        listening: () => listener.listening,
        draining: () => lifecycle.draining,
        // The audit review UI/API (docs/ui.md); explain re-runs a recorded request against the live policy.
        ui: {
          token: cfg.admin.token, spiffeIds: cfg.admin.spiffeIds, sessionTtlMs: cfg.admin.sessionTtl,
          auditDir: cfg.audit.dir, analyzerDir: cfg.analyzer.dir as string, log,
          explain: (q) => explainRequest(cfg, q, { authorizer: policy.current(), logger: log }),
        },
        tls: cfg.admin.tls ? {
          context: () => material.current.options,
          onChange: (cb) => material.onChange((m) => cb(m.options)),
          peerSpiffeId: (socket) => { const p = socketPeer(socket, adminTrust, false); return p.kind === 'peer' ? p.peer.spiffeId : undefined; },
        } : undefined,
      });
      if (!['127.0.0.1', '::1', 'localhost'].includes(cfg.admin.host) && !(cfg.admin as { tls?: unknown }).tls) {
        log.warn({ admin: cfg.admin.host }, 'the admin listener is reachable beyond loopback over plain HTTP: the admin token would cross the network in clear text (set admin.tls or bind it to loopback)');
      }
      listener.listen(cfg.listen.port, cfg.listen.host);
      admin?.listen(cfg.admin.port, cfg.admin.host);
      await Promise.all([once(listener, 'listening'), ...(admin ? [once(admin, 'listening')] : [])]);
      // Shutdown order: stop the watchers, then let the upstream pool and the audit writer drain last.
      closers.push(() => upstream.close());
      const gw = new Gateway(cfg, log, { listener, admin, metrics, closers, inflight, components, lifecycle, audit });
      log.info({ listen: gw.address, admin: admin ? gw.adminAddress : 'primary', upstream: cfg.upstream.url, tlsMode: cfg.tls.mode, pid: process.pid }, 'meshgate listening');
      return gw;
    } catch (e) {
      for (const c of closers.reverse()) { try { await c(); } catch { /* best effort */ } }
      throw e;
    }
  }

  get address(): { host: string; port: number } {
    const a = this.#listener.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  get adminAddress(): { host: string; port: number } {
    if (!this.#admin) throw new TypeError('this gateway is a cluster worker: the admin listener runs in the primary');
    const a = this.#admin.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  readiness(): Readiness {
    return readiness({ metrics: this.metrics, components: this.#components, listening: () => this.#listener.listening, draining: () => this.#lifecycle.draining });
  }

  /**
   * Graceful shutdown: report not-ready, stop accepting, let in-flight
   * requests finish (up to listen.drainTimeout), then flush the audit log.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#lifecycle.draining = true;
      startDraining(this.#listener);
      const closed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
      this.#listener.closeIdleConnections();
      const deadline = Date.now() + this.config.listen.drainTimeout;
      while (this.#inflight.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (this.#inflight.count > 0) this.#log.warn({ inflight: this.#inflight.count }, 'drain timeout: closing remaining connections');
      this.#listener.closeAllConnections();
      closeTunnels(this.#listener);
      await closed;
      // Requests cut off above record their audit event only as their sockets
      // finish closing: let them, or the writer would close before they append.
      const grace = Date.now() + 1000;
      while (this.#inflight.count > 0 && Date.now() < grace) await new Promise((r) => setTimeout(r, 5));
      for (const c of this.#closers.reverse()) {
        try { await c(); } catch (e) { this.#log.error({ err: e }, 'error during shutdown'); }
      }
      const admin = this.#admin;
      if (admin) await new Promise<void>((resolve) => { admin.close(() => resolve()); admin.closeAllConnections(); });
      this.#log.info('meshgate stopped');
    })();
    return this.#stopping;
  }
}
