/**
 * Prometheus metrics of the audit shipper (docs/operations.md "Metrics"),
 * registered on the gateway's registry and read at scrape time from
 * `Shipper.stats()` — nothing is counted on the request path.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ShipperStats } from './shipper.ts';

/** Registers the `meshgate_nats_shipper_*` metrics on `registry`. */
export function registerShipperMetrics(registry: Registry, stats: () => ShipperStats): void {
  const registers = [registry];
  const gauge = (name: string, help: string, read: (s: ShipperStats) => number): void => {
    new Gauge({ name, help, registers, collect() { this.set(read(stats())); } });
  };
  const counter = (name: string, help: string, read: (s: ShipperStats) => number): void => {
    new Counter({ name, help, registers, collect() { this.reset(); this.inc(read(stats())); } });
  };
  gauge('meshgate_nats_shipper_backlog_events', 'Audit records in the local log not yet acknowledged by JetStream', (s) => s.backlog);
  gauge('meshgate_nats_shipper_lag_seconds', 'Age of the oldest audit record not yet acknowledged by JetStream (0 when caught up)', (s) => s.lagSeconds);
  gauge('meshgate_nats_shipper_in_flight_events', 'Audit records published and awaiting acknowledgement', (s) => s.inFlight);
  gauge('meshgate_nats_shipper_cursor_seq', 'seq of the last audit record acknowledged by JetStream', (s) => s.cursorSeq);
  gauge('meshgate_nats_shipper_connected', '1 while the shipper has a NATS connection', (s) => (s.connected ? 1 : 0));
  counter('meshgate_nats_shipper_published_total', 'Audit records acknowledged by JetStream (duplicates included)', (s) => s.published);
  counter('meshgate_nats_shipper_duplicates_total', 'Audit records JetStream acknowledged as duplicates of stored ones (retries)', (s) => s.duplicates);
  counter('meshgate_nats_shipper_publish_errors_total', 'Refused publishes, acknowledgement timeouts and lost connections', (s) => s.publishErrors);
  counter('meshgate_nats_shipper_retries_total', 'Shipping rounds restarted from the cursor after a failure', (s) => s.retries);
}
