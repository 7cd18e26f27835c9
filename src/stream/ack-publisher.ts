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
import { createInbox, headers, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** Outcome of one publish. */
export type PubAckResult =
  | { readonly ok: true; readonly seq: number; readonly duplicate: boolean }
  | { readonly ok: false; readonly error: string };

/** Ids sent through the fast path: printable ASCII without spaces (event ids are); anything else takes the client's own path. */
const PLAIN_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Headers (`Nats-Msg-Id`, `Nats-Expected-Stream`) for publishes to `stream`.
 * The client builds each headers block with a Map, a MIME-key check per key
 * and a string concatenation — ~2 µs of the shipper's CPU per event. Only the
 * id changes between two publishes, so the block here is a fixed prefix, the
 * id and a fixed suffix, in the exact layout the client encodes (a test
 * compares the bytes). The object inherits a real headers object and holds
 * the same values, so every MsgHdrs read answers as usual; the protocol layer
 * only calls `encode()`.
 */
export function publishHeaders(stream: string): (msgId: string) => MsgHdrs {
  const template = headers();
  template.set('Nats-Msg-Id', '-');
  template.set('Nats-Expected-Stream', stream);
  const canonical = template.get('Nats-Expected-Stream');
  const prefix = Buffer.from('NATS/1.0\r\nNats-Msg-Id: ', 'latin1');
  const suffix = Buffer.from(`\r\nNats-Expected-Stream: ${canonical}\r\n\r\n`, 'utf8');
  const slow = (msgId: string): MsgHdrs => {
    const h = headers();
    h.set('Nats-Msg-Id', msgId);
    h.set('Nats-Expected-Stream', stream);
    return h;
  };
  // A stream name the client would encode differently (surrounding spaces are trimmed) keeps the slow path.
  if (canonical !== stream || !PLAIN_ID.test(stream)) return slow;
  return (msgId) => {
    if (!PLAIN_ID.test(msgId)) return slow(msgId);
    const bytes = Buffer.allocUnsafe(prefix.length + msgId.length + suffix.length);
    prefix.copy(bytes, 0);
    bytes.write(msgId, prefix.length, 'latin1');
    suffix.copy(bytes, prefix.length + msgId.length);
    const h = Object.create(template) as MsgHdrs & { headers: Map<string, string[]>; encode(): Uint8Array };
    h.headers = new Map([['Nats-Msg-Id', [msgId]], ['Nats-Expected-Stream', [stream]]]);
    h.encode = () => bytes;
    return h;
  };
}

/** Publishes with per-message acknowledgement callbacks. */
export class AckPublisher {
  readonly #nc: NatsConnection;
  readonly #inbox: string;
  readonly #sub: Subscription;
  readonly #headers: (msgId: string) => MsgHdrs;

  /** `onAck(token, result)` is called once per acknowledged (or refused) publish. */
  constructor(nc: NatsConnection, stream: string, onAck: (token: number, result: PubAckResult) => void) {
    this.#nc = nc;
    this.#headers = publishHeaders(stream);
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
    this.#nc.publish(subject, data, { headers: this.#headers(msgId), reply: `${this.#inbox}.${token}` });
  }

  close(): void {
    this.#sub.unsubscribe();
  }
}
