/**
 * A cluster worker: the data plane only. It serves the shared listener with
 * a Gateway whose audit events go to the primary, reports its health every
 * second, answers the primary's metrics requests, and stops (with a drain)
 * when the primary says so — or when the primary disappears.
 */
import { AggregatorRegistry } from 'prom-client';
import { Gateway } from '../app.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { IpcAuditSink } from './ipc-audit-sink.ts';

export const STATUS_MSG = 'meshgate:status';
export const STOP_MSG = 'meshgate:stop';

export async function runWorker(cfg: Config, opts: { log: Logger; configFile: string; env: NodeJS.ProcessEnv }): Promise<void> {
  const audit = new IpcAuditSink();
  const gw = await Gateway.start(cfg, { log: opts.log, configFile: opts.configFile, env: opts.env, worker: { audit } });
  // prom-client answers the primary's aggregation requests from these registries.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([gw.metrics.registry]);
  const report = (): void => {
    const r = gw.readiness();
    process.send?.({ t: STATUS_MSG, ready: r.ready, listening: r.listening, draining: r.draining, components: r.components });
  };
  report();
  const timer = setInterval(report, 1000);
  // The primary orchestrates shutdown; a terminal's Ctrl-C reaches the whole process group.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  await new Promise<void>((resolve) => {
    process.on('message', (m: { t?: string }) => { if (m?.t === STOP_MSG) resolve(); });
    process.once('disconnect', () => resolve());
  });
  clearInterval(timer);
  await gw.stop();
  const r = gw.readiness();
  // The IPC channel keeps a worker alive (the primary would wait for its hard-kill timer):
  // close it once the last report is out, so the worker exits on its own.
  await new Promise<void>((resolve) => {
    if (!process.connected) { resolve(); return; }
    process.send?.({ t: STATUS_MSG, ready: r.ready, listening: r.listening, draining: r.draining, components: r.components }, undefined, {}, () => resolve());
  });
  if (process.connected) process.disconnect();
}
