/**
 * The shipper and decisions-watch half of a gateway's NATS parts, started
 * by gateway-nats.ts (`startGatewayNats`, which adds the alerts mirror and
 * picks the parts by role: single process, cluster primary or worker):
 *
 * - the shipper (start-shipper.ts) with its metrics on the gateway registry;
 * - the quarantine decisions of the KV bucket in a QuarantineTable of their
 *   own (watch-decisions-kv.ts), to be consulted beside the decisions.json
 *   table: `eitherQuarantine(fileTable, nats.quarantine)`.
 */
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { Decision } from '../analyzer/types.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { ComponentStatus } from '../core/status.ts';
import { QuarantineTable, type QuarantineKeys } from '../decisions/quarantine-table.ts';
import { registerShipperMetrics } from './shipper-metrics.ts';
import { startShipper, type NatsSink } from './start-shipper.ts';
import { watchDecisionsKv, type DecisionsKvWatch } from './watch-decisions-kv.ts';

/** The gateway's NATS parts. */
export interface GatewayNatsSink {
  readonly sink: NatsSink;
  /** Decisions from the KV bucket; undefined when `watchDecisions` is off. */
  readonly quarantine: QuarantineTable | undefined;
  /** For /readyz detail: the shipper (always ready) and the decisions watch. */
  components(): ComponentStatus[];
  /** Stops the watch, then the shipper (bounded), then the connection. */
  close(): Promise<void>;
}

/** Local copy of the KV decisions, enforced while NATS is unreachable at start-up. */
export const KV_DECISIONS_CACHE = 'nats-decisions.json';

/** Starts the shipper and the decisions watch for a gateway; `cfg.audit.sink.nats` must be set. */
export async function startGatewayNatsSink(cfg: Config, log: Logger, deps: { logHead: () => number; registry?: Registry }): Promise<GatewayNatsSink> {
  const nats = cfg.audit.sink?.nats;
  if (!nats) throw new TypeError('startGatewayNatsSink needs audit.sink.nats');
  const sink = await startShipper(cfg, log, { logHead: deps.logHead });
  if (deps.registry) registerShipperMetrics(deps.registry, () => sink.stats());
  let watch: DecisionsKvWatch | undefined;
  let table: QuarantineTable | undefined;
  if (nats.watchDecisions) {
    table = new QuarantineTable();
    try {
      watch = await watchDecisionsKv({
        connection: sink.connection, bucket: nats.decisionsBucket, table, log: log.child({ component: 'quarantine-kv' }),
        cacheFile: path.join(cfg.audit.dir, KV_DECISIONS_CACHE),
      });
    } catch (err) {
      await sink.close();
      throw err;
    }
  }
  return {
    sink,
    quarantine: table,
    components: () => [sink.status(), ...(watch ? [watch.status()] : [])],
    close: async () => {
      await watch?.close();
      await sink.close();
    },
  };
}

/** What a quarantine lookup answers (QuarantineTable and the pipeline's QuarantineLookup have this shape). */
export interface QuarantineSource {
  match(keys: QuarantineKeys, now: number): Decision | undefined;
  wouldMatch(keys: QuarantineKeys, now: number): Decision | undefined;
}

/** One lookup over several tables (decisions.json and the KV bucket): the first that matches decides. */
export function eitherQuarantine(...tables: readonly (QuarantineSource | undefined)[]): QuarantineSource {
  const present = tables.filter((t): t is QuarantineSource => t !== undefined);
  return {
    match: (keys, now) => {
      for (const t of present) {
        const d = t.match(keys, now);
        if (d) return d;
      }
      return undefined;
    },
    wouldMatch: (keys, now) => {
      for (const t of present) {
        const d = t.wouldMatch(keys, now);
        if (d) return d;
      }
      return undefined;
    },
  };
}
