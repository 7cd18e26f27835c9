/**
 * Hands batches from several followers (one per audit dir) to the single
 * analysis loop, one at a time. A producer's `put` resolves only when the
 * consumer has finished the batch, so each follower reads at most one batch
 * ahead (backpressure) and the engine never sees two batches at once.
 */

/** A batch waiting for the consumer; `done` releases its producer. */
export interface Delivery<T> {
  readonly value: T;
  done(): void;
}

/** A many-producers, one-consumer rendezvous channel. */
export class BatchChannel<T> {
  #items: Delivery<T>[] = [];
  #waiter: (() => void) | undefined;
  #closed = false;
  #abandoned = false;

  /** Offers `value`; resolves when the consumer calls `done` on it. */
  put(value: T): Promise<void> {
    if (this.#abandoned) return Promise.resolve();
    return new Promise((resolve) => {
      this.#items.push({ value, done: resolve });
      this.#wake();
    });
  }

  /** No more puts: `take` returns null once the queue is empty. */
  close(): void {
    this.#closed = true;
    this.#wake();
  }

  /** Closes and releases every waiting producer without processing its batch (the consumer failed). */
  abandon(): void {
    this.#closed = true;
    this.#abandoned = true;
    for (const item of this.#items.splice(0)) item.done();
    this.#wake();
  }

  /** The next batch; undefined after `timeoutMs` without one; null when closed and drained. */
  async take(timeoutMs: number): Promise<Delivery<T> | undefined | null> {
    if (this.#items.length === 0 && !this.#closed) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.#waiter = undefined;
    }
    const item = this.#items.shift();
    if (item) return item;
    return this.#closed ? null : undefined;
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
}
