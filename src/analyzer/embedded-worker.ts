/**
 * Worker-thread entry of the embedded analyzer (see embedded.ts): runs an
 * AnalyzerService on the gateway's audit dir, off the request thread, and
 * reports to the parent by messages: ready, stats (every statsIntervalMs),
 * failed, stopped. The parent asks it to stop with { type: 'stop' }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../core/log.ts';
import { loadEngineFactory } from './engine-factory.ts';
import { followLive, LiveChunks } from './live-feed.ts';
import type { FollowOptions } from './follow.ts';
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
  /** The gateway posts `records` messages after each audit write (live-feed.ts); without them the worker reads the files. */
  readonly liveFeed: boolean;
}

/** Messages to the worker. */
export type ParentMessage =
  | { readonly type: 'stop' }
  | { readonly type: 'records'; readonly firstSeq: number; readonly lastSeq: number; readonly bytes: Uint8Array };

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
  // Listening from the first moment: chunks that arrive while the service
  // starts are kept (bounded) rather than read back from disk later.
  const live = d.liveFeed ? new LiveChunks() : undefined;
  const onMessage = (m: ParentMessage): void => {
    if (m.type === 'records') live?.push(m);
  };
  port.on('message', onMessage);
  let svc: AnalyzerService;
  try {
    const engine = await (await loadEngineFactory(d.engineModule))(d.rulesFile);
    svc = await AnalyzerService.start({
      auditDirs: [d.auditDir], stateDir: d.stateDir, engine, logger, webhook: d.webhook,
      ...(d.pollMs === undefined ? {} : { pollMs: d.pollMs }),
      ...(live ? { follow: (dir: string, o: FollowOptions) => followLive(dir, live, o) } : {}),
    });
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message });
    live?.close();
    port.close();
    return;
  }
  post({ type: 'ready' });
  const timer = setInterval(() => post({ type: 'stats', stats: svc.stats() }), d.statsIntervalMs);
  let stopping = false;
  port.on('message', (m: ParentMessage) => {
    if (m.type !== 'stop' || stopping) return;
    stopping = true;
    live?.close();
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
