/**
 * The `--nats` mode of `meshgate analyzer run` (src/analyzer/run-command.ts
 * delegates here): one analyzer replica with the configured detection rules,
 * until the signal aborts. Alerts go to the alerts stream (the durable
 * record), the pino log and, when configured, the webhook; quarantine orders
 * go to the decisions KV bucket that every gateway watches.
 */
import type { Writable } from 'node:stream';
import type { EngineFactory } from '../analyzer/engine-factory.ts';
import { createLogSink } from '../analyzer/sinks/log-sink.ts';
import type { AlertSink } from '../analyzer/sinks/sink.ts';
import { WebhookSink } from '../analyzer/sinks/webhook-sink.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { runNatsAnalyzer, type NatsAnalyzer } from './nats-analyzer.ts';

export interface NatsAnalyzerRunOptions {
  /** The detection rules file. */
  readonly rules: string;
  /** Builds one engine from the rules file (called once per partition taken). */
  readonly engineFactory: EngineFactory;
  readonly logger: Logger;
  /** Stops the replica gracefully (checkpoint + release every partition). */
  readonly signal: AbortSignal;
  /** Where the one-line start and stop notes go (the CLI's stderr). */
  readonly stderr?: Writable;
  readonly replicaId?: string;
  /** Called once the replica has joined (tests). */
  readonly onStarted?: (analyzer: NatsAnalyzer) => void;
}

/** Runs a replica for `cfg.audit.sink.nats` until `signal` aborts; resolves to the exit code (0, or 2 when it cannot start). */
export async function runNatsAnalyzerUntil(cfg: Config, opts: NatsAnalyzerRunOptions): Promise<number> {
  const nats = cfg.audit.sink?.nats;
  if (!nats) {
    opts.stderr?.write('meshgate analyzer run --nats: the config has no audit.sink.nats section\n');
    return 2;
  }
  // Fail on bad rules before joining: a replica that cannot build an engine must not take leases.
  await opts.engineFactory(opts.rules);
  const sinks: AlertSink[] = [createLogSink(opts.logger)];
  const wh = cfg.analyzer.webhook;
  if (wh) sinks.push(new WebhookSink({ url: wh.url, timeoutMs: wh.timeout, maxQueue: wh.maxQueue, headers: wh.headers, logger: opts.logger }));
  const analyzer = await runNatsAnalyzer({
    nats, sinks, log: opts.logger, engineFactory: () => opts.engineFactory(opts.rules),
    ...(opts.replicaId ? { replicaId: opts.replicaId } : {}),
  });
  opts.stderr?.write(`meshgate analyzer: replica ${analyzer.replica} consuming ${nats.stream} (${nats.partitions} partitions) with ${opts.rules}\n`);
  opts.onStarted?.(analyzer);
  await new Promise<void>((resolve) => {
    if (opts.signal.aborted) resolve();
    else opts.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await analyzer.stop();
  for (const s of sinks) await s.close().catch(() => {});
  const st = analyzer.stats();
  opts.stderr?.write(`meshgate analyzer: replica ${analyzer.replica} stopped after ${st.processed} events, ${st.alertsPublished} alert emissions\n`);
  return 0;
}
