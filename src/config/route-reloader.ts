/**
 * Hot reload of the route table from the config file (PRODUCT §1.9): when
 * meshgate.yaml changes, it is loaded and validated as a whole; a valid
 * file's `routes` are compiled and swapped in atomically (a request keeps
 * the table it started with). Other keys need a restart: a change to them is
 * logged, never half-applied. A broken file is rejected with every error,
 * counted, shown in /readyz, and the running routes stay.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../core/log.ts';
import { StatusTracker, type ComponentStatus } from '../core/status.ts';
import { watchFiles, type FileWatcher } from '../core/watch.ts';
import { ConfigError, loadConfig } from './load.ts';
import type { Config } from './schema.ts';

export interface RouteReloader {
  status(): ComponentStatus;
  /** Re-reads the file now; resolves true when new routes were applied. */
  reload(): Promise<boolean>;
  close(): void;
}

export function watchRoutes(file: string, initial: Config, apply: (routes: Config['routes']) => void, opts: { log: Logger; env?: NodeJS.ProcessEnv; debounceMs?: number }): RouteReloader {
  const status = new StatusTracker('config');
  status.loaded();
  let current = initial;
  let chain: Promise<boolean> = Promise.resolve(false);
  const reload = (): Promise<boolean> => {
    chain = chain.then(async () => {
      let next: Config;
      try {
        next = await loadConfig(file, opts.env ?? process.env);
      } catch (e) {
        const message = e instanceof ConfigError ? e.message : `${file}: ${(e as Error).message}`;
        status.failed(message);
        opts.log.error({ component: 'config', err: message }, 'config change rejected; running routes stay in use');
        return false;
      }
      const changed = Object.keys(next).filter((k) => k !== 'routes' && !isDeepStrictEqual(next[k as keyof Config], current[k as keyof Config]));
      if (changed.length > 0) opts.log.warn({ component: 'config', keys: changed }, 'config keys changed that need a restart to apply; only routes are reloaded live');
      if (isDeepStrictEqual(next.routes, current.routes)) return false;
      apply(next.routes);
      current = { ...current, routes: next.routes };
      status.loaded();
      opts.log.info({ component: 'config', routes: next.routes.length }, 'routes reloaded');
      return true;
    });
    return chain;
  };
  const watcher: FileWatcher = watchFiles([file], () => { void reload(); }, { debounceMs: opts.debounceMs ?? 100 });
  return { status: () => status.snapshot(), reload, close: () => watcher.close() };
}
