/**
 * `meshgate alerts list|show`: review what the analyzer raised, from
 * alerts.jsonl in the analyzer state folder (schema: docs/alerts.md). An
 * alert can be emitted more than once (an update when its window closes);
 * the last emission of an id is the alert.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditRecord } from '../audit/event.ts';
import { readAuditEvents } from '../audit/read-events.ts';
import { ALERTS_FILE, readAlertLines } from '../analyzer/sinks/alerts-log.ts';
import { resolveStateDir, StateDirMissing } from '../analyzer/state-dir.ts';
import type { Alert, Severity } from '../analyzer/types.ts';
import { ConfigError } from '../config/load.ts';
import { parseDuration } from '../core/duration.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, dispatchSubcommand, type CliIO, type Command, type Subcommand } from './command.ts';
import { table } from './decisions.ts';

const HELP = `Usage:
  meshgate alerts list [--since D] [--rule RULE] [--severity S] [--json]
  meshgate alerts show ID [--audit DIR] [--json]

list   alerts, oldest first: --since D keeps those last seen within D (e.g.
       1h, 7d); --rule keeps one rule; --severity keeps S and above
       (low < medium < high < critical)
show   one alert (ID or a unique prefix of at least 6 characters) with its
       evidence event ids; with --audit DIR also the evidence events from
       that audit log

Where the alerts are:
      --dir STATE          analyzer state folder (holds alerts.jsonl)
  -c, --config FILE        or take analyzer.dir from this config (default: ./meshgate.yaml)
      --json               print the result as JSON
  -h, --help               show this help

Exit codes: 0 ok, 1 no alert with that ID, 2 usage error or unreadable state.
`;

const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

const common = {
  dir: { type: 'string' },
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

async function alertsFile(values: { dir?: string | undefined; config?: string | undefined }, io: CliIO): Promise<string | number> {
  try {
    return path.join(await resolveStateDir(values, io), ALERTS_FILE);
  } catch (err) {
    if (err instanceof StateDirMissing) throw new UsageError(err.message);
    if (err instanceof ConfigError) {
      io.stderr.write(`meshgate alerts: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

/** The alerts of `file`, one per id (its last emission), in order of first emission. */
async function readAlerts(file: string): Promise<Alert[]> {
  const byId = new Map<string, Alert>();
  for await (const l of readAlertLines(file)) {
    const earlier = byId.get(l.alert.id);
    byId.delete(l.alert.id);
    const decisionId = l.alert.decisionId ?? earlier?.decisionId;
    byId.set(l.alert.id, decisionId === undefined ? l.alert : { ...l.alert, decisionId });
  }
  return [...byId.values()].sort((a, b) => Date.parse(a.lastSeen) - Date.parse(b.lastSeen));
}

async function list(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, options: { ...common, since: { type: 'string' }, rule: { type: 'string' }, severity: { type: 'string' } }, allowPositionals: true, strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  let sinceMs: number | undefined;
  if (values.since !== undefined) {
    sinceMs = parseDuration(values.since);
    if (sinceMs === undefined) throw new UsageError(`--since '${values.since}' is not a duration (e.g. 30m, 1h, 7d)`);
  }
  const minSev = values.severity === undefined ? 0 : SEVERITIES.indexOf(values.severity as Severity);
  if (minSev < 0) throw new UsageError(`--severity must be one of ${SEVERITIES.join('|')}`);
  const file = await alertsFile(values, io);
  if (typeof file === 'number') return file;
  const from = sinceMs === undefined ? -Infinity : Date.now() - sinceMs;
  const alerts = (await readAlerts(file)).filter((a) =>
    Date.parse(a.lastSeen) >= from && (values.rule === undefined || a.rule === values.rule) && SEVERITIES.indexOf(a.severity) >= minSev);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(alerts, null, 2)}\n`);
    return EXIT_OK;
  }
  if (alerts.length === 0) {
    io.stdout.write('no alerts\n');
    return EXIT_OK;
  }
  io.stdout.write(table(['LAST SEEN', 'SEVERITY', 'RULE', 'SCOPE', 'VALUE', 'COUNT', 'ID', 'DECISION'], alerts.map((a) => [
    a.lastSeen, a.severity, a.rule, a.scope, a.value, String(a.count), a.id, a.decisionId ?? '',
  ])));
  return EXIT_OK;
}

function eventLine(e: AuditRecord): string {
  const who = e.principal?.sub ?? e.peer?.spiffeId ?? '-';
  return `  ${e.time}  ${e.id}  ${e.decision} ${e.status} ${e.reason}  ${e.method ?? '-'} ${e.path ?? e.rawPath ?? '-'}  ${who}  ${e.source.ip}\n`;
}

async function show(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...common, audit: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('alerts show takes exactly one ID');
  const want = positionals[0] as string;
  if (want.length < 6) throw new UsageError('give at least 6 characters of the alert ID');
  const file = await alertsFile(values, io);
  if (typeof file === 'number') return file;
  const all = await readAlerts(file);
  const exact = all.find((a) => a.id === want);
  const matches = exact ? [exact] : all.filter((a) => a.id.startsWith(want));
  if (matches.length !== 1) {
    io.stderr.write(`meshgate alerts: ${matches.length === 0 ? 'no alert' : `${matches.length} alerts`} with id ${want}\n`);
    return EXIT_FAILED;
  }
  const alert = matches[0] as Alert;
  let events: AuditRecord[] | undefined;
  if (values.audit !== undefined) {
    const wanted = new Set(alert.evidence);
    events = [];
    try {
      for await (const e of readAuditEvents(path.resolve(io.cwd, values.audit))) {
        if (!wanted.has(e.id)) continue;
        events.push(e);
        if (events.length === wanted.size) break;
      }
    } catch (err) {
      io.stderr.write(`meshgate alerts: cannot read audit log ${values.audit}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return EXIT_USAGE;
    }
  }
  if (values.json) {
    io.stdout.write(`${JSON.stringify(events ? { alert, events } : { alert }, null, 2)}\n`);
    return EXIT_OK;
  }
  const rows: [string, string][] = [
    ['id', alert.id], ['rule', alert.rule], ['severity', alert.severity], ['title', alert.title], ['scope', `${alert.scope}=${alert.value}`],
    ['first seen', alert.firstSeen], ['last seen', alert.lastSeen], ['count', String(alert.count)], ['summary', alert.summary],
  ];
  if (alert.decisionId) rows.push(['decision', alert.decisionId]);
  for (const [k, v] of rows) io.stdout.write(`${`${k}:`.padEnd(12)}${v}\n`);
  io.stdout.write(`evidence (${alert.evidence.length} event${alert.evidence.length === 1 ? '' : 's'}):\n`);
  if (events) {
    const found = new Set(events.map((e) => e.id));
    for (const e of events) io.stdout.write(eventLine(e));
    for (const id of alert.evidence) if (!found.has(id)) io.stdout.write(`  ${id}  (not in ${values.audit})\n`);
  } else {
    for (const id of alert.evidence) io.stdout.write(`  ${id}\n`);
  }
  return EXIT_OK;
}

const SUBCOMMANDS: Record<string, Subcommand> = { list: { help: HELP, run: list }, show: { help: HELP, run: show } };

/** The `meshgate alerts` command. */
export const alertsCommand: Command = {
  name: 'alerts',
  summary: 'alerts: alerts list | show',
  help: HELP,
  run(argv: string[], io: CliIO): Promise<number> {
    return dispatchSubcommand('alerts', HELP, SUBCOMMANDS, argv, io);
  },
};
