/**
 * `meshgate config check -c FILE [--json]` — validate a config file, listing
 * every problem (exit 0 valid, 2 invalid); `meshgate config schema` — print
 * the JSON Schema for editors.
 */
import { parseArgs } from 'node:util';
import { EXIT_OK, EXIT_USAGE, UsageError, type CliIO, type Command } from './command.ts';
import { ConfigError, formatIssue, loadConfig } from '../config/load.ts';
import { configJsonSchema } from '../config/json-schema.ts';

const HELP = `Usage:
  meshgate config check -c FILE [--json]
  meshgate config schema

Subcommands:
  check   Validate FILE the way 'meshgate run' does: YAML syntax, the schema,
          \${VAR} substitution and the rules across keys. Every error is listed
          with file:line:column and key path.
          Exit 0 when valid, 2 when invalid or unreadable.
  schema  Print the JSON Schema of the config file (for editors).

Options (check):
  -c, --config FILE   the config file (relative paths in it resolve against its folder)
      --json          print the result as JSON: {"valid": bool, "file", "errors": [...]}
  -h, --help          show this help
`;

/** The `meshgate config` command. */
export const configCommand: Command = {
  name: 'config',
  summary: 'configuration: config check | schema',
  help: HELP,
  async run(argv: string[], io: CliIO): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined) throw new UsageError('missing subcommand: check or schema');
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(HELP);
      return EXIT_OK;
    }
    switch (sub) {
      case 'check':
        return check(rest, io);
      case 'schema':
        parseArgs({ args: rest, options: {}, strict: true, allowPositionals: false });
        io.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
        return EXIT_OK;
      default:
        throw new UsageError(`unknown subcommand '${sub}' (expected check or schema)`);
    }
  },
};

async function check(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: false,
  });
  const file = values.config;
  if (file === undefined || file === '') throw new UsageError('missing -c FILE');
  try {
    await loadConfig(file, io.env, { cwd: io.cwd, fileName: file });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ valid: false, file, errors: err.issues })}\n`);
    } else {
      const n = err.issues.length;
      io.stdout.write(`${file}: invalid (${n} error${n === 1 ? '' : 's'})\n`);
      for (const issue of err.issues) io.stdout.write(`  ${formatIssue(file, issue)}\n`);
    }
    return EXIT_USAGE;
  }
  // Only the verdict: the loaded config holds secrets (the admin token) and is never printed.
  io.stdout.write(values.json ? `${JSON.stringify({ valid: true, file, errors: [] })}\n` : `${file}: valid\n`);
  return EXIT_OK;
}
