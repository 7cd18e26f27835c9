/**
 * Verification keys from a local JWKS file, re-read whenever the file
 * changes (in place or by rename, see src/core/watch.ts).
 */
import { readFileSync } from 'node:fs';
import { systemClock, type Clock } from '../core/clock.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { StatusTracker } from '../core/status.ts';
import { watchFiles, type FileWatcher, type WatchOptions } from '../core/watch.ts';
import { importJwks, type KeySet } from './key-set.ts';
import type { KeySource, KeySourceStatus } from './key-source.ts';

export interface FileKeySourceOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Hot reload (default on); `false` disables watching, an object tunes it. */
  readonly watch?: boolean | WatchOptions;
  /** Status name (default `jwks:<path>`). */
  readonly name?: string;
}

/**
 * A JWKS file. A broken file at start is a hard error (thrown by `open`);
 * a broken file on reload is rejected — logged, counted in `status()` — and
 * the previous keys stay in use, so a bad deploy never locks every client out.
 */
export class FileKeySource implements KeySource {
  readonly path: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #tracker: StatusTracker;
  #keys: KeySet;
  #watcher: FileWatcher | undefined;

  private constructor(path: string, keys: KeySet, tracker: StatusTracker, clock: Clock, log: Logger) {
    this.path = path;
    this.#keys = keys;
    this.#tracker = tracker;
    this.#clock = clock;
    this.#log = log;
  }

  /** Loads `path` now (throws Error naming the file when it is unusable) and starts watching it. */
  static open(path: string, opts: FileKeySourceOptions = {}): FileKeySource {
    const clock = opts.clock ?? systemClock;
    const log = (opts.logger ?? silentLogger).child({ component: 'jwks', jwksFile: path });
    let keys: KeySet;
    try {
      keys = importJwks(readFileSync(path));
    } catch (e) {
      throw new Error(`JWKS file ${path}: ${(e as Error).message}`, { cause: e });
    }
    const tracker = new StatusTracker(opts.name ?? `jwks:${path}`);
    tracker.loaded(keys.version, new Date(clock.now()));
    const src = new FileKeySource(path, keys, tracker, clock, log);
    src.#logIgnored(keys);
    if (opts.watch !== false) {
      src.#watcher = watchFiles([path], () => { src.reload(); }, typeof opts.watch === 'object' ? opts.watch : {});
    }
    return src;
  }

  current(): KeySet {
    return this.#keys;
  }

  /** A file has nothing to fetch: changes arrive through the watcher. */
  demand(): Promise<KeySet> {
    return Promise.resolve(this.#keys);
  }

  /**
   * Re-reads the file. Returns false (and keeps the previous keys) when the
   * new content is unusable. Unchanged content is a no-op, so the
   * verified-token cache stays warm across `touch`.
   */
  reload(): boolean {
    let next: KeySet;
    try {
      next = importJwks(readFileSync(this.path));
    } catch (e) {
      const message = `${this.path}: ${(e as Error).message}`;
      this.#tracker.failed(message);
      this.#log.warn({ err: message, keys: this.#keys.size }, 'JWKS file reload rejected; previous keys stay in use');
      return false;
    }
    if (next.version === this.#keys.version && this.#tracker.lastError === undefined) return true;
    const changed = next.version !== this.#keys.version;
    if (changed) this.#keys = next;
    this.#tracker.loaded(this.#keys.version, new Date(this.#clock.now()));
    this.#log.info({ version: this.#keys.version, keys: this.#keys.size, changed }, 'JWKS file reloaded');
    this.#logIgnored(next);
    return true;
  }

  status(): KeySourceStatus {
    return { ...this.#tracker.snapshot(), keys: this.#keys.size };
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #logIgnored(keys: KeySet): void {
    if (keys.ignored.length > 0) this.#log.warn({ ignored: keys.ignored }, 'JWKS entries ignored');
  }
}
