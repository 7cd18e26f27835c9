/**
 * `meshgate decisions list|add|delete|except`: manual quarantines, unbans and
 * false-positive exceptions in the analyzer's decisions.json (the gateway
 * picks changes up within a second), or in the NATS KV bucket when the
 * config has `audit.sink.nats` (decisions-backend.ts). docs/quarantine.md is
 * the guide.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import type { Decision, Exception, Scope } from '../analyzer/types.ts';
import { StateDirMissing } from '../analyzer/state-dir.ts';
import { ConfigError } from '../config/load.ts';
import { parseDuration } from '../core/duration.ts';
import { DecisionsFileError, SCOPES } from '../decisions/decisions-file.ts';
import { NatsUnreachable, openDecisionsBackend, type DecisionsBackend } from './decisions-backend.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, dispatchSubcommand, type CliIO, type Command, type Subcommand } from './command.ts';

const WHERE = `Where the decisions are (every subcommand):
      --dir STATE          analyzer state folder (holds decisions.json)
  -c, --config FILE        or take them from this config (default: ./meshgate.yaml):
                           the NATS KV bucket when it has audit.sink.nats
                           (every gateway and analyzer replica), else
                           decisions.json in analyzer.dir`;

const HELP = `Usage:
  meshgate decisions list [--all] [--json]
  meshgate decisions add --scope SCOPE --value V --duration D [--reason TEXT] [--simulated] [--json]
  meshgate decisions delete ID
  meshgate decisions except --rule RULE --scope SCOPE --value V --duration D [--note TEXT] [--json]

Quarantine decisions refuse matching requests at the gateway (403, reason
quarantined) until they expire. Rules order them; people add, delete
(unban) and except (mark a false positive) them here.

Subcommands:
  list     active decisions and exceptions (--all: also expired ones kept for
           repeat-offender escalation)
  add      quarantine SCOPE=V for D (e.g. 30m, 4h, 7d); --simulated records
           "would block" only
  delete   remove decision or exception ID (an unban)
  except   suppress alerts and quarantines of RULE ('*' = every rule) for
           SCOPE=V during D

SCOPE is one of: spiffe (peer SPIFFE ID), sub (token subject), jti (token id),
cert (peer certificate SHA-256, hex), ip (source address).

${WHERE}
      --json               print the result as JSON
  -h, --help               show this help

Exit codes: 0 ok, 1 ID not found (delete), 2 usage error, unreadable state
or NATS unreachable.
`;

const common = {
  dir: { type: 'string' },
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const SCOPE_LIST = 'spiffe|sub|jti|cert|ip';

function scopeOf(s: string | undefined): Scope {
  if (s === undefined) throw new UsageError(`--scope is required (${SCOPE_LIST})`);
  if (!SCOPES.includes(s as Scope)) throw new UsageError(`--scope must be one of ${SCOPE_LIST}, not '${s}'`);
  return s as Scope;
}

/** Checks and normalizes a value the way the gateway will compare it (exact match). */
function valueOf(scope: Scope, v: string | undefined): string {
  if (v === undefined || v.trim() === '') throw new UsageError('--value is required');
  const value = v.trim();
  if (scope === 'ip' && isIP(value) === 0) throw new UsageError(`--value '${value}' is not an IP address`);
  if (scope === 'spiffe' && !/^spiffe:\/\/[^/\s]+(\/\S*)?$/.test(value)) throw new UsageError(`--value '${value}' is not a SPIFFE ID (spiffe://trust-domain/path)`);
  if (scope === 'cert') {
    // Audit events record lowercase hex; accept the colon-separated form openssl prints.
    const hex = value.replace(/:/g, '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new UsageError('--value for cert must be a SHA-256 fingerprint (64 hex digits, colons allowed)');
    return hex;
  }
  return value;
}

function durationOf(d: string | undefined): number {
  if (d === undefined) throw new UsageError('--duration is required (e.g. 30m, 4h, 7d)');
  const ms = parseDuration(d);
  if (ms === undefined || ms <= 0) throw new UsageError(`--duration '${d}' is not a positive duration (e.g. 30m, 4h, 7d)`);
  return ms;
}

/** "in 59m" / "3m ago" relative to now. */
export function relative(iso: string, now: number): string {
  const d = Date.parse(iso) - now;
  const a = Math.abs(d);
  const txt = a < 60_000 ? `${Math.round(a / 1000)}s` : a < 3_600_000 ? `${Math.round(a / 60_000)}m` : a < 172_800_000 ? `${Math.round(a / 3_600_000)}h` : `${Math.round(a / 86_400_000)}d`;
  return d >= 0 ? `in ${txt}` : `${txt} ago`;
}

/** Fixed-width columns (the last one unpadded). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

async function openStore(values: { dir?: string | undefined; config?: string | undefined }, io: CliIO): Promise<DecisionsBackend> {
  try {
    return await openDecisionsBackend(values, io);
  } catch (err) {
    if (err instanceof StateDirMissing) throw new UsageError(err.message);
    if (err instanceof ConfigError || err instanceof DecisionsFileError || err instanceof NatsUnreachable) {
      io.stderr.write(`meshgate decisions: ${err.message}\n`);
      throw new Exit(EXIT_USAGE);
    }
    throw err;
  }
}

/** Runs `fn` on `store`, then closes it (a NATS connection must not keep the CLI alive). */
async function using<T>(store: DecisionsBackend, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await store.close();
  }
}

class Exit extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

function showDecisions(io: CliIO, decisions: readonly Decision[], exceptions: readonly Exception[]): void {
  const now = Date.now();
  if (decisions.length === 0) io.stdout.write('no decisions\n');
  else {
    io.stdout.write(table(['ID', 'SCOPE', 'VALUE', 'MODE', 'EXPIRES', 'OFFENCE', 'ORIGIN', 'REASON'], decisions.map((d) => [
      d.id, d.scope, d.value, d.simulated ? 'simulated' : 'enforced', relative(d.expiresAt, now), String(d.offence), d.origin, d.reason,
    ])));
  }
  if (exceptions.length > 0) {
    io.stdout.write('\nexceptions:\n');
    io.stdout.write(table(['ID', 'RULE', 'SCOPE', 'VALUE', 'EXPIRES', 'NOTE'], exceptions.map((x) => [x.id, x.rule, x.scope, x.value, relative(x.expiresAt, now), x.note ?? ''])));
  }
}

async function list(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...common, all: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const store = await openStore(values, io);
  const r = await using(store, () => store.list({ includeExpired: values.all, now: Date.now() }));
  if (values.json) io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else showDecisions(io, r.decisions, r.exceptions);
  return EXIT_OK;
}

async function add(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...common, scope: { type: 'string' }, value: { type: 'string' }, duration: { type: 'string' }, reason: { type: 'string' }, simulated: { type: 'boolean', default: false } },
    allowPositionals: true, strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const scope = scopeOf(values.scope);
  const input = { scope, value: valueOf(scope, values.value), durationMs: durationOf(values.duration), simulated: values.simulated, ...(values.reason ? { reason: values.reason } : {}) };
  const store = await openStore(values, io);
  const r = await using(store, () => store.add(input));
  const d = r.decision;
  if (values.json) io.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
  else if (r.status === 'existing') io.stdout.write(`${d.scope}=${d.value} is already ${d.simulated ? 'simulated' : 'quarantined'} until ${d.expiresAt} (longer than asked): ${d.id}\n`);
  else io.stdout.write(`${d.simulated ? 'simulated (would block)' : 'quarantined'} ${d.scope}=${d.value} until ${d.expiresAt}: ${d.id}\n`);
  return EXIT_OK;
}

async function del(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: common, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('decisions delete takes exactly one ID');
  const id = positionals[0] as string;
  const store = await openStore(values, io);
  const removed = await using(store, () => store.remove(id));
  if (!removed) {
    io.stderr.write(`meshgate decisions: no decision or exception with id ${id}\n`);
    return EXIT_FAILED;
  }
  if (values.json) io.stdout.write(`${JSON.stringify(removed, null, 2)}\n`);
  else io.stdout.write(`deleted ${'rule' in removed ? 'exception' : 'decision'} ${id} (${removed.scope}=${removed.value})\n`);
  return EXIT_OK;
}

async function except(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...common, rule: { type: 'string' }, scope: { type: 'string' }, value: { type: 'string' }, duration: { type: 'string' }, note: { type: 'string' } },
    allowPositionals: true, strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (values.rule === undefined || values.rule === '') throw new UsageError("--rule is required (a rule name, or '*' for every rule)");
  const scope = scopeOf(values.scope);
  const input = { rule: values.rule, scope, value: valueOf(scope, values.value), durationMs: durationOf(values.duration), ...(values.note ? { note: values.note } : {}) };
  const store = await openStore(values, io);
  const x = await using(store, () => store.addException(input));
  if (values.json) io.stdout.write(`${JSON.stringify(x, null, 2)}\n`);
  else io.stdout.write(`exception ${x.id}: rule ${x.rule} suppressed for ${x.scope}=${x.value} until ${x.expiresAt}\n`);
  return EXIT_OK;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  list: { help: HELP, run: list }, add: { help: HELP, run: add }, delete: { help: HELP, run: del }, except: { help: HELP, run: except },
};

/** The `meshgate decisions` command. */
export const decisionsCommand: Command = {
  name: 'decisions',
  summary: 'quarantine decisions: decisions list | add | delete | except',
  help: HELP,
  async run(argv: string[], io: CliIO): Promise<number> {
    try {
      return await dispatchSubcommand('decisions', HELP, SUBCOMMANDS, argv, io);
    } catch (err) {
      if (err instanceof Exit) return err.code;
      throw err;
    }
  },
};
