/**
 * Worker-thread entry of the embedded analyzer (see embedded.ts): runs an
 * AnalyzerService on the gateway's audit dir, off the request thread, and
 * reports to the parent by messages: ready, stats (every statsIntervalMs),
 * failed, stopped. The parent asks it to stop with { type: 'stop' }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../core/log.ts';
import { loadEngineFactory } from './engine-factory.ts';
import { AnalyzerService } from './service.ts';
import type { WebhookOptions } from './sinks/webhook-sink.ts';

/** What the parent passes as workerData. */
export interface EmbeddedWorkerData {
  readonly auditDir: string;
  readonly stateDir: string;
  readonly rulesFile: string;
  readonly webhook: Omit<WebhookOptions, 'logger' | 'random'> | undefined;
  readonly logLevel: string;
  readonly engineModule: string | undefined;
  readonly statsIntervalMs: number;
  readonly pollMs: number | undefined;
}

/** Messages from the worker. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'stats'; readonly stats: ReturnType<AnalyzerService['stats']> }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'stopped' };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new TypeError('embedded-worker.ts must run in a worker thread');
  const d = workerData as EmbeddedWorkerData;
  const post = (m: WorkerMessage): void => port.postMessage(m);
  const logger = createLogger(d.logLevel).child({ component: 'analyzer' });
  let svc: AnalyzerService;
  try {
    const engine = await (await loadEngineFactory(d.engineModule))(d.rulesFile);
    svc = await AnalyzerService.start({
      auditDirs: [d.auditDir], stateDir: d.stateDir, engine, logger, webhook: d.webhook,
      ...(d.pollMs === undefined ? {} : { pollMs: d.pollMs }),
    });
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
    port.close();
    return;
  }
  post({ type: 'ready' });
  const timer = setInterval(() => post({ type: 'stats', stats: svc.stats() }), d.statsIntervalMs);
  let stopping = false;
  port.on('message', (m: { type?: string }) => {
    if (m.type !== 'stop' || stopping) return;
    stopping = true;
    clearInterval(timer);
    void svc.stop().catch(() => {}).finally(() => {
      post({ type: 'stats', stats: svc.stats() });
      post({ type: 'stopped' });
      port.close();
    });
  });
  svc.done.catch((err: unknown) => {
    if (stopping) return;
    clearInterval(timer);
    post({ type: 'failed', message: (err as Error).message });
    void svc.stop().catch(() => {}).finally(() => port.close());
  });
}

void main();
