/**
 * Keeps a QuarantineTable in step with decisions.json, for the gateway.
 * The analyzer replaces the file by rename; watchFiles sees that through the
 * folder watch (50 ms debounce) and polls as a backstop, so a new decision is
 * enforced well within the 1 s PRODUCT §1.8 allows.
 *
 * A broken file (invalid JSON, wrong shape) is rejected, logged and counted,
 * and the last good table stays in force: quarantine is an extra deny layer,
 * and refusing all traffic because an analyzer file is damaged would turn a
 * detection outage into a service outage, while forgetting active
 * quarantines would let a quarantined attacker back in.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger, type Logger } from '../core/log.ts';
import { StatusTracker, type ComponentStatus } from '../core/status.ts';
import { watchFiles } from '../core/watch.ts';
import { QuarantineTable } from './quarantine-table.ts';

export interface QuarantineWatchOptions {
  readonly logger?: Logger;
  /** Debounce of change events (default 50 ms). */
  readonly debounceMs?: number;
  /** Polling backstop (default 250 ms). */
  readonly pollMs?: number;
  /** Called after each successful reload (tests, metrics). */
  readonly onReload?: (table: QuarantineTable) => void;
}

/** A QuarantineTable that follows its file, with its health for /readyz. */
export interface QuarantineWatch {
  readonly table: QuarantineTable;
  status(): ComponentStatus;
  /** Re-reads the file now (also what the watcher calls). */
  reload(): Promise<void>;
  close(): void;
}

/** Loads `file` into a new QuarantineTable and reloads it whenever the file changes. */
export async function watchQuarantine(file: string, opts: QuarantineWatchOptions = {}): Promise<QuarantineWatch> {
  const log = opts.logger ?? silentLogger;
  const table = new QuarantineTable();
  const status = new StatusTracker('quarantine');
  // The folder must exist for the folder watch; the analyzer may not have run yet.
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 }).catch(() => {});
  let running: Promise<void> | undefined;
  let again = false;
  const reloadOnce = async (): Promise<void> => {
    try {
      await table.load(file);
      status.loaded(String(table.size));
      opts.onReload?.(table);
    } catch (err) {
      const msg = (err as Error).message;
      status.failed(msg);
      log.error({ file, err: msg }, 'decisions file rejected; the previous quarantine table stays in force');
    }
  };
  // Serialize reloads; a change during a reload triggers one more.
  const reload = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await reloadOnce();
      } while (again);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  await reload();
  const watcher = watchFiles([file], () => void reload(), { debounceMs: opts.debounceMs ?? 50, pollMs: opts.pollMs ?? 250 });
  return {
    table,
    status: () => status.snapshot(),
    reload,
    close: () => watcher.close(),
  };
}
