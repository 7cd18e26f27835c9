/**
 * One analyzer partition, owned under a lease (leases.ts): restore the
 * engine from the partition's checkpoint, consume the partition's durable
 * consumer from the checkpoint on, strictly in stream order, and for every
 * batch: process → deliver alerts and decisions durably → acknowledge →
 * (every checkpointInterval) checkpoint the engine state.
 *
 * Why this order: a checkpoint names the last event whose effects are
 * durable, so a successor that restores it neither loses an alert (it
 * re-processes everything after the checkpoint) nor raises one twice (the
 * re-processed events produce the same alert emissions, which the alerts
 * stream de-duplicates). The durable consumer is recreated at the checkpoint
 * whenever delivery order is in doubt (takeover, gap, lost request, NATS
 * restart): the checkpoint, not the consumer's ack floor, is the truth.
 *
 * Losing the lease stops the worker at once. A worker that cannot renew for
 * most of the TTL stops itself (it must assume a successor exists); should
 * it still write, the checkpoint's compare-and-set fences it off.
 */
import { AckPolicy, DeliverPolicy, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AuditRecord } from '../audit/event.ts';
import type { Alert, DetectionEngine } from '../analyzer/types.ts';
import type { Logger } from '../core/log.ts';
import type { AnalyzerOutputs, TimedOrder } from './analyzer-outputs.ts';
import { FencedError, type CheckpointPointer, type CheckpointStore } from './checkpoint-store.ts';
import type { Lease, LeaseTable } from './leases.ts';
import { Puller, PullBrokenError, type PulledMessage } from './puller.ts';
import { durableName, partitionFilter } from './subjects.ts';

export interface PartitionWorkerDeps {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly leases: LeaseTable;
  readonly checkpoints: CheckpointStore;
  readonly outputs: AnalyzerOutputs;
  readonly engineFactory: (partition: number) => DetectionEngine | Promise<DetectionEngine>;
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly durablePrefix: string;
  readonly batch: number;
  readonly checkpointIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly log: Logger;
}

/** Acknowledge after this many events or this long, whichever first (well inside ack_wait and max_ack_pending). */
const ACK_EVERY = 256;
const ACK_INTERVAL_MS = 250;

/** Counters of one partition. */
export interface PartitionStats {
  readonly partition: number;
  readonly state: 'starting' | 'running' | 'stopping' | 'stopped' | 'lost' | 'failed';
  /** Stream seq of the last processed event. */
  readonly lastSeq: number;
  readonly processed: number;
  readonly skipped: number;
  readonly alerts: number;
  /** Events left in the partition after the last one processed. */
  readonly pending: number;
  readonly lagSeconds: number;
  readonly resyncs: number;
}

/** Processes one partition while it holds the lease. */
export class PartitionWorker {
  readonly partition: number;
  readonly #lease: Lease;
  readonly #d: PartitionWorkerDeps;
  #state: PartitionStats['state'] = 'starting';
  #stopping = false;
  #lost = false;
  #lastSeq = 0;
  #processed = 0;
  #skipped = 0;
  #alerts = 0;
  #pending = 0;
  #lastStoredMs = 0;
  #resyncs = 0;
  #puller: Puller | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #unacked = 0;
  #lastAck = 0;
  #lastRenewOk = Date.now();
  /** Resolves when the worker has ended (stopped, lost or failed). */
  readonly done: Promise<void>;

  constructor(lease: Lease, deps: PartitionWorkerDeps) {
    this.partition = lease.partition;
    this.#lease = lease;
    this.#d = deps;
    this.done = this.#run().catch((err: unknown) => {
      this.#state = 'failed';
      deps.log.error({ err, partition: this.partition }, 'analyzer partition worker failed; the partition will be retried');
    }).finally(() => {
      clearInterval(this.#renewTimer);
      this.#puller?.close();
    });
  }

  /** The connection came back: pull requests and deliveries in flight may be lost, so resync now rather than at the request timeout. */
  interrupt(): void {
    this.#puller?.interrupt('NATS connection re-established');
  }

  /** Graceful hand-over: finish the current batch, checkpoint, release the lease. */
  stop(): Promise<void> {
    this.#stopping = true;
    return this.done;
  }

  stats(): PartitionStats {
    return {
      partition: this.partition, state: this.#state, lastSeq: this.#lastSeq, processed: this.#processed, skipped: this.#skipped,
      alerts: this.#alerts, pending: this.#pending, resyncs: this.#resyncs,
      lagSeconds: this.#pending > 0 && this.#lastStoredMs > 0 ? Math.max(0, (Date.now() - this.#lastStoredMs) / 1000) : 0,
    };
  }

  async #run(): Promise<void> {
    const d = this.#d;
    const p = this.partition;
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(d.leaseTtlMs / 3)));
    const loaded = await d.checkpoints.load(p);
    const engine = await d.engineFactory(p);
    if (loaded.state !== undefined) engine.restore(loaded.state);
    this.#lastSeq = loaded.seq;
    // Fence first: from here on a former owner's checkpoint write fails. The
    // pointer keeps naming the chunks just restored, under our ownership.
    const fence: CheckpointPointer = loaded.pointer
      ? { ...loaded.pointer, owner: d.leases.replica, at: new Date().toISOString() }
      : { v: 1, seq: 0, epoch: this.#lease.epoch, slot: 0, parts: 0, bytes: 0, sha256: '', owner: d.leases.replica, at: new Date().toISOString() };
    let ck: { revision: number; pointer: CheckpointPointer };
    try {
      ck = { revision: await d.checkpoints.repoint(p, fence, loaded.revision), pointer: fence };
    } catch (err) {
      if (err instanceof FencedError) return this.#end('lost');
      throw err;
    }
    let inheritedEpoch = loaded.pointer?.epoch;
    let checkpointedSeq = loaded.seq;
    // Spread the replica's partitions over the interval: serializing engine state blocks the loop, and
    // sixteen partitions checkpointing at once showed up as a one-second lag spike (bench/stream.ts).
    let lastCheckpoint = Date.now() - Math.floor(Math.random() * d.checkpointIntervalMs);
    d.log.info({ partition: p, fromSeq: loaded.seq + 1, owner: d.leases.replica }, 'analyzer partition taken');
    await this.#resync(false);
    this.#state = 'running';
    while (!this.#lost && !this.#stopping) {
      let msgs: PulledMessage[];
      try {
        msgs = await (this.#puller as Puller).next();
      } catch (err) {
        if (!(err instanceof PullBrokenError)) throw err;
        d.log.warn({ partition: p, reason: err.message, fromSeq: this.#lastSeq + 1 }, 'analyzer partition resyncing its consumer from the last processed event');
        await this.#resync(true);
        continue;
      }
      if (this.#lost) break;
      if (msgs.length > 0) await this.#processBatch(engine, msgs);
      if (this.#lost) break;
      if (this.#lastSeq > checkpointedSeq && Date.now() - lastCheckpoint >= d.checkpointIntervalMs) {
        const next = await this.#checkpoint(engine, ck.revision, ck.pointer);
        if (!next) break;
        ck = next;
        checkpointedSeq = this.#lastSeq;
        lastCheckpoint = Date.now();
        if (inheritedEpoch !== undefined && inheritedEpoch !== this.#lease.epoch) {
          await d.checkpoints.dropEpoch(p, inheritedEpoch).catch(() => {});
          inheritedEpoch = undefined;
        }
      }
    }
    if (this.#lost) return this.#end('lost');
    this.#state = 'stopping';
    if (this.#lastSeq > checkpointedSeq && !(await this.#checkpoint(engine, ck.revision, ck.pointer))) return this.#end('lost');
    await d.leases.release(this.#lease);
    this.#end('stopped');
  }

  #end(state: 'lost' | 'stopped'): void {
    this.#state = state;
    if (state === 'lost') this.#d.log.warn({ partition: this.partition }, 'analyzer partition lease lost; another replica continues from its checkpoint');
    else this.#d.log.info({ partition: this.partition, lastSeq: this.#lastSeq }, 'analyzer partition released');
  }

  async #processBatch(engine: DetectionEngine, msgs: readonly PulledMessage[]): Promise<void> {
    const alerts: Alert[] = [];
    const orders: TimedOrder[] = [];
    const decoder = new TextDecoder();
    let last: PulledMessage | undefined;
    for (const m of msgs) {
      last = m;
      if (m.streamSeq <= this.#lastSeq) continue; // processed before (a redelivery)
      let record: AuditRecord;
      try {
        record = JSON.parse(decoder.decode(m.data)) as AuditRecord;
      } catch {
        this.#skipped++;
        this.#d.log.error({ partition: this.partition, seq: m.streamSeq, subject: m.subject }, 'message is not an audit record; skipped');
        this.#lastSeq = m.streamSeq;
        continue;
      }
      try {
        const out = engine.process(record);
        for (const a of out.alerts) alerts.push(a);
        if (out.remediations.length > 0) {
          const at = Date.parse(record.time);
          for (const o of out.remediations) orders.push({ order: o, atMs: Number.isFinite(at) ? at : Date.now() });
        }
      } catch (err) {
        this.#skipped++;
        this.#d.log.error({ err, partition: this.partition, seq: m.streamSeq, id: record.id }, 'detection engine failed on an event; skipped');
      }
      this.#lastSeq = m.streamSeq;
      this.#processed++;
    }
    // Outputs are idempotent (decision ids, alert message ids): retry until stored, or until the lease is gone.
    for (let backoff = 200; !this.#lost && (alerts.length > 0 || orders.length > 0); backoff = Math.min(backoff * 2, 5000)) {
      try {
        await this.#d.outputs.deliver(alerts, orders);
        break;
      } catch (err) {
        this.#d.log.warn({ partition: this.partition, err: (err as Error).message }, 'cannot store alerts/decisions yet; retrying before acknowledging');
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
    if (this.#lost) return;
    this.#alerts += alerts.length;
    if (last) {
      // AckPolicy.All: one ack covers every earlier delivery, so small batches are acknowledged together.
      this.#unacked += msgs.length;
      if (this.#unacked >= ACK_EVERY || Date.now() - this.#lastAck >= ACK_INTERVAL_MS || last.pending === 0) {
        (this.#puller as Puller).ack(last);
        this.#unacked = 0;
        this.#lastAck = Date.now();
      }
      this.#pending = last.pending;
      this.#lastStoredMs = last.storedAtMs;
    }
  }

  async #checkpoint(engine: DetectionEngine, revision: number, previous: CheckpointPointer): Promise<{ revision: number; pointer: CheckpointPointer } | undefined> {
    try {
      return await this.#d.checkpoints.save(this.partition, {
        seq: this.#lastSeq, stateJson: JSON.stringify(engine.snapshot()), owner: this.#d.leases.replica, epoch: this.#lease.epoch, expectedRevision: revision, previous,
      });
    } catch (err) {
      if (!(err instanceof FencedError)) throw err;
      this.#lost = true;
      return undefined;
    }
  }

  /** (Re)creates the durable consumer at the event after the last processed one, with a fresh puller. */
  async #resync(counted: boolean): Promise<void> {
    const d = this.#d;
    if (counted) this.#resyncs++;
    this.#puller?.close();
    this.#puller = undefined;
    const name = durableName(d.durablePrefix, this.partition);
    for (let backoff = 200; ; backoff = Math.min(backoff * 2, 5000)) {
      if (this.#lost || this.#stopping) {
        this.#puller = new Puller(d.nc, { stream: d.stream, consumer: name, batch: d.batch });
        return;
      }
      try {
        await d.jsm.consumers.delete(d.stream, name).catch((err: unknown) => {
          if (!(err instanceof JetStreamApiError && err.status === 404)) throw err;
        });
        await d.jsm.consumers.add(d.stream, {
          durable_name: name,
          filter_subject: partitionFilter(d.subjectPrefix, this.partition),
          ack_policy: AckPolicy.All,
          ack_wait: 30_000_000_000,
          max_ack_pending: Math.max(1000, d.batch * 4),
          ...(this.#lastSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#lastSeq + 1 } : { deliver_policy: DeliverPolicy.All }),
        });
        this.#puller = new Puller(d.nc, { stream: d.stream, consumer: name, batch: d.batch });
        return;
      } catch (err) {
        d.log.warn({ partition: this.partition, err: (err as Error).message }, 'cannot (re)create the partition consumer; retrying');
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
  }

  async #renew(): Promise<void> {
    if (this.#lost) return;
    try {
      if (await this.#d.leases.renew(this.#lease)) this.#lastRenewOk = Date.now();
      else this.#lost = true;
    } catch {
      // NATS unreachable: after most of the TTL a successor may exist, so stop acting as the owner.
      if (Date.now() - this.#lastRenewOk > this.#d.leaseTtlMs * 0.75) this.#lost = true;
    }
    if (this.#lost) this.#puller?.close();
  }
}
