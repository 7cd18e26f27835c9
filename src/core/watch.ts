/**
 * Watches files for changes, the way config managers and Kubernetes update
 * them: by writing in place, or by writing a new file and renaming it over
 * the old one (which replaces the inode, so watching the file alone misses
 * it). We watch each file's folder and filter by name, and also poll the
 * files' mtime/size/inode as a backstop for file systems without inotify.
 * Bursts of events are debounced into one callback.
 */
import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface FileWatcher {
  close(): void;
}

export interface WatchOptions {
  /** Quiet period before the callback runs (default 100 ms). */
  readonly debounceMs?: number;
  /** Polling backstop interval (default 1000 ms; 0 disables). */
  readonly pollMs?: number;
}

function fingerprint(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** Calls `onChange` (debounced) whenever any of `paths` changes. */
export function watchFiles(paths: readonly string[], onChange: () => void, opts: WatchOptions = {}): FileWatcher {
  const debounceMs = opts.debounceMs ?? 100;
  const pollMs = opts.pollMs ?? 1000;
  const files = [...new Set(paths.map((p) => resolve(p)))];
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const d = dirname(f);
    if (!byDir.has(d)) byDir.set(d, new Set());
    byDir.get(d)!.add(basename(f));
  }
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const prints = new Map(files.map((f) => [f, fingerprint(f)]));
  const fire = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      for (const f of files) prints.set(f, fingerprint(f));
      if (!closed) onChange();
    }, debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        // Kubernetes ConfigMaps swap a `..data` symlink: any change in the folder may matter.
        if (name === null || names.has(String(name)) || String(name).startsWith('..')) fire();
      });
      w.on('error', () => { /* folder gone; the poller still sees changes */ });
      watchers.push(w);
    } catch {
      // Folder missing or not watchable: rely on polling.
    }
  }
  const poller = pollMs > 0
    ? setInterval(() => {
        for (const f of files) if (fingerprint(f) !== prints.get(f)) { fire(); return; }
      }, pollMs)
    : undefined;
  poller?.unref();
  return {
    close(): void {
      closed = true;
      if (timer) clearTimeout(timer);
      if (poller) clearInterval(poller);
      for (const w of watchers) w.close();
    },
  };
}
