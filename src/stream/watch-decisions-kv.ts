/**
 * Keeps a gateway's QuarantineTable in step with the decisions KV bucket
 * (PRODUCT §1.8 at scale). The watch delivers the bucket's full state first,
 * then every change as it happens (a push from the server, typically a few
 * milliseconds after an analyzer writes a decision — well inside the 2 s the
 * product allows).
 *
 * Failure policy, as for decisions.json (src/decisions/watch-quarantine.ts):
 * quarantine is an extra deny layer. While NATS is unreachable the last
 * known table stays in force (expiry is checked per request); an invalid
 * entry is logged, counted and ignored. The last state is also written to a
 * local cache file (decisions.json format) so that a gateway restarting
 * while NATS is down still enforces the quarantines it knew about.
 *
 * Exceptions (`exception.<id>` keys, exceptions-kv.ts) are followed too: a
 * rule-ordered decision that an exception covers is not handed to the table
 * (src/decisions/excepted-decisions.ts says which).
 */
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Decision, Exception } from '../analyzer/types.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { StatusTracker, type ComponentStatus } from '../core/status.ts';
import { readDecisionsFile, type DecisionsDoc } from '../decisions/decisions-file.ts';
import { withoutExcepted } from '../decisions/excepted-decisions.ts';
import { writeJsonAtomic } from '../decisions/write-json-atomic.ts';
import { openDecisionsBucket, parseDecisionValue } from './decisions-kv.ts';
import { isExceptionKey, parseExceptionValue } from './exceptions-kv.ts';

/** What the watch updates: QuarantineTable has this method. */
export interface DecisionsTarget {
  replace(doc: DecisionsDoc): void;
}

export interface WatchDecisionsKvOptions {
  /** The gateway's NATS connection (a promise while NATS has not been reached yet). */
  readonly connection: NatsConnection | Promise<NatsConnection>;
  readonly bucket: string;
  readonly table: DecisionsTarget;
  /** Local copy of the last known state, loaded at start-up before NATS answers. */
  readonly cacheFile?: string;
  /** How long start-up waits for the bucket's full state (default 2000 ms). */
  readonly initialWaitMs?: number;
  readonly log?: Logger;
  /** Called after every table replacement with the decisions enforced (tests, metrics). */
  readonly onUpdate?: (decisions: readonly Decision[]) => void;
}

/** A running watch. */
export interface DecisionsKvWatch {
  /** Decisions currently in the table. */
  readonly size: number;
  status(): ComponentStatus;
  close(): Promise<void>;
}

/**
 * Loads the bucket's full state into `table` (waiting up to `initialWaitMs`,
 * else starting from the cache file) and applies every later change.
 */
export async function watchDecisionsKv(opts: WatchDecisionsKvOptions): Promise<DecisionsKvWatch> {
  const log = opts.log ?? silentLogger;
  const status = new StatusTracker('quarantine-kv');
  /** Bucket key → its decision or exception (one map, so a key's delete removes whichever it held). */
  type Entry = Decision | Exception;
  const current = new Map<string, Entry>();
  /** The KV revision each entry was read at: the store's own write order (excepted-decisions.ts). */
  const revisions = new WeakMap<Entry, number>();
  let closed = false;
  let stopWatch: (() => void) | undefined;
  let cacheWrite = Promise.resolve();

  const publish = (persist: boolean): void => {
    const decisions: Decision[] = [];
    const exceptions: Exception[] = [];
    for (const e of current.values()) {
      if ('rule' in e) exceptions.push(e);
      else decisions.push(e);
    }
    const enforced = withoutExcepted(decisions, exceptions, (e) => revisions.get(e));
    opts.table.replace({ v: 1, decisions: enforced, exceptions });
    status.loaded(String(enforced.length));
    opts.onUpdate?.(enforced);
    if (persist && opts.cacheFile) {
      const file = opts.cacheFile;
      cacheWrite = cacheWrite.then(() => writeJsonAtomic(file, { v: 1, decisions, exceptions })).catch((err: unknown) => {
        log.warn({ err, file }, 'cannot write the decisions cache file');
      });
    }
  };

  if (opts.cacheFile) {
    await mkdir(path.dirname(opts.cacheFile), { recursive: true, mode: 0o700 }).catch(() => {});
    try {
      const exists = await access(opts.cacheFile).then(() => true, () => false);
      const doc = await readDecisionsFile(opts.cacheFile);
      for (const d of doc.decisions) current.set(`${d.scope}\0${d.value}\0${d.simulated}`, d);
      for (const x of doc.exceptions) current.set(`exception\0${x.id}`, x);
      if (exists) publish(false);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'decisions cache file unreadable; waiting for the KV bucket');
    }
  }

  /** One watch session: full state, then changes; ends on stop or connection trouble. */
  const session = async (nc: NatsConnection, initial: () => void): Promise<void> => {
    const kv = await openDecisionsBucket(nc, opts.bucket);
    const values = (await kv.status()).values;
    const iter = await kv.watch();
    stopWatch = () => iter.stop();
    const fresh = new Map<string, Entry>();
    let loading = values > 0;
    if (!loading) {
      current.clear();
      publish(true);
      initial();
    }
    const apply = (e: KvWatchEntry, into: Map<string, Entry>): void => {
      if (e.operation !== 'PUT') {
        into.delete(e.key);
        return;
      }
      const exception = isExceptionKey(e.key);
      const d = exception ? parseExceptionValue(e.value) : parseDecisionValue(e.value);
      if (d) {
        revisions.set(d, e.revision);
        into.set(e.key, d);
      } else {
        const what = exception ? 'exception' : 'decision';
        status.failed(`invalid ${what} under key ${e.key}`);
        log.error({ bucket: opts.bucket, key: e.key }, `invalid ${what} in the KV bucket; ignored`);
      }
    };
    for await (const e of iter) {
      if (loading) {
        apply(e, fresh);
        if (e.delta === 0) {
          // The full state replaces whatever the cache or an earlier session had.
          loading = false;
          current.clear();
          for (const [k, d] of fresh) current.set(k, d);
          publish(true);
          initial();
        }
        continue;
      }
      apply(e, current);
      publish(true);
    }
  };

  let resolveInitial!: () => void;
  const initialLoaded = new Promise<void>((r) => { resolveInitial = r; });
  const loop = (async () => {
    const nc = await opts.connection;
    let restart: (() => void) | undefined;
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'reconnect') restart?.();
    })().catch(() => {});
    while (!closed && !nc.isClosed()) {
      // A reconnect ends the session: the next one starts from the full state again, so nothing missed during the outage stays missed.
      const ended = new Promise<void>((r) => { restart = () => { stopWatch?.(); r(); }; });
      await Promise.race([session(nc, resolveInitial), ended]).catch((err: unknown) => {
        status.failed((err as Error).message);
        log.warn({ err: (err as Error).message, bucket: opts.bucket }, 'decisions watch interrupted; the last known quarantines stay in force');
      });
      stopWatch?.();
      if (!closed) await new Promise((r) => setTimeout(r, 500));
    }
  })().catch(() => {});

  const waited = await Promise.race([initialLoaded.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), opts.initialWaitMs ?? 2000).unref())]);
  if (!waited) log.warn({ bucket: opts.bucket, cached: current.size }, 'decisions bucket not loaded yet; enforcing the cached quarantines until it is');
  return {
    get size() { return current.size; },
    status: () => status.snapshot(),
    close: async () => {
      closed = true;
      stopWatch?.();
      await Promise.race([loop, new Promise((r) => setTimeout(r, 1000))]);
      await cacheWrite;
    },
  };
}
