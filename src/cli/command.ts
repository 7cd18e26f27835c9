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

/** One entry of a command group (`meshgate audit verify`, `meshgate policy test`, …). */
export interface Subcommand {
  readonly summary?: string;
  /** The subcommand's `--help` text. */
  readonly help: string;
  run(argv: string[], io: CliIO): Promise<number>;
}

/**
 * The shared front of every command group: `meshgate GROUP` alone prints the
 * group help (exit 2), `--help` prints it (exit 0), `GROUP SUB --help` prints
 * the subcommand help, an unknown SUB is a usage error naming the known ones.
 * Own properties only: `meshgate audit constructor` is unknown, not Object's.
 */
export async function dispatchSubcommand(group: string, help: string, table: Readonly<Record<string, Subcommand>>, argv: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(help);
    return sub === undefined ? EXIT_USAGE : EXIT_OK;
  }
  const cmd = Object.hasOwn(table, sub) ? table[sub] : undefined;
  if (!cmd) throw new UsageError(`unknown ${group} command '${sub}' (expected ${Object.keys(table).join(', ')})`);
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(cmd.help);
    return EXIT_OK;
  }
  return cmd.run(rest, io);
}
