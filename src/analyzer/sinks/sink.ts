/**
 * Where alerts go (PRODUCT §1.8): the alerts log, the pino log, a webhook.
 * `emit` is called on the analysis loop, so it must not block or throw:
 * sinks queue and do their I/O off that loop.
 */
import type { Alert } from '../types.ts';

/** One destination for alerts. */
export interface AlertSink {
  readonly name: string;
  /** Queues `alert` for delivery. O(1), never throws, never waits. */
  emit(alert: Alert): void;
  /** Resolves when alerts emitted so far are as delivered as this sink makes them (durable, sent or dropped). */
  flush(): Promise<void>;
  /** Flushes (within the sink's limits) and releases resources. */
  close(): Promise<void>;
}

/** Counters common to sinks, for /metrics. */
export interface SinkStats {
  readonly emitted: number;
  readonly delivered: number;
  readonly failed: number;
  readonly dropped: number;
  readonly queued: number;
}
