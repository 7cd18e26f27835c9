/**
 * Holds the Authorizer in use and hot-reloads it when `model.conf` or
 * `policy.csv` changes (PRODUCT §1.9). A new Authorizer is built completely
 * off to the side and swapped in with one assignment; a broken edit is
 * rejected (logged with file:line, counted, shown in status().lastError) and
 * the last good policy keeps serving. A request calls `current()` once and
 * uses that instance for its whole life, so it never sees half a reload.
 */
import { StatusTracker, type ComponentStatus } from '../core/status.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { watchFiles, type FileWatcher } from '../core/watch.ts';
import type { Authorizer, AuthzEngineChoice } from './authorizer.ts';
import { loadAuthorizer } from './casbin-authorizer.ts';
import { PolicyError } from './policy-error.ts';

/** Options for {@link createPolicyStore}. */
export interface PolicyStoreOptions {
  /** Component name in /readyz and metrics (default `policy`; the shadow store is `shadow-policy`). */
  readonly name?: string;
  readonly modelPath: string;
  readonly policyPath: string;
  readonly decisionCacheEntries: number;
  /** Engine selection (default `auto`: compiled when supported, else casbin with a logged reason). */
  readonly engine?: AuthzEngineChoice | undefined;
  /** Watch both files and reload on change. */
  readonly watch: boolean;
  readonly logger?: Logger | undefined;
  /** Debounce for file events (default 100 ms); tests may shorten it. */
  readonly debounceMs?: number | undefined;
}

/** The live, reloadable policy. */
export interface PolicyStore {
  /** The Authorizer in use now. Take it once per request. */
  current(): Authorizer;
  /** Health for `/readyz` and metrics (component name `policy`); `engine` says which engine decides and why. */
  status(): ComponentStatus;
  /**
   * Re-reads both files. Resolves true when the files load (swapping only if
   * their content changed), false when they are rejected. Never rejects.
   */
  reload(): Promise<boolean>;
  /** Calls `cb` after every swap; returns an unsubscribe function. */
  onReload(cb: (authorizer: Authorizer) => void): () => void;
  /** Stops watching. `current()` keeps working. */
  close(): void;
}

/**
 * Loads the policy (throwing PolicyError if it is broken: a gateway must not
 * start without a valid policy) and, with `watch`, follows file changes.
 */
export async function createPolicyStore(opts: PolicyStoreOptions): Promise<PolicyStore> {
  const logger = opts.logger ?? silentLogger;
  const load = (): Promise<Authorizer> => loadAuthorizer({
    modelPath: opts.modelPath, policyPath: opts.policyPath, decisionCacheEntries: opts.decisionCacheEntries, engine: opts.engine, logger,
  });
  const tracker = new StatusTracker(opts.name ?? 'policy');
  const component = tracker.name;
  // Every load says which engine decides; a fallback to casbin is a warning, because its cost grows with the policy.
  const announce = (a: Authorizer, msg: string, extra: Record<string, unknown>): void => {
    tracker.loaded(a.version);
    tracker.engine = a.fallbackReason === undefined ? { name: a.engine } : { name: a.engine, fallbackReason: a.fallbackReason };
    const fields = { component, policyVersion: a.version, engine: a.engine, ...extra };
    if (a.fallbackReason === undefined) logger.info(fields, msg);
    else logger.warn({ ...fields, fallbackReason: a.fallbackReason }, `${msg}; the compiled engine does not support this model, casbin decides (cost grows with the policy)`);
  };
  let active = await load();
  announce(active, 'policy loaded', {});

  const listeners = new Set<(a: Authorizer) => void>();
  // Reloads run one after another, so a slow older load can never overwrite a newer one.
  let queue: Promise<boolean> = Promise.resolve(true);
  let closed = false;

  const reloadOnce = async (): Promise<boolean> => {
    let next: Authorizer;
    try {
      next = await load();
    } catch (e) {
      const msg = e instanceof PolicyError ? e.message : `unexpected error: ${(e as Error).message}`;
      tracker.failed(msg);
      logger.error(
        e instanceof PolicyError ? { file: e.file, line: e.line, reason: e.reason, policyVersion: active.version } : { err: msg },
        'policy reload rejected; the previous policy stays in use',
      );
      return false;
    }
    if (next.version === active.version) {
      // Same bytes (e.g. a touch or an editor's double write): keep the warm instance and its cache.
      if (tracker.state !== 'ok') tracker.loaded(active.version);
      return true;
    }
    const previous = active.version;
    active = next;
    announce(next, 'policy reloaded', { previousVersion: previous });
    for (const cb of listeners) {
      try { cb(next); } catch (err) { logger.error({ err: (err as Error).message }, 'policy reload listener failed'); }
    }
    return true;
  };

  const reload = (): Promise<boolean> => {
    queue = queue.then(reloadOnce, reloadOnce);
    return queue;
  };

  let watcher: FileWatcher | undefined;
  if (opts.watch) {
    watcher = watchFiles([opts.modelPath, opts.policyPath], () => { if (!closed) void reload(); }, { debounceMs: opts.debounceMs ?? 100 });
  }

  return {
    current: () => active,
    status: () => tracker.snapshot(),
    reload,
    onReload(cb) {
      listeners.add(cb);
      return () => { listeners.delete(cb); };
    },
    close() {
      closed = true;
      watcher?.close();
    },
  };
}
