/**
 * `startShipper(cfg, log)`: what the composition root calls when
 * `audit.sink.nats` is set. It connects to NATS, creates or checks the audit
 * stream, and starts the Shipper on the gateway's audit log.
 *
 * Start-up policy: a broken configuration fails start-up (unreadable secret
 * files, a stream that contradicts the config — StreamMismatchError); an
 * unreachable broker does not. When NATS does not answer within
 * `connectWaitMs` the gateway starts anyway, the log spools, and the stream
 * check runs when NATS becomes reachable (a mismatch found then stops the
 * shipper and shows in /readyz detail and the logs).
 */
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../config/schema.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import type { ComponentStatus } from '../core/status.ts';
import { auditStreamSpec, ensureAuditStream } from './audit-stream.ts';
import { connectNats } from './connect-nats.ts';
import { CURSOR_FILE } from './cursor-file.ts';
import { Shipper, type ShipperStats } from './shipper.ts';

/** A running NATS sink: the shipper, and a reconnecting connection for the gateway's other NATS needs (the decisions watch). */
export interface NatsSink {
  readonly shipper: Shipper;
  /** Resolves once NATS was reached (it may never, while NATS is down); reconnects by itself; closed by `close()`. */
  readonly connection: Promise<NatsConnection>;
  stats(): ShipperStats;
  status(): ComponentStatus;
  /** Ships what the log holds (up to `graceMs`), stops, saves the cursor, closes the connection. */
  close(graceMs?: number): Promise<void>;
}

export interface StartShipperOptions {
  /** The in-process writer's newest seq (`() => audit.stats().lastSeq`), for backlog and lag. */
  readonly logHead?: () => number;
  /** How long start-up waits for NATS before going on without it (default 2000 ms). */
  readonly connectWaitMs?: number;
  readonly clock?: Clock;
}

/** Starts shipping the audit log of `cfg` to JetStream; `cfg.audit.sink.nats` must be set. */
export async function startShipper(cfg: Config, log: Logger, opts: StartShipperOptions = {}): Promise<NatsSink> {
  const nats = cfg.audit.sink?.nats;
  if (!nats) throw new TypeError('startShipper needs audit.sink.nats');
  const spec = auditStreamSpec(nats);
  const abort = new AbortController();
  const connection = connectNats(nats, { name: `meshgate-${nats.service}`, log, signal: abort.signal });
  let nc: NatsConnection | undefined;
  let closed = false;
  connection.then((c) => {
    nc = c;
    // Connected while closing: nobody will use it.
    if (closed) void c.close().catch(() => {});
  }, () => {});
  // Reading secrets happens before the first attempt: those errors surface here, not as an endless retry.
  const first = await Promise.race([
    connection.then((nc) => nc),
    new Promise<undefined>((r) => setTimeout(() => r(undefined), opts.connectWaitMs ?? 2000).unref()),
  ]);
  let checked = false;
  if (first) {
    const { jetstreamManager } = await import('@nats-io/jetstream');
    try {
      await ensureAuditStream(await jetstreamManager(first), spec, log);
    } catch (err) {
      await first.close().catch(() => {});
      throw err;
    }
    checked = true;
  } else {
    log.warn({ servers: nats.servers }, 'NATS not reachable at start-up: serving anyway; the audit log spools until shipping starts');
  }
  const shipperLog = log.child({ component: 'audit-shipper' });
  const shipper = new Shipper({
    // The shipper's own connections (no auto-reconnect, see shipper.ts); `connection` serves the stream check and the decisions watch.
    connect: () => connectNats(nats, { name: `meshgate-shipper-${nats.service}`, log: shipperLog, signal: abort.signal, reconnect: false }),
    dir: cfg.audit.dir,
    cursorFile: nats.cursorFile ?? path.join(cfg.audit.dir, CURSOR_FILE),
    stream: nats.stream, subjectPrefix: nats.subjectPrefix, service: nats.service, partitions: nats.partitions,
    maxAckPending: nats.maxAckPending, ackTimeoutMs: nats.ackTimeout,
    log: shipperLog,
    ...(opts.logHead ? { logHead: opts.logHead } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    onConnect: async (jsm) => {
      if (!checked) await ensureAuditStream(jsm, spec, log);
      checked = true;
    },
  });
  shipper.start();
  return {
    shipper,
    connection,
    stats: () => shipper.stats(),
    status: () => shipper.status(),
    close: async (graceMs = 2000) => {
      closed = true;
      // Ship what the log holds now (the gateway flushed its writer), within the grace period.
      if (opts.logHead) await shipper.waitFor(opts.logHead(), graceMs).catch(() => {});
      await shipper.stop(graceMs);
      abort.abort();
      await nc?.close().catch(() => {});
    },
  };
}
