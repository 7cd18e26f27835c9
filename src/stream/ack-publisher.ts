/**
 * Pipelined JetStream publishing for the shipper: many publishes in flight on
 * one connection, each PubAck delivered to a callback. `js.publish()` of
 * @nats-io/jetstream makes one request (promise, timer, reply mapping) per
 * message and peaked at ~24,000 events/s here; the JetStream publish protocol
 * is a plain NATS publish whose reply subject receives the PubAck, so one
 * wildcard subscription and a token per message reach ~65,000 events/s
 * (bench/stream.ts) with the same guarantees:
 *
 * - `Nats-Msg-Id` = the audit event id: JetStream drops a repeat within the
 *   stream's duplicate window and says so (`duplicate: true`);
 * - `Nats-Expected-Stream`: a subject captured by some other stream is an
 *   error, not a silent success.
 *
 * Timeouts are the caller's business (it knows which publish is oldest).
 * One publisher per connection: its acknowledgements die with it.
 */
import { createInbox, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** Outcome of one publish. */
export type PubAckResult =
  | { readonly ok: true; readonly seq: number; readonly duplicate: boolean }
  | { readonly ok: false; readonly error: string };

/** Publishes with per-message acknowledgement callbacks. */
export class AckPublisher {
  readonly #nc: NatsConnection;
  readonly #stream: string;
  readonly #inbox: string;
  readonly #sub: Subscription;

  /** `onAck(token, result)` is called once per acknowledged (or refused) publish. */
  constructor(nc: NatsConnection, stream: string, onAck: (token: number, result: PubAckResult) => void) {
    this.#nc = nc;
    this.#stream = stream;
    this.#inbox = createInbox();
    const decoder = new TextDecoder();
    this.#sub = nc.subscribe(`${this.#inbox}.>`, {
      callback: (_err, m) => {
        const token = Number(m.subject.slice(this.#inbox.length + 1));
        const code = m.headers?.code ?? 0;
        if (code >= 300 || m.data.length === 0) {
          onAck(token, { ok: false, error: code === 503 ? 'no JetStream stream answered (503 no responders)' : `status ${code} ${m.headers?.description ?? ''}`.trim() });
          return;
        }
        let ack: { seq?: unknown; duplicate?: unknown; error?: { description?: unknown; err_code?: unknown } };
        try {
          ack = JSON.parse(decoder.decode(m.data)) as typeof ack;
        } catch {
          onAck(token, { ok: false, error: 'unreadable PubAck' });
          return;
        }
        if (ack.error) onAck(token, { ok: false, error: `${String(ack.error.description ?? 'error')} (${String(ack.error.err_code ?? '?')})` });
        else if (typeof ack.seq === 'number') onAck(token, { ok: true, seq: ack.seq, duplicate: ack.duplicate === true });
        else onAck(token, { ok: false, error: 'PubAck without seq' });
      },
    });
  }

  /** Sends one event; its PubAck reaches `onAck` with `token`. Never throws for a disconnected client (it buffers). */
  publish(subject: string, data: Uint8Array, msgId: string, token: number): void {
    const h = headers();
    h.set('Nats-Msg-Id', msgId);
    h.set('Nats-Expected-Stream', this.#stream);
    this.#nc.publish(subject, data, { headers: h, reply: `${this.#inbox}.${token}` });
  }

  close(): void {
    this.#sub.unsubscribe();
  }
}
