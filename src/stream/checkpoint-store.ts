/**
 * Per-partition analyzer checkpoints in a NATS KV bucket: the stream seq of
 * the last event whose effects (alerts, decisions) are durable, and the
 * detection engine's state at that event. A replica that takes a partition
 * over restores exactly this state and consumes from seq + 1, so windows,
 * baselines and de-duplication continue as if nothing had happened.
 *
 *   ckpt.p<N>                    pointer: { seq, epoch, slot, parts, bytes, sha256, owner, at }
 *   snap.p<N>.<epoch>.<slot>.<i> gzip(JSON(state)) in chunks (KV values are capped by max_payload)
 *
 * The pointer is only ever written with compare-and-set on its revision:
 * this is the fence that stops a replica which lost its lease (paused, cut
 * off) from overwriting its successor's progress. Chunks are written before
 * the pointer, into keys of the writer's own `epoch` (its lease revision),
 * alternating between two slots, so a fenced-off writer can never scribble
 * over chunks a live pointer names.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Chunk size: well under the default 1 MB NATS max_payload. */
const CHUNK_BYTES = 256 * 1024;

/** The pointer record. */
export interface CheckpointPointer {
  readonly v: 1;
  readonly seq: number;
  readonly epoch: number;
  readonly slot: 0 | 1;
  readonly parts: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly owner: string;
  readonly at: string;
}

/** A loaded checkpoint. `revision` is what the next save must compare against. */
export interface LoadedCheckpoint {
  readonly seq: number;
  /** The engine state; undefined when the partition has no checkpoint yet. */
  readonly state: unknown;
  readonly revision: number;
  readonly pointer: CheckpointPointer | undefined;
}

/** The pointer changed under us: another replica owns the partition now. */
export class FencedError extends Error {
  constructor(partition: number) {
    super(`checkpoint of partition ${partition} was written by another replica (lease lost)`);
    this.name = 'FencedError';
  }
}

/** A stored checkpoint is unreadable (missing chunk, wrong hash): never guessed around. */
export class CheckpointCorruptError extends Error {
  constructor(partition: number, reason: string) {
    super(`checkpoint of partition ${partition} is unusable: ${reason}`);
    this.name = 'CheckpointCorruptError';
  }
}

function isCasConflict(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error).message ?? '');
}

/** Reads and writes partition checkpoints in `kv` (bucket `bucket`). */
export class CheckpointStore {
  readonly #kv: KV;
  readonly #jsm: JetStreamManager;
  readonly #bucket: string;

  constructor(kv: KV, jsm: JetStreamManager, bucket: string) {
    this.#kv = kv;
    this.#jsm = jsm;
    this.#bucket = bucket;
  }

  /** The checkpoint of `partition` (seq 0 and no state when there is none). */
  async load(partition: number): Promise<LoadedCheckpoint> {
    const e = await this.#kv.get(`ckpt.p${partition}`);
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return { seq: 0, state: undefined, revision: e?.revision ?? 0, pointer: undefined };
    let p: CheckpointPointer;
    try {
      p = e.json<CheckpointPointer>();
    } catch {
      throw new CheckpointCorruptError(partition, 'pointer is not JSON');
    }
    if (p.parts === 0) return { seq: p.seq, state: undefined, revision: e.revision, pointer: p };
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < p.parts; i++) {
      const c = await this.#kv.get(`snap.p${partition}.${p.epoch}.${p.slot}.${i}`);
      if (!c || c.operation !== 'PUT') throw new CheckpointCorruptError(partition, `chunk ${i} of ${p.parts} is missing`);
      chunks.push(c.value);
    }
    const zipped = Buffer.concat(chunks);
    if (createHash('sha256').update(zipped).digest('hex') !== p.sha256) throw new CheckpointCorruptError(partition, 'sha256 does not match');
    const state: unknown = JSON.parse((await gunzipAsync(zipped)).toString('utf8'));
    return { seq: p.seq, state, revision: e.revision, pointer: p };
  }

  /**
   * Writes the checkpoint (`stateJson` = JSON of the engine snapshot, taken
   * right after event `seq`) and returns the pointer's new revision. Throws
   * FencedError when `expectedRevision` is no longer current.
   */
  async save(partition: number, opts: { seq: number; stateJson: string | undefined; owner: string; epoch: number; expectedRevision: number; previous: CheckpointPointer | undefined }): Promise<{ revision: number; pointer: CheckpointPointer }> {
    const prev = opts.previous;
    const slot: 0 | 1 = prev && prev.epoch === opts.epoch ? (prev.slot === 0 ? 1 : 0) : 0;
    let parts = 0;
    let bytes = 0;
    let sha256 = '';
    if (opts.stateJson !== undefined) {
      const zipped = await gzipAsync(Buffer.from(opts.stateJson, 'utf8'));
      bytes = zipped.length;
      sha256 = createHash('sha256').update(zipped).digest('hex');
      for (let off = 0; off < zipped.length; off += CHUNK_BYTES, parts++) {
        await this.#kv.put(`snap.p${partition}.${opts.epoch}.${slot}.${parts}`, zipped.subarray(off, off + CHUNK_BYTES));
      }
    }
    const pointer: CheckpointPointer = { v: 1, seq: opts.seq, epoch: opts.epoch, slot, parts, bytes, sha256, owner: opts.owner, at: new Date().toISOString() };
    return { revision: await this.repoint(partition, pointer, opts.expectedRevision), pointer };
  }

  /**
   * Writes `pointer` as the partition's checkpoint if the stored one is still
   * at `expectedRevision` (0: none yet); returns the new revision or throws
   * FencedError. A new owner calls this first with the checkpoint it loaded
   * (owner changed, chunks unchanged): that write is the fence.
   */
  async repoint(partition: number, pointer: CheckpointPointer, expectedRevision: number): Promise<number> {
    const value = JSON.stringify(pointer);
    try {
      return expectedRevision === 0 ? await this.#kv.create(`ckpt.p${partition}`, value) : await this.#kv.update(`ckpt.p${partition}`, value, expectedRevision);
    } catch (err) {
      if (isCasConflict(err)) throw new FencedError(partition);
      throw err;
    }
  }

  /** Drops the chunks an earlier owner (lease `epoch`) wrote for `partition`, once the current owner's own checkpoint replaced them. */
  async dropEpoch(partition: number, epoch: number): Promise<void> {
    await this.#jsm.streams.purge(`KV_${this.#bucket}`, { filter: `$KV.${this.#bucket}.snap.p${partition}.${epoch}.>` });
  }
}
