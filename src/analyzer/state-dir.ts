/**
 * Where the analyzer state folder is, for the CLI commands that read or
 * change it (`decisions`, `alerts`, `analyzer run`): `--dir` when given, else
 * `analyzer.dir` of the config (`-c FILE`, or ./meshgate.yaml when present).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';

/** No way to find the state folder: a usage problem the CLI reports with exit 2. */
export class StateDirMissing extends Error {
  constructor() {
    super('no analyzer state dir: pass --dir STATE or -c meshgate.yaml');
    this.name = 'StateDirMissing';
  }
}

/** The config named by `-c`, or ./meshgate.yaml when it exists; undefined otherwise. Throws ConfigError for a bad file. */
export async function loadCliConfig(config: string | undefined, io: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Config | undefined> {
  const file = config ?? (existsSync(path.join(io.cwd, 'meshgate.yaml')) ? 'meshgate.yaml' : undefined);
  if (file === undefined) return undefined;
  return loadConfig(file, io.env, { cwd: io.cwd, fileName: file });
}

/** Resolves the analyzer state folder from `--dir` / `-c`; throws StateDirMissing or ConfigError. */
export async function resolveStateDir(opts: { dir?: string | undefined; config?: string | undefined }, io: { cwd: string; env: NodeJS.ProcessEnv }): Promise<string> {
  if (opts.dir !== undefined && opts.dir !== '') return path.resolve(io.cwd, opts.dir);
  const cfg = await loadCliConfig(opts.config, io);
  if (cfg?.analyzer.dir === undefined) throw new StateDirMissing();
  return cfg.analyzer.dir;
}
