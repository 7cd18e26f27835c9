/**
 * `meshgate analyzer run`: the standalone live analyzer. Follows one or more
 * audit dirs until SIGINT/SIGTERM, with the same service the embedded
 * analyzer runs (cursor, alerts.jsonl, decisions.json, webhook).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, type CliIO } from '../cli/command.ts';
import { ConfigError, SHIPPED_DETECTIONS } from '../config/load.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { loadEngineFactory } from './engine-factory.ts';
import { runNatsAnalyzerUntil } from '../stream/analyzer-command.ts';
import { RulesError } from './rules/load.ts';
import { AnalyzerService } from './service.ts';
import { loadCliConfig } from './state-dir.ts';

export const RUN_HELP = `Usage: meshgate analyzer run [-c meshgate.yaml] [--rules FILE] [--dir STATE] [AUDIT_DIR…]
       meshgate analyzer run --nats -c meshgate.yaml [--rules FILE]

Follows the audit logs in AUDIT_DIR… (default: audit.dir of the config) as
they grow, runs the detection rules on every event, writes alerts and
quarantine decisions, and keeps going until SIGINT or SIGTERM. A restart
resumes from STATE/cursor.json: nothing is skipped and no alert is raised twice.

Options:
  -c, --config FILE  take the audit dir, rules, state dir, webhook and log
                     level from this config (default: ./meshgate.yaml if present)
      --rules FILE   detection rules (default: analyzer.rules of the config,
                     else the shipped policies/detections.yaml)
      --dir STATE    state folder: cursor.json, alerts.jsonl, decisions.json
                     (default: analyzer.dir of the config, else
                     <first AUDIT_DIR>/analyzer)
      --nats         run as a scaled-out replica: consume this replica's share of
                     the partitions of audit.sink.nats from JetStream, with
                     quarantines in the NATS KV bucket (docs/operations.md)
  -h, --help         show this help

Exit codes: 0 stopped by a signal, 1 the analyzer failed while running,
2 usage, configuration or rules error.
`;

export interface RunAnalyzerOptions {
  /** Stops the analyzer (default: SIGINT/SIGTERM of this process). */
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Module exporting `createEngineFromRules` (tests). */
  readonly engineModule?: string;
  /** Called once the analyzer follows its logs (tests). */
  readonly onStarted?: (svc: AnalyzerService) => void;
}

function processSignal(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return { signal: ac.signal, dispose: () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); } };
}

/** Runs `meshgate analyzer run` with `argv` (after `run`); resolves to the exit code. */
export async function runAnalyzer(argv: string[], io: CliIO, opts: RunAnalyzerOptions = {}): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, rules: { type: 'string' }, dir: { type: 'string' }, nats: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true, strict: true,
  });
  if (values.help) {
    io.stdout.write(RUN_HELP);
    return EXIT_OK;
  }
  let cfg;
  try {
    cfg = await loadCliConfig(values.config, io);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`meshgate analyzer run: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (values.nats) {
    // Scale-out: a replica consuming its share of partitions from JetStream (docs/operations.md).
    if (!cfg) throw new UsageError('--nats needs -c meshgate.yaml (the audit.sink.nats section)');
    const rulesFile = values.rules !== undefined ? path.resolve(io.cwd, values.rules) : cfg.analyzer.rules ?? SHIPPED_DETECTIONS;
    const own = opts.signal ? undefined : processSignal();
    try {
      return await runNatsAnalyzerUntil(cfg, {
        rules: rulesFile, engineFactory: await loadEngineFactory(opts.engineModule),
        logger: opts.logger ?? createLogger(cfg.log.level), signal: opts.signal ?? (own as { signal: AbortSignal }).signal, stderr: io.stderr,
      });
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      io.stderr.write(`meshgate analyzer run: ${err.message}\n`);
      return EXIT_USAGE;
    } finally {
      own?.dispose();
    }
  }
  const auditDirs = positionals.length > 0 ? positionals.map((p) => path.resolve(io.cwd, p)) : cfg ? [cfg.audit.dir] : [];
  if (auditDirs.length === 0) throw new UsageError('give the AUDIT_DIR(s) to follow, or -c meshgate.yaml');
  const stateDir = values.dir !== undefined ? path.resolve(io.cwd, values.dir) : cfg?.analyzer.dir ?? path.join(auditDirs[0] as string, 'analyzer');
  const rules = values.rules !== undefined ? path.resolve(io.cwd, values.rules) : cfg?.analyzer.rules ?? SHIPPED_DETECTIONS;
  const logger = opts.logger ?? createLogger(cfg?.log.level ?? 'info');
  let engine;
  try {
    engine = await (await loadEngineFactory(opts.engineModule))(rules);
  } catch (err) {
    if (!(err instanceof RulesError)) throw err;
    io.stderr.write(`meshgate analyzer run: ${err.message}\n`);
    return EXIT_USAGE;
  }
  const wh = cfg?.analyzer.webhook;
  let svc: AnalyzerService;
  try {
    svc = await AnalyzerService.start({
      auditDirs, stateDir, engine, logger,
      webhook: wh ? { url: wh.url, timeoutMs: wh.timeout, maxQueue: wh.maxQueue, headers: wh.headers } : undefined,
    });
  } catch (err) {
    io.stderr.write(`meshgate analyzer run: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }
  io.stderr.write(`meshgate analyzer: following ${auditDirs.join(', ')} with ${rules}; state in ${stateDir}\n`);
  opts.onStarted?.(svc);
  const own = opts.signal ? undefined : processSignal();
  const signal = opts.signal ?? (own as { signal: AbortSignal }).signal;
  let failed: unknown;
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
    svc.done.then(resolve, (err: unknown) => {
      failed = err;
      resolve();
    });
  });
  own?.dispose();
  await svc.stop().catch((err: unknown) => { failed ??= err; });
  const s = svc.stats();
  io.stderr.write(`meshgate analyzer: stopped after ${s.eventsProcessed} events: ${s.alerts} alerts, ${s.decisions} decisions\n`);
  if (failed !== undefined) {
    io.stderr.write(`meshgate analyzer run: failed: ${(failed as Error).message}\n`);
    return EXIT_FAILED;
  }
  return EXIT_OK;
}

/** The `run` entry of `meshgate analyzer` (src/cli/analyzer.ts). */
export const runSubcommand = {
  summary: 'follow audit logs live: alerts, quarantine decisions',
  help: RUN_HELP,
  run: (argv: string[], io: CliIO): Promise<number> => runAnalyzer(argv, io),
};
