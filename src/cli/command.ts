/**
 * The CLI command contract. Every subcommand module exports one `Command`.
 * Exit codes (PRODUCT §2): 0 ok, 1 check/verification failed, 2 usage/config error.
 */
import type { Writable } from 'node:stream';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CliIO {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  /** Working directory for relative paths given on the command line. */
  readonly cwd: string;
}

export interface Command {
  readonly name: string;
  /** One line for `meshgate --help`. */
  readonly summary: string;
  /** Full `--help` text. */
  readonly help: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[], io: CliIO): Promise<number>;
}

/** Thrown for bad flags or arguments: printed with the help hint, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function processIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}
