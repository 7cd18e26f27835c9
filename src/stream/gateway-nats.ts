/**
 * What one meshgate process runs on NATS when `audit.sink.nats` is set,
 * by its role (docs/operations.md "Workers"):
 *
 * - `gateway` (workers: 1): everything — the shipper, the decisions watch
 *   (gateway-sink.ts) and the alerts mirror (alerts-mirror.ts);
 * - `primary` (workers > 1): what belongs to the one audit chain and the one
 *   analyzer state folder — the shipper of the log it writes, and the alerts
 *   mirror into its alerts.jsonl; it serves no requests, so no watch;
 * - `worker` (workers > 1): the decisions watch only, on a connection of its
 *   own. Every worker loads the bucket itself, so a worker started or
 *   restarted by the primary enforces the full state before it serves, and
 *   keeps enforcing the last known state when NATS or the primary is away —
 *   nothing depends on an IPC message arriving.
 *
 *   const nats = cfg.audit.sink?.nats ? await startGatewayNats(cfg, log, { role, logHead, registry }) : undefined;
 */
import path from 'node:path';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { ComponentStatus } from '../core/status.ts';
import { QuarantineTable } from '../decisions/quarantine-table.ts';
import { startAlertsMirror, type AlertsMirror, type AlertsMirrorStats } from './alerts-mirror.ts';
import { connectNats } from './connect-nats.ts';
import { KV_DECISIONS_CACHE, startGatewayNatsSink, type QuarantineSource } from './gateway-sink.ts';
import { registerShipperMetrics } from './shipper-metrics.ts';
import { startShipper } from './start-shipper.ts';
import { watchDecisionsKv } from './watch-decisions-kv.ts';

/** Which process this is: a single-process gateway, a cluster primary or a cluster worker. */
export type NatsRole = 'gateway' | 'primary' | 'worker';

/** The NATS parts of one process. */
export interface GatewayNats {
  /** Decisions from the KV bucket (roles `gateway` and `worker`, with `watchDecisions`). */
  readonly quarantine: QuarantineSource | undefined;
  /** For /readyz detail. */
  components(): ComponentStatus[];
  /** Stops everything; the shipper ships what the log holds first (bounded). */
  close(): Promise<void>;
}

export interface GatewayNatsDeps {
  readonly role: NatsRole;
  /** The audit writer's newest seq (roles `gateway`, `primary`). */
  readonly logHead?: () => number;
  /** Where the shipper and mirror metrics go (the primary's own registry in a cluster). */
  readonly registry?: Registry;
}

/** Registers the alerts mirror counters on `registry`. */
function registerMirrorMetrics(registry: Registry, stats: () => AlertsMirrorStats): void {
  const counter = (name: string, help: string, read: (s: AlertsMirrorStats) => number): void => {
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read(stats())); } });
  };
  counter('meshgate_nats_alerts_mirrored_total', 'Alert emissions of the alerts stream appended to alerts.jsonl', (s) => s.mirrored);
  counter('meshgate_nats_alerts_mirror_duplicates_total', 'Alert emissions of the alerts stream already in alerts.jsonl (skipped)', (s) => s.duplicates);
}

async function mirrorAlerts(cfg: Config, log: Logger, connection: Parameters<typeof startAlertsMirror>[0]['connection'], registry: Registry | undefined): Promise<AlertsMirror> {
  const nats = cfg.audit.sink?.nats;
  if (!nats || cfg.analyzer.dir === undefined) throw new TypeError('the alerts mirror needs audit.sink.nats and a resolved analyzer.dir');
  const mirror = await startAlertsMirror({
    connection, stream: nats.analyzer.alertsStream, subjectPrefix: nats.analyzer.alertsSubjectPrefix, dir: cfg.analyzer.dir, log,
  });
  if (registry) registerMirrorMetrics(registry, () => mirror.stats());
  return mirror;
}

/** Starts the NATS parts of `role`; `cfg.audit.sink.nats` must be set. */
export async function startGatewayNats(cfg: Config, log: Logger, deps: GatewayNatsDeps): Promise<GatewayNats> {
  const nats = cfg.audit.sink?.nats;
  if (!nats) throw new TypeError('startGatewayNats needs audit.sink.nats');
  if (deps.role === 'worker') {
    if (!nats.watchDecisions) return { quarantine: undefined, components: () => [], close: async () => {} };
    const abort = new AbortController();
    const connection = connectNats(nats, { name: `meshgate-${nats.service}-worker-${process.pid}`, log, signal: abort.signal });
    connection.catch(() => {});
    const table = new QuarantineTable();
    const watch = await watchDecisionsKv({
      connection, bucket: nats.decisionsBucket, table, log: log.child({ component: 'quarantine-kv' }),
      cacheFile: path.join(cfg.audit.dir, KV_DECISIONS_CACHE),
    });
    return {
      quarantine: table,
      components: () => [watch.status()],
      close: async () => {
        await watch.close();
        abort.abort();
        await connection.then((nc) => nc.close(), () => {}).catch(() => {});
      },
    };
  }
  if (deps.role === 'primary') {
    const sink = await startShipper(cfg, log, deps.logHead ? { logHead: deps.logHead } : {});
    if (deps.registry) registerShipperMetrics(deps.registry, () => sink.stats());
    let mirror: AlertsMirror;
    try {
      mirror = await mirrorAlerts(cfg, log, sink.connection, deps.registry);
    } catch (err) {
      await sink.close();
      throw err;
    }
    return {
      quarantine: undefined,
      components: () => [sink.status(), mirror.status()],
      close: async () => { await mirror.close(); await sink.close(); },
    };
  }
  const sink = await startGatewayNatsSink(cfg, log, { logHead: deps.logHead ?? (() => 0), ...(deps.registry ? { registry: deps.registry } : {}) });
  let mirror: AlertsMirror;
  try {
    mirror = await mirrorAlerts(cfg, log, sink.sink.connection, deps.registry);
  } catch (err) {
    await sink.close();
    throw err;
  }
  return {
    quarantine: sink.quarantine,
    components: () => [...sink.components(), mirror.status()],
    close: async () => { await mirror.close(); await sink.close(); },
  };
}
