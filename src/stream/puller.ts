/**
 * A strict pull loop on one durable JetStream consumer, for analyzer
 * partitions. It speaks the pull protocol directly (a request to
 * `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`, messages to our inbox)
 * instead of the client's `fetch()`/`consume()`, because detection needs a
 * guarantee those hide: every event of a partition processed exactly in
 * stream order. So the puller notices, and reports as PullBrokenError, every
 * way that order can silently break:
 *
 * - a gap in the consumer's delivery sequence (a delivery we never received:
 *   lost with a connection, or sent to a previous incarnation);
 * - a pull request that delivered nothing and ends without a word
 *   (connection lost mid-request);
 * - a 409 from the server (consumer deleted, leadership change, …).
 *
 * The caller then recreates the consumer from its own checkpoint and goes on.
 * One request is outstanding at a time; the next is sent as soon as the
 * previous one is complete, so at most 2 × batch messages are buffered.
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** One delivered message with the metadata of its ack subject. */
export interface PulledMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly reply: string;
  /** Sequence in the stream. */
  readonly streamSeq: number;
  /** Sequence of this delivery in the consumer (1, 2, … per consumer incarnation). */
  readonly deliverySeq: number;
  /** How often this message was delivered (1 = first time). */
  readonly deliveries: number;
  /** Messages left for the consumer after this one (lag in events). */
  readonly pending: number;
  /** When the stream stored it (ms since the epoch). */
  readonly storedAtMs: number;
}

/** Delivery order can no longer be trusted; recreate the consumer. */
export class PullBrokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PullBrokenError';
  }
}

/** Parses a `$JS.ACK…` reply subject (v1: 9 tokens; v2 with domain and account: 11 or 12). */
export function parseAckSubject(reply: string): Omit<PulledMessage, 'subject' | 'data' | 'reply'> | undefined {
  const t = reply.split('.');
  if (t[0] !== '$JS' || t[1] !== 'ACK') return undefined;
  const o = t.length === 9 ? 4 : t.length >= 11 ? 6 : -1;
  if (o < 0) return undefined;
  const n = (i: number): number => Number(t[o + i]);
  const m = { deliveries: n(0), streamSeq: n(1), deliverySeq: n(2), storedAtMs: Math.floor(n(3) / 1e6), pending: n(4) };
  return Object.values(m).every(Number.isFinite) ? m : undefined;
}

export interface PullerOptions {
  readonly stream: string;
  readonly consumer: string;
  readonly batch: number;
  /** How long the server holds a pull request open (default 1000 ms). */
  readonly expiresMs?: number;
}

/** Pulls messages from one consumer incarnation, in order, reporting any break. */
export class Puller {
  readonly #nc: NatsConnection;
  readonly #opts: Required<PullerOptions>;
  readonly #inbox = createInbox();
  readonly #sub: Subscription;
  #buffer: PulledMessage[] = [];
  #requestOpen = false;
  #received = 0;
  #sentAt = 0;
  #lastDelivery = 0;
  #broken: string | undefined;
  #wake: (() => void) | undefined;

  constructor(nc: NatsConnection, opts: PullerOptions) {
    this.#nc = nc;
    this.#opts = { expiresMs: 1000, ...opts };
    this.#sub = nc.subscribe(this.#inbox, { callback: (_err, m) => this.#onMessage(m) });
  }

  /** Messages in stream order: those buffered, else waits up to about `expiresMs` for some ([] when none came). */
  async next(): Promise<PulledMessage[]> {
    if (this.#broken) throw new PullBrokenError(this.#broken);
    if (this.#buffer.length === 0) {
      this.#request();
      // NATS 2.9 ends an expired request silently once it delivered something (newer servers send a 408):
      // such a request is over shortly after `expires`; one that delivered nothing must end with a status.
      const deadline = this.#sentAt + this.#opts.expiresMs + (this.#received > 0 ? 100 : 2000);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.max(0, deadline - Date.now()));
        const self = this;
        function done(): void {
          clearTimeout(t);
          if (self.#wake === done) self.#wake = undefined;
          resolve();
        }
        this.#wake = done;
      });
      if (this.#broken) throw new PullBrokenError(this.#broken);
      if (this.#buffer.length === 0 && this.#requestOpen && Date.now() >= this.#sentAt + this.#opts.expiresMs + (this.#received > 0 ? 100 : 2000)) {
        if (this.#received > 0) this.#requestOpen = false;
        else {
          this.#broken = 'pull request ended without a response (connection lost?)';
          throw new PullBrokenError(this.#broken);
        }
      }
    }
    const out = this.#buffer;
    this.#buffer = [];
    // Let the server deliver the next batch while the caller processes this one.
    this.#request();
    return out;
  }

  /** Acknowledges `m` (with AckPolicy.All: and every earlier message of the consumer). */
  ack(m: PulledMessage): void {
    try {
      this.#nc.publish(m.reply, '+ACK');
    } catch {
      // A lost ack is redelivered and skipped by seq; never fatal.
    }
  }

  /** Declares the delivery state unknown (the connection was re-established: requests and deliveries may be lost). */
  interrupt(reason: string): void {
    this.#broken ??= reason;
    this.#wake?.();
  }

  close(): void {
    this.#sub.unsubscribe();
    this.#wake?.();
  }

  #request(): void {
    if (this.#requestOpen || this.#broken) return;
    this.#requestOpen = true;
    this.#received = 0;
    this.#sentAt = Date.now();
    const body = JSON.stringify({ batch: this.#opts.batch, expires: this.#opts.expiresMs * 1_000_000 });
    try {
      this.#nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${this.#opts.stream}.${this.#opts.consumer}`, body, { reply: this.#inbox });
    } catch (err) {
      this.#broken = `pull request failed: ${(err as Error).message}`;
      this.#wake?.();
    }
  }

  #onMessage(m: Msg): void {
    // A delivery always carries a `$JS.ACK.` reply and status messages never do: only the latter need their
    // headers decoded (decoding the stored headers of every delivery was ~5% of a replica's CPU).
    const code = m.reply?.startsWith('$JS.ACK.') ? 0 : (m.headers?.code ?? 0);
    if (!m.reply || code !== 0) {
      if (code === 404 || code === 408) this.#requestOpen = false; // no messages / request expired: complete
      else if (code === 409) this.#broken = `pull request ended: ${m.headers?.description ?? '409'}`;
      else if (code !== 100) this.#broken = `unexpected status ${code} ${m.headers?.description ?? ''}`.trim();
      this.#wake?.();
      return;
    }
    const meta = parseAckSubject(m.reply);
    if (!meta) {
      this.#broken = `unexpected reply subject ${m.reply}`;
      this.#wake?.();
      return;
    }
    if (meta.deliverySeq !== this.#lastDelivery + 1) {
      this.#broken = `delivery ${meta.deliverySeq} follows ${this.#lastDelivery}: a delivery was missed`;
      this.#wake?.();
      return;
    }
    this.#lastDelivery = meta.deliverySeq;
    this.#buffer.push({ subject: m.subject, data: m.data, reply: m.reply, ...meta });
    if (++this.#received >= this.#opts.batch) this.#requestOpen = false;
    this.#wake?.();
  }
}
