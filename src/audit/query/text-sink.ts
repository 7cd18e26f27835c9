/**
 * `TextSink`: buffered writes to a stream that respect back-pressure, so
 * `audit query --json` over a million records into a slow pipe holds a
 * bounded amount in memory, and a closed pipe (`| head`) ends the output
 * instead of crashing the process with EPIPE.
 */
import type { Writable } from 'node:stream';

const FLUSH_AT = 64 * 1024;

/** Buffers text for `out`; call `flush()` regularly (it waits for the stream to drain). */
export class TextSink {
  readonly #out: Writable;
  readonly #beforeWrite: (() => void) | undefined;
  #buf: string[] = [];
  #len = 0;
  #closed = false;
  readonly #onError = (): void => {
    // The reader went away (EPIPE): nothing more can be shown.
    this.#closed = true;
  };

  /** `beforeWrite` runs before each write, e.g. to erase a progress line on the same terminal. */
  constructor(out: Writable, options: { beforeWrite?: () => void } = {}) {
    this.#out = out;
    this.#beforeWrite = options.beforeWrite;
    out.on('error', this.#onError);
  }

  /** True once the stream failed (e.g. the pipe was closed): stop producing. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Queues `text`. */
  write(text: string): void {
    if (this.#closed) return;
    this.#buf.push(text);
    this.#len += text.length;
  }

  /** Writes what is queued when enough has built up (or `force`), waiting for drain when the stream asks. */
  async flush(force = false): Promise<void> {
    if (this.#closed || this.#len === 0 || (!force && this.#len < FLUSH_AT)) return;
    const text = this.#buf.join('');
    this.#buf = [];
    this.#len = 0;
    this.#beforeWrite?.();
    if (!this.#out.write(text) && !this.#closed) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#out.off('drain', done);
          this.#out.off('error', done);
          this.#out.off('close', done);
          resolve();
        };
        this.#out.on('drain', done);
        this.#out.on('error', done);
        this.#out.on('close', done);
      });
    }
  }

  /**
   * Flushes everything. The error listener stays: an EPIPE can arrive after
   * the last write, and must not crash the process then either.
   */
  async end(): Promise<void> {
    await this.flush(true);
  }
}
