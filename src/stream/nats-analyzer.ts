/**
 * `meshgate analyzer run --nats`: one analyzer replica of a scaled-out
 * deployment (PRODUCT §1.7–1.8, docs/operations.md).
 *
 * Replicas share the work by partition. Every TTL/3 each replica announces
 * itself, reads the live member list, computes the rendezvous assignment
 * (leases.ts) and converges on it: it takes the lease of every partition
 * assigned to it that is free, and hands back (checkpoint, release) every
 * partition it holds that is now assigned to someone else. A replica that
 * dies stops renewing; its member entry and leases expire after the TTL and
 * the survivors' next round takes its partitions, each continuing from that
 * partition's checkpoint (partition-worker.ts).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AlertSink } from '../analyzer/sinks/sink.ts';
import type { DetectionEngine } from '../analyzer/types.ts';
import type { NatsSinkConfig } from '../config/schema.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { AnalyzerOutputs, ensureAlertsStream } from './analyzer-outputs.ts';
import { auditStreamSpec, ensureAuditStream } from './audit-stream.ts';
import { CheckpointStore } from './checkpoint-store.ts';
import { connectNats } from './connect-nats.ts';
import { DecisionsKv, openDecisionsBucket } from './decisions-kv.ts';
import { assignPartitions, LeaseTable } from './leases.ts';
import { PartitionWorker, type PartitionStats } from './partition-worker.ts';

export interface NatsAnalyzerOptions {
  /** `audit.sink.nats` of the config: connection, stream, partitions and the `analyzer` settings. */
  readonly nats: NatsSinkConfig;
  /** A fresh engine for one partition (each partition has its own state). */
  readonly engineFactory: (partition: number) => DetectionEngine | Promise<DetectionEngine>;
  /** Local alert sinks (log, webhook) fed after alerts are stored in NATS. */
  readonly sinks?: readonly AlertSink[];
  /** Write rule-ordered quarantines to the decisions bucket (default true). */
  readonly decisions?: boolean;
  /** Stable name of this replica (default host-pid-random). */
  readonly replicaId?: string;
  readonly log?: Logger;
  /** An existing connection (tests); otherwise one is made from `nats`. */
  readonly connection?: NatsConnection;
}

/** Counters of one replica. */
export interface NatsAnalyzerStats {
  readonly replica: string;
  readonly members: readonly string[];
  readonly partitions: readonly PartitionStats[];
  readonly processed: number;
  readonly alertsPublished: number;
}

/** A running replica. */
export interface NatsAnalyzer {
  readonly replica: string;
  /** Partitions this replica processes now. */
  owned(): number[];
  stats(): NatsAnalyzerStats;
  /** Graceful stop: every partition checkpointed and released, membership withdrawn. */
  stop(): Promise<void>;
}

const ALERTS_DUPLICATE_WINDOW_MS = 120_000;

function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** Starts one analyzer replica; resolves once it has joined (partitions are taken in the background). */
export async function runNatsAnalyzer(opts: NatsAnalyzerOptions): Promise<NatsAnalyzer> {
  const cfg = opts.nats;
  const a = cfg.analyzer;
  const log = (opts.log ?? silentLogger).child({ component: 'nats-analyzer' });
  // Re-processing after a takeover reaches back at most one checkpoint interval plus the lease TTL;
  // the alerts stream must still remember those emissions to drop them.
  if (a.checkpointInterval + 2 * a.leaseTtl >= ALERTS_DUPLICATE_WINDOW_MS) {
    throw new TypeError(`checkpointInterval + 2 × leaseTtl must stay under the alerts duplicate window (${ALERTS_DUPLICATE_WINDOW_MS} ms)`);
  }
  const replica = opts.replicaId ?? defaultReplicaId();
  const nc = opts.connection ?? (await connectNats(cfg, { name: `meshgate-analyzer-${replica}`, log }));
  const jsm = await jetstreamManager(nc);
  await ensureAuditStream(jsm, auditStreamSpec(cfg), log);
  await ensureAlertsStream(jsm, a.alertsStream, a.alertsSubjectPrefix);
  const kvm = new Kvm(nc);
  const leaseKv = await kvm.create(a.leaseBucket, { ttl: a.leaseTtl, history: 1, description: 'meshgate analyzer leases and membership' });
  const leaseTtl = (await leaseKv.status()).ttl;
  if (leaseTtl !== a.leaseTtl) throw new TypeError(`KV bucket ${a.leaseBucket} expires entries after ${leaseTtl} ms, but leaseTtl is ${a.leaseTtl} ms: use one value for every replica`);
  const stateKv = await kvm.create(a.stateBucket, { history: 1, description: 'meshgate analyzer checkpoints' });
  const decisions = opts.decisions === false ? undefined : new DecisionsKv(await openDecisionsBucket(nc, cfg.decisionsBucket));
  const leases = new LeaseTable(leaseKv, replica);
  // Short request timeout: a publish lost with a connection is retried sooner (outputs are idempotent).
  const outputs = new AnalyzerOutputs(jetstream(nc, { timeout: 2000 }), { alertsStream: a.alertsStream, alertsSubjectPrefix: a.alertsSubjectPrefix, decisions, ...(opts.sinks ? { sinks: opts.sinks } : {}) });
  const checkpoints = new CheckpointStore(stateKv, jsm, a.stateBucket);
  const workers = new Map<number, PartitionWorker>();
  let finishedProcessed = 0;
  let members: string[] = [];
  let stopping = false;

  const deps = {
    nc, jsm, leases, checkpoints, outputs, engineFactory: opts.engineFactory, stream: cfg.stream, subjectPrefix: cfg.subjectPrefix,
    durablePrefix: a.durablePrefix, batch: a.batch, checkpointIntervalMs: a.checkpointInterval, leaseTtlMs: a.leaseTtl, log,
  };

  const round = async (): Promise<void> => {
    await leases.heartbeat();
    members = await leases.members();
    if (!members.includes(replica)) members = [...members, replica].sort();
    const mine = new Set(assignPartitions(members, cfg.partitions).get(replica) ?? []);
    for (const [p, w] of workers) {
      const st = w.stats().state;
      if (st === 'stopped' || st === 'lost' || st === 'failed') {
        workers.delete(p);
        finishedProcessed += w.stats().processed;
      } else if (!mine.has(p) && st === 'running') {
        // Assigned elsewhere now: hand over (checkpoint + release) so the new owner need not wait for expiry.
        void w.stop();
      }
    }
    for (const p of mine) {
      if (stopping || workers.has(p)) continue;
      const lease = await leases.acquire(p);
      if (lease) workers.set(p, new PartitionWorker(lease, deps));
    }
  };

  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') for (const w of workers.values()) w.interrupt();
  })().catch(() => {});

  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    timer = setTimeout(() => {
      void round().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'analyzer membership round failed; retrying')).finally(() => {
        if (!stopping) schedule();
      });
    }, Math.max(100, Math.floor(a.leaseTtl / 3)));
  };
  await round();
  schedule();
  log.info({ replica, partitions: cfg.partitions, members }, 'analyzer replica joined');

  return {
    replica,
    owned: () => [...workers].filter(([, w]) => w.stats().state === 'running').map(([p]) => p).sort((x, y) => x - y),
    stats: () => {
      const parts = [...workers.values()].map((w) => w.stats());
      return {
        replica, members, partitions: parts,
        processed: parts.reduce((n, s) => n + s.processed, finishedProcessed),
        alertsPublished: outputs.published,
      };
    },
    stop: async () => {
      stopping = true;
      if (timer) clearTimeout(timer);
      await Promise.all([...workers.values()].map((w) => w.stop()));
      await leases.leave();
      decisions?.close();
      if (!opts.connection) await nc.close().catch(() => {});
      log.info({ replica }, 'analyzer replica stopped');
    },
  };
}
