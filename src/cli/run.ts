/** `meshgate run -c meshgate.yaml` — run the sidecar until SIGTERM/SIGINT, then drain. */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { Gateway } from '../app.ts';
import { startPrimary } from '../cluster/primary.ts';
import { runWorker } from '../cluster/worker.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { createLogger } from '../core/log.ts';
import { EXIT_OK, EXIT_USAGE, UsageError, type CliIO, type Command } from './command.ts';

export const runCommand: Command = {
  name: 'run',
  summary: 'run the sidecar',
  help: `Usage: meshgate run -c FILE [--log-level LEVEL]

Starts meshgate with the configuration in FILE (YAML; see docs/configuration.md).
The configuration is validated first: every error is printed with its path and
the command exits 2. SIGTERM or SIGINT drains in-flight requests and exits 0.

Options:
  -c, --config FILE     configuration file (required)
      --log-level LEVEL override log.level (fatal|error|warn|info|debug|trace|silent)
  -h, --help            show this help
`,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string' } }, strict: true });
    if (!values.config) throw new UsageError('missing -c FILE');
    const configFile = resolve(io.cwd, values.config);
    let cfg;
    try {
      cfg = await loadConfig(configFile, io.env);
    } catch (e) {
      if (e instanceof ConfigError) { io.stderr.write(`${e.message}\n`); return EXIT_USAGE; }
      throw e;
    }
    const log = createLogger(values['log-level'] ?? cfg.log.level);
    const workers = cfg.workers === 'auto' ? availableParallelism() : cfg.workers;
    let stopper: { stop(): Promise<void> };
    try {
      if (cluster.isWorker) {
        // A worker runs until the primary tells it to drain and stop.
        await runWorker(cfg, { log, configFile, env: io.env });
        return EXIT_OK;
      }
      stopper = workers > 1
        ? await startPrimary(cfg, { log, n: workers, argv: ['run', ...argv] })
        : await Gateway.start(cfg, { log, configFile, env: io.env });
    } catch (e) {
      log.fatal({ err: e }, 'meshgate could not start');
      io.stderr.write(`meshgate: cannot start: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
    await new Promise<void>((resolveStop) => {
      const stop = (signal: string): void => {
        log.info({ signal }, 'shutting down');
        void stopper.stop().then(resolveStop);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return EXIT_OK;
  },
};
