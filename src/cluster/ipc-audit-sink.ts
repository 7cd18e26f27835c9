/**
 * The audit sink of a cluster worker: events go to the primary, which owns
 * the one audit writer, so the whole gateway keeps a single verifiable
 * hash chain however many processes serve requests. `append` is O(1) and
 * never blocks; events are sent in batches (every 10 ms or 256 events) over
 * the IPC channel with the structured-clone serializer.
 */
import type { AuditEvent } from '../audit/event.ts';

export const AUDIT_MSG = 'meshgate:audit';
export const FLUSH_REQ = 'meshgate:audit-flush';
export const FLUSH_RES = 'meshgate:audit-flushed';

export interface AuditSinkStats {
  readonly queued: number;
  readonly written: number;
  readonly errors: number;
  readonly dropped: number;
  readonly lastSeq: number;
}

/** What the gateway needs from wherever its audit events go. */
export interface AuditSinkLike {
  append(event: AuditEvent): void;
  flush(): Promise<void>;
  close(): Promise<void>;
  stats(): AuditSinkStats;
}

const BATCH = 256;
const WINDOW_MS = 10;

export class IpcAuditSink implements AuditSinkLike {
  #buf: AuditEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sent = 0;
  #errors = 0;
  #nextFlush = 1;
  readonly #waiting = new Map<number, () => void>();

  constructor() {
    if (typeof process.send !== 'function') throw new TypeError('IpcAuditSink needs an IPC channel (a cluster worker)');
    process.on('message', (m: { t?: string; id?: number }) => {
      if (m?.t === FLUSH_RES && typeof m.id === 'number') {
        this.#waiting.get(m.id)?.();
        this.#waiting.delete(m.id);
      }
    });
  }

  append(event: AuditEvent): void {
    this.#buf.push(event);
    if (this.#buf.length >= BATCH) this.#send();
    else this.#timer ??= setTimeout(() => this.#send(), WINDOW_MS);
  }

  #send(): void {
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = undefined; }
    if (this.#buf.length === 0) return;
    const events = this.#buf;
    this.#buf = [];
    try {
      process.send?.({ t: AUDIT_MSG, events }, undefined, {}, (err) => {
        if (err) this.#errors++;
        else this.#sent += events.length;
      });
    } catch {
      this.#errors++;
    }
  }

  /** Resolves once the primary has written and fsynced everything sent so far. */
  flush(): Promise<void> {
    this.#send();
    // Without a primary there is nobody to write or acknowledge: nothing to wait for.
    if (!process.connected) return Promise.resolve();
    const id = this.#nextFlush++;
    return new Promise<void>((resolve) => {
      this.#waiting.set(id, resolve);
      process.send?.({ t: FLUSH_REQ, id });
    });
  }

  close(): Promise<void> {
    return this.flush();
  }

  stats(): AuditSinkStats {
    return { queued: this.#buf.length, written: this.#sent, errors: this.#errors, dropped: 0, lastSeq: 0 };
  }
}
