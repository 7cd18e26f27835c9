/**
 * Who processes which partition: replica membership and partition leases in
 * one NATS KV bucket whose entries expire after the lease TTL (the bucket's
 * max age). Expiry is decided by the NATS server's clock, so replicas with
 * skewed clocks still agree on when a lease is gone.
 *
 *   member.<replica>   renewed every TTL/3 while the replica lives
 *   lease.p<N>         created by the owner (create fails while it exists),
 *                      renewed by compare-and-set on its revision
 *
 * Assignment is rendezvous hashing (highest random weight) over the live
 * members: every replica computes the same owner for each partition from the
 * same member list, and a member joining or leaving moves only the
 * partitions it gains or loses (docs/operations.md "How partitions move").
 */
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';

/** A held partition lease. */
export interface Lease {
  readonly partition: number;
  /** KV revision of our last write: the next renewal must match it. */
  revision: number;
  /** Revision at acquisition: unique per takeover (checkpoint epochs use it). */
  readonly epoch: number;
}

function weight(member: string, partition: number): bigint {
  return createHash('sha256').update(`${member}\n${partition}`).digest().readBigUInt64BE(0);
}

/** The partitions each member owns under rendezvous hashing. */
export function assignPartitions(members: readonly string[], partitions: number): Map<string, number[]> {
  const out = new Map<string, number[]>(members.map((m) => [m, []]));
  if (members.length === 0) return out;
  for (let p = 0; p < partitions; p++) {
    let best = members[0] as string;
    let bestW = -1n;
    for (const m of members) {
      const w = weight(m, p);
      if (w > bestW || (w === bestW && m < best)) {
        best = m;
        bestW = w;
      }
    }
    out.get(best)?.push(p);
  }
  return out;
}

function isConflict(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error).message ?? '');
}

/** Membership and leases of one replica. */
export class LeaseTable {
  readonly #kv: KV;
  readonly replica: string;

  constructor(kv: KV, replica: string) {
    if (!/^[A-Za-z0-9_-]+$/.test(replica)) throw new TypeError('replica id: letters, digits, "_" and "-" only');
    this.#kv = kv;
    this.replica = replica;
  }

  /** Announces (or keeps announcing) this replica. */
  async heartbeat(): Promise<void> {
    await this.#kv.put(`member.${this.replica}`, JSON.stringify({ replica: this.replica, at: new Date().toISOString() }));
  }

  /** Live replicas, sorted. */
  async members(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await this.#kv.keys('member.>')) out.push(k.slice('member.'.length));
    return out.sort();
  }

  /** Takes the lease of `partition` if nobody holds it. */
  async acquire(partition: number): Promise<Lease | undefined> {
    try {
      const revision = await this.#kv.create(`lease.p${partition}`, JSON.stringify({ owner: this.replica, at: new Date().toISOString() }));
      return { partition, revision, epoch: revision };
    } catch (err) {
      if (isConflict(err)) return undefined;
      throw err;
    }
  }

  /** The replica holding `partition`'s lease, if any. */
  async holder(partition: number): Promise<string | undefined> {
    const e = await this.#kv.get(`lease.p${partition}`);
    if (!e || e.operation !== 'PUT') return undefined;
    try {
      return e.json<{ owner: string }>().owner;
    } catch {
      return undefined;
    }
  }

  /** Renews `lease`; false when it was lost (expired and taken, or deleted). Connection errors throw. */
  async renew(lease: Lease): Promise<boolean> {
    try {
      lease.revision = await this.#kv.update(`lease.p${lease.partition}`, JSON.stringify({ owner: this.replica, at: new Date().toISOString() }), lease.revision);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** Gives `lease` up at once (a graceful hand-over; the next owner need not wait for expiry). */
  async release(lease: Lease): Promise<void> {
    await this.#kv.delete(`lease.p${lease.partition}`, { previousSeq: lease.revision }).catch(() => {});
  }

  /** Withdraws this replica's membership. */
  async leave(): Promise<void> {
    await this.#kv.delete(`member.${this.replica}`).catch(() => {});
  }
}
