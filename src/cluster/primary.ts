/**
 * The cluster primary (`workers` > 1): forks one data-plane worker per
 * core sharing the listener, and runs the control plane once for all of
 * them — the single audit writer (one verifiable hash chain, fed by the
 * workers over IPC), the embedded analyzer following it, and the admin
 * listener with /metrics aggregated across workers, /readyz over every
 * worker's components, and the review UI. Hot reload and quarantine need no
 * coordination: every worker watches the same files — and, with
 * `audit.sink.nats`, the decisions KV bucket (src/stream/gateway-nats.ts),
 * while the primary ships the chain it writes and mirrors the replicas'
 * alerts into its alerts.jsonl.
 */
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import { createAdminServer } from '../admin/server.ts';
import { startEmbeddedAnalyzer } from '../analyzer/embedded.ts';
import { AuditWriter } from '../audit/writer.ts';
import { createPolicyStore } from '../authz/policy-store.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { ComponentStatus } from '../core/status.ts';
import { explainRequest } from '../policy/explain.ts';
import { TlsMaterialStore } from '../tls/material.ts';
import { socketPeer } from '../tls/peer.ts';
import { startGatewayNats, type GatewayNats } from '../stream/gateway-nats.ts';
import { AUDIT_MSG, FLUSH_REQ, FLUSH_RES } from './ipc-audit-sink.ts';
import { STATUS_MSG, STOP_MSG } from './worker.ts';
import type { AuditEvent } from '../audit/event.ts';

interface WorkerReport { ready: boolean; listening: boolean; draining: boolean; components: ComponentStatus[]; at: number }

export interface Primary {
  readonly adminAddress: { host: string; port: number };
  /** Resolves once every worker serves the listener. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/** Forks `n` workers running `argv` (this same `meshgate run` command) and runs the control plane. */
export async function startPrimary(cfg: Config, opts: { log: Logger; n: number; argv: string[] }): Promise<Primary> {
  const { log, n } = opts;
  const audit = new AuditWriter(cfg.audit, { logger: log });
  await audit.open();
  const analyzer = cfg.analyzer.enabled ? await startEmbeddedAnalyzer(cfg, { logger: log, feed: audit }) : undefined;
  // For the UI's "explain against the current policy"; the workers hold their own copies.
  const policy = await createPolicyStore({ modelPath: cfg.authz.model, policyPath: cfg.authz.policy, decisionCacheEntries: 0, engine: cfg.authz.engine, watch: true, logger: log });
  const material = cfg.admin.tls ? await TlsMaterialStore.open(cfg.tls, log) : undefined;

  // Before any worker is forked: a stream that contradicts the config stops start-up, as with workers: 1.
  const own = new Registry();
  let nats: GatewayNats | undefined;
  try {
    nats = cfg.audit.sink?.nats ? await startGatewayNats(cfg, log, { role: 'primary', logHead: () => audit.stats().lastSeq, registry: own }) : undefined;
  } catch (err) {
    await analyzer?.stop();
    await audit.close();
    policy.close();
    material?.close();
    throw err;
  }

  const reports = new Map<number, WorkerReport>();
  let stopping = false;
  const onMessage = (worker: Worker, m: { t?: string; events?: AuditEvent[]; id?: number } & Partial<WorkerReport>): void => {
    if (m?.t === AUDIT_MSG && Array.isArray(m.events)) {
      for (const e of m.events) audit.append(e);
    } else if (m?.t === FLUSH_REQ) {
      audit.flush().catch(() => {}).finally(() => { if (worker.isConnected()) worker.send({ t: FLUSH_RES, id: m.id }); });
    } else if (m?.t === STATUS_MSG) {
      reports.set(worker.id, { ready: m.ready === true, listening: m.listening === true, draining: m.draining === true, components: m.components ?? [], at: Date.now() });
    }
  };
  cluster.setupPrimary({ exec: process.argv[1], args: opts.argv, serialization: 'advanced' });
  cluster.on('message', onMessage);
  const fork = (): Worker => cluster.fork({ MESHGATE_CLUSTER_WORKER: '1' });
  const workers = new Set<Worker>();
  let restarts = 0;
  cluster.on('exit', (worker, code, signal) => {
    workers.delete(worker);
    reports.delete(worker.id);
    if (stopping) return;
    restarts++;
    log.error({ worker: worker.process.pid, code, signal }, 'worker exited; starting a new one');
    // Back off so that a worker that cannot start does not spin.
    setTimeout(() => { if (!stopping) workers.add(fork()); }, Math.min(10_000, 250 * restarts)).unref();
  });
  for (let i = 0; i < n; i++) workers.add(fork());

  const workerComponents = (): ComponentStatus[] => {
    const out: ComponentStatus[] = [];
    const now = Date.now();
    for (const [id, r] of reports) {
      const fresh = now - r.at < 5000;
      out.push({ name: `worker-${id}`, ready: fresh && r.ready, state: !fresh ? 'unresponsive' : r.ready ? 'ok' : 'unavailable', lastLoad: new Date(r.at).toISOString(), lastError: undefined, reloads: 0, reloadFailures: 0 });
      if (id === Math.min(...reports.keys())) for (const c of r.components) out.push(c);
    }
    return out;
  };
  // /metrics: the workers' registries summed by prom-client, plus the primary's own.
  const aggregator = new AggregatorRegistry();
  const components = (): ComponentStatus[] => [...workerComponents(), policy.status(), ...(analyzer ? [analyzer.status()] : []), ...(nats ? nats.components() : [])];

  const gauge = (name: string, help: string, read: () => number | undefined): void => {
    new Gauge({ name, help, registers: [own], collect() { const v = read(); if (v !== undefined) this.set(v); } });
  };
  gauge('meshgate_workers', 'Worker processes serving the listener', () => workers.size);
  gauge('meshgate_worker_restarts', 'Workers restarted after an unexpected exit', () => restarts);
  gauge('meshgate_audit_queue_events', 'Audit events waiting to be written', () => audit.stats().queued);
  gauge('meshgate_audit_written_events', 'Audit events written since start', () => audit.stats().written);
  gauge('meshgate_audit_write_errors', 'Audit write errors since start', () => audit.stats().errors);
  gauge('meshgate_audit_dropped_events', 'Audit events dropped because the queue limit was hit', () => audit.stats().dropped);
  gauge('meshgate_analyzer_events_processed', 'Audit events the embedded analyzer has processed', () => analyzer?.stats().analyzer?.eventsProcessed);
  gauge('meshgate_analyzer_lag_events', 'Audit events written but not yet analyzed', () => analyzer?.stats().analyzer?.lagEvents);
  const metrics = {
    registry: {
      contentType: own.contentType,
      async metrics(): Promise<string> {
        const [fromWorkers, mine] = await Promise.all([aggregator.clusterMetrics(), own.metrics()]);
        return `${fromWorkers}\n${mine}`;
      },
    },
  };
  const adminTrust = new Set(cfg.tls.trustDomains);
  const admin = createAdminServer({
    metrics, components,
    listening: () => reports.size > 0 && [...reports.values()].every((r) => r.listening),
    draining: () => stopping,
    ui: {
      token: cfg.admin.token, spiffeIds: cfg.admin.spiffeIds, sessionTtlMs: cfg.admin.sessionTtl,
      auditDir: cfg.audit.dir, analyzerDir: cfg.analyzer.dir as string, log,
      explain: (q) => explainRequest(cfg, q, { authorizer: policy.current(), logger: log }),
    },
    tls: material ? {
      context: () => material.current.options,
      onChange: (cb) => material.onChange((m) => cb(m.options)),
      peerSpiffeId: (socket) => { const p = socketPeer(socket, adminTrust, false); return p.kind === 'peer' ? p.peer.spiffeId : undefined; },
    } : undefined,
  });
  admin.listen(cfg.admin.port, cfg.admin.host);
  await once(admin, 'listening');
  const a = admin.address() as AddressInfo;
  log.info({ workers: n, admin: { host: a.address, port: a.port }, pid: process.pid }, 'meshgate primary started');

  const ready = (async () => {
    while (!stopping && !(reports.size >= n && [...reports.values()].every((r) => r.listening))) await new Promise((r) => setTimeout(r, 50));
  })();

  return {
    adminAddress: { host: a.address, port: a.port },
    ready,
    async stop(): Promise<void> {
      if (stopping) return;
      stopping = true;
      const exits = [...workers].map((w) => new Promise<void>((resolve) => { if (w.isDead()) resolve(); else w.once('exit', () => resolve()); }));
      for (const w of workers) if (w.isConnected()) w.send({ t: STOP_MSG });
      // Workers drain (listen.drainTimeout) and flush their audit events before they exit.
      const hard = setTimeout(() => { for (const w of workers) w.process.kill('SIGKILL'); }, cfg.listen.drainTimeout + 5000);
      await Promise.all(exits);
      clearTimeout(hard);
      cluster.off('message', onMessage);
      await analyzer?.stop();
      // Every worker's events are in the writer now: flush them, then ship what was flushed.
      await audit.flush().catch(() => {});
      await nats?.close();
      await audit.close();
      policy.close();
      material?.close();
      await new Promise<void>((resolve) => { admin.close(() => resolve()); admin.closeAllConnections(); });
      log.info('meshgate stopped');
    },
  };
}
