/**
 * Where `meshgate decisions` reads and writes: the analyzer's decisions.json
 * (`--dir STATE`, or a config without NATS), or — when the config has
 * `audit.sink.nats` and no `--dir` is given — the decisions KV bucket that
 * every gateway watches and every analyzer replica writes
 * (src/stream/decisions-kv.ts). Both answer the same four questions, so the
 * subcommands do not care which one they have.
 */
import type { Decision, Exception } from '../analyzer/types.ts';
import { loadCliConfig, StateDirMissing } from '../analyzer/state-dir.ts';
import type { NatsSinkConfig } from '../config/schema.ts';
import { DecisionStore, type ExceptionInput, type ManualDecisionInput } from '../decisions/decision-store.ts';
import { connectNats } from '../stream/connect-nats.ts';
import { DecisionsKv, openDecisionsBucket } from '../stream/decisions-kv.ts';
import path from 'node:path';

/** What the decisions subcommands need from a store. */
export interface DecisionsBackend {
  /** Human-readable location, for messages. */
  readonly where: string;
  list(opts: { includeExpired: boolean; now: number }): Promise<{ decisions: Decision[]; exceptions: Exception[] }>;
  /** A manual quarantine; 'existing' when a longer one of the same key is in force (the bucket keeps one per key). */
  add(input: ManualDecisionInput): Promise<{ status: 'created' | 'existing'; decision: Decision }>;
  remove(id: string): Promise<Decision | Exception | undefined>;
  addException(input: ExceptionInput): Promise<Exception>;
  close(): Promise<void>;
}

/** NATS did not answer: the CLI reports it (exit 2) instead of waiting forever. */
export class NatsUnreachable extends Error {
  constructor(servers: readonly string[], cause: unknown) {
    super(`cannot reach NATS at ${servers.join(', ')} (${(cause as Error).message ?? 'error'})`, { cause });
    this.name = 'NatsUnreachable';
  }
}

function fileBackend(store: DecisionStore): DecisionsBackend {
  return {
    where: store.file,
    list: (o) => store.list({ includeExpired: o.includeExpired, now: o.now }),
    add: async (input) => {
      const r = await store.add(input);
      if (r.status === 'excepted') throw new Error('a manual decision is never excepted');
      return r;
    },
    remove: (id) => store.remove(id),
    addException: (input) => store.addException(input),
    close: async () => {},
  };
}

async function kvBackend(nats: NatsSinkConfig, connectTimeoutMs: number): Promise<DecisionsBackend> {
  let nc;
  try {
    nc = await connectNats(nats, { name: 'meshgate-decisions-cli', reconnect: false, signal: AbortSignal.timeout(connectTimeoutMs) });
  } catch (err) {
    throw new NatsUnreachable(nats.servers, err);
  }
  try {
    const kv = new DecisionsKv(await openDecisionsBucket(nc, nats.decisionsBucket));
    // Expired entries leave the bucket when someone changes it, as in decisions.json.
    const prune = async (): Promise<void> => { await kv.prune(Date.now()).catch(() => 0); };
    return {
      where: `NATS KV bucket ${nats.decisionsBucket}`,
      list: async (o) => {
        const live = (x: { expiresAt: string }): boolean => o.includeExpired || Date.parse(x.expiresAt) > o.now;
        const byCreated = (a: { createdAt: string }, b: { createdAt: string }): number => Date.parse(a.createdAt) - Date.parse(b.createdAt);
        const [decisions, exceptions] = await Promise.all([kv.list(), kv.exceptions()]);
        return { decisions: decisions.filter(live).sort(byCreated), exceptions: exceptions.filter(live).sort(byCreated) };
      },
      add: async (input) => { const r = await kv.addManual(input, Date.now()); await prune(); return r; },
      remove: (id) => kv.removeById(id),
      addException: async (input) => { const x = await kv.addException(input, Date.now()); await prune(); return x; },
      close: async () => { kv.close(); await nc.close().catch(() => {}); },
    };
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
}

/**
 * The backend for `--dir` / `-c`: decisions.json of `--dir`; else the KV
 * bucket when the config has `audit.sink.nats`; else decisions.json of the
 * config's analyzer.dir. Throws StateDirMissing, ConfigError,
 * DecisionsFileError or NatsUnreachable.
 */
export async function openDecisionsBackend(
  values: { dir?: string | undefined; config?: string | undefined },
  io: { cwd: string; env: NodeJS.ProcessEnv },
  opts: { connectTimeoutMs?: number } = {},
): Promise<DecisionsBackend> {
  if (values.dir !== undefined && values.dir !== '') return fileBackend(await DecisionStore.open(path.resolve(io.cwd, values.dir)));
  const cfg = await loadCliConfig(values.config, io);
  const nats = cfg?.audit.sink?.nats;
  if (nats) return kvBackend(nats, opts.connectTimeoutMs ?? 5000);
  if (cfg?.analyzer.dir === undefined) throw new StateDirMissing();
  return fileBackend(await DecisionStore.open(cfg.analyzer.dir));
}
