/**
 * `meshgate audit <sub>`: audit log tools. Each subcommand is one entry of
 * SUBCOMMANDS (query and tail join `verify` there).
 */
import { parseArgs } from 'node:util';
import { aggregate, GROUP_BY, isGroupBy } from '../audit/query/aggregate.ts';
import type { AuditFilter } from '../audit/query/filter.ts';
import { followAudit } from '../audit/query/follow-audit.ts';
import { parseQuery, QueryFlagError, QUERY_FLAGS, type QueryFlagName } from '../audit/query/parse-query.ts';
import { formatCount, ProgressLine } from '../audit/query/progress.ts';
import { queryAudit, recordsOf, type QueryProgress, type QueryStats } from '../audit/query/query-audit.ts';
import { DAMAGE_KEPT, type DamagedLine, type QueryHit } from '../audit/query/scan.ts';
import { EventTable, groupTable } from '../audit/query/table.ts';
import { TextSink } from '../audit/query/text-sink.ts';
import { auditDirArg, runVerify, VERIFY_HELP } from './audit-verify.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, dispatchSubcommand, type CliIO, type Command, type Subcommand } from './command.ts';


const FILTER_HELP = `Filters (all given must hold):
  --since T          events at or after T: a duration back from now (30m, 1h, 7d),
                     an ISO date (2026-01-31, UTC) or date-time with a zone
                     (2026-01-31T12:00:00Z, 2026-01-31T14:00+02:00), or "now"
  --until T          events before T (same forms)
  --identity ID      peer SPIFFE ID or token subject; exact, or a prefix with a
                     trailing * (quote it: 'spiffe://mesh.local/ns/prod/*')
  --route NAME       route name
  --path-prefix P    canonical path under P (/orders selects /orders and
                     /orders/7, not /orders-old)
  --method M         HTTP method
  --decision D       allow | deny
  --reason R         reason code (authz_no_matching_rule, jwt_expired, …)
  --status S         403, a range 400-499, or a class 4xx (0: TLS handshake)
  --min-latency D    latency at least D (250ms, 2s)
  --request-id ID    one request
  --type T           request | tls_handshake | alarm
`;

const QUERY_HELP = `Usage: meshgate audit query DIR [filters] [--json] [--count | --group-by KEY]
                           [--limit N] [--offset N] [--reverse]

Prints the audit events in DIR (all rotated segments) that match the filters,
oldest first: an aligned table (cut to the terminal's width on a terminal),
or with --json the stored records as JSON Lines (byte-exact, hashes included).

${FILTER_HELP}
Output:
  --json             JSON Lines; with --count or --group-by one JSON document
  --count            print the number of matching events
  --group-by KEY     counts per KEY, largest first: identity, route, reason,
                     status, decision, method, path, type
  --limit N          at most N events (default 100 for the table, all with
                     --json); with --group-by, the N largest groups; 0: no limit
  --offset N         skip the first N matching events
  --reverse          newest first
  -h, --help         show this help

Lines that are not audit records are reported on stderr with segment:line and
counted; the scan goes on. A summary goes to stderr; on a terminal, progress too.
Reading is not verifying: 'meshgate audit verify DIR' proves the chain.

Exit codes: 0 ok (also when nothing matched), 1 damaged lines found,
2 usage error or DIR unreadable.
`;

const TAIL_HELP = `Usage: meshgate audit tail DIR [-n N] [-f] [filters] [--json]

Prints the last N events in DIR that match the filters (oldest of them
first), then with -f keeps printing matching events as they are written,
across segment rotation, until interrupted (Ctrl-C).

  -n, --lines N      how many past events to print first (default 20; 0: none)
  -f, --follow       keep following the log
  --json             JSON Lines (the stored records) instead of the table
  -h, --help         show this help

${FILTER_HELP}
Exit codes: 0 ok, 1 damaged lines found, 2 usage error or DIR unreadable.
`;

const FILTER_OPTIONS = Object.fromEntries(QUERY_FLAGS.map((f) => [f, { type: 'string' as const }])) as Record<QueryFlagName, { type: 'string' }>;

/** The filter from parsed flags; a bad value is a usage error naming the flag. */
function filterFrom(values: Partial<Record<string, unknown>>): AuditFilter {
  const flags: Record<string, unknown> = {};
  for (const f of QUERY_FLAGS) if (values[f] !== undefined) flags[f] = values[f];
  try {
    return parseQuery(flags);
  } catch (err) {
    if (err instanceof QueryFlagError) throw new UsageError(err.message);
    throw err;
  }
}

function countFlag(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d{1,9}$/.test(v)) throw new UsageError(`--${name}: ${JSON.stringify(v)} is not a whole number`);
  return Number(v);
}

/** Terminal facts of a stream (PassThrough in tests may pretend). */
function tty(s: unknown): { isTTY: boolean; columns: number | undefined } {
  const t = s as { isTTY?: boolean; columns?: number };
  // A pseudo-terminal without a size reports 0 columns.
  return { isTTY: t.isTTY === true, columns: t.isTTY === true ? (t.columns || 80) : undefined };
}

/** Reports damaged lines on stderr as they are found (the first DAMAGE_KEPT, then a count). */
function damageReporter(io: CliIO, progress: ProgressLine | undefined): (d: DamagedLine) => void {
  let n = 0;
  return (d) => {
    progress?.clear();
    n++;
    if (n <= DAMAGE_KEPT) io.stderr.write(`damaged line: ${d.segment}:${d.line}: ${d.reason}\n`);
    else if (n === DAMAGE_KEPT + 1) io.stderr.write('damaged line: more damaged lines follow; they are counted, not listed\n');
  };
}

function summary(stats: Readonly<QueryStats>, events: string | undefined): string {
  const parts: string[] = [];
  if (events !== undefined) parts.push(events);
  const of = stats.segmentsRead === stats.segments ? `${stats.segments}` : `${stats.segmentsRead} of ${stats.segments}`;
  parts.push(`${formatCount(stats.scanned)} records scanned in ${of} segment${stats.segments === 1 ? '' : 's'}`);
  if (stats.damaged > 0) parts.push(`${formatCount(stats.damaged)} damaged line${stats.damaged === 1 ? '' : 's'} (not records; run 'meshgate audit verify')`);
  return `${parts.join('; ')}\n`;
}

function incompleteNote(stats: Readonly<QueryStats>): string {
  const i = stats.incomplete;
  return i ? `note: ${i.segment}:${i.line}: ${i.reason}; not read\n` : '';
}

/** Scan errors (a segment unreadable mid-way) are operator problems: exit 2, like verify. */
function readFailure(io: CliIO, sub: string, dir: string, err: unknown): number {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw err;
  io.stderr.write(`meshgate audit ${sub}: cannot read ${dir}: ${code}\n`);
  return EXIT_USAGE;
}

async function runQuery(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...FILTER_OPTIONS,
      json: { type: 'boolean', default: false },
      count: { type: 'boolean', default: false },
      'group-by': { type: 'string' },
      limit: { type: 'string' },
      offset: { type: 'string' },
      reverse: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(QUERY_HELP);
    return EXIT_OK;
  }
  const dir = await auditDirArg(positionals, io, 'query');
  const filter = filterFrom(values);
  const groupBy = values['group-by'];
  if (groupBy !== undefined && !isGroupBy(groupBy)) throw new UsageError(`--group-by: ${JSON.stringify(groupBy)} is not one of ${GROUP_BY.join(', ')}`);
  if (values.count && groupBy !== undefined) throw new UsageError('--count and --group-by do not go together');
  if (values.count && (values.limit !== undefined || values.offset !== undefined)) throw new UsageError('--count counts every match: --limit and --offset do not apply');
  if (groupBy !== undefined && values.offset !== undefined) throw new UsageError('--offset does not apply to --group-by');
  const rows = !values.count && groupBy === undefined;
  const limit = countFlag('limit', values.limit, rows && !values.json ? 100 : 0);
  const offset = countFlag('offset', values.offset, 0);

  const out = tty(io.stdout);
  const progress = tty(io.stderr).isTTY ? new ProgressLine(io.stderr) : undefined;
  const sink = new TextSink(io.stdout, { beforeWrite: () => progress?.clear() });
  const q = queryAudit(dir, filter, {
    ...(rows ? { limit, offset } : {}),
    order: values.reverse ? 'desc' : 'asc',
    onDamaged: damageReporter(io, progress),
    ...(progress ? { onProgress: (p: QueryProgress) => progress.update(p) } : {}),
  });
  let events: string | undefined;
  try {
    if (values.count) {
      let n = 0;
      for await (const _ of q) n++;
      sink.write(values.json ? `${JSON.stringify({ count: n, scanned: q.stats.scanned, damaged: q.stats.damaged })}\n` : `${n}\n`);
    } else if (groupBy !== undefined) {
      const a = await aggregate(recordsOf(q), groupBy);
      const shown = limit > 0 ? { ...a, groups: a.groups.slice(0, limit) } : a;
      sink.write(values.json ? `${JSON.stringify({ ...shown, scanned: q.stats.scanned, damaged: q.stats.damaged })}\n` : groupTable(shown, out.columns));
      events = `${formatCount(a.total)} matching events in ${formatCount(a.groups.length)} group${a.groups.length === 1 ? '' : 's'}${shown.groups.length < a.groups.length ? ` (the ${shown.groups.length} largest shown)` : ''}`;
    } else {
      const table = values.json ? undefined : new EventTable((t) => sink.write(t), { width: out.columns });
      let n = 0;
      for await (const h of q) {
        n++;
        if (table) table.add(h.record);
        else sink.write(`${h.text}\n`);
        await sink.flush();
        if (sink.closed) break;
      }
      if (table && n > 0) table.settle();
      events = n === 0 ? 'no matching events' : `${formatCount(n)} event${n === 1 ? '' : 's'}${q.stats.limited ? ` (--limit ${limit} reached; more may match, --limit 0 shows all)` : ''}`;
    }
  } catch (err) {
    progress?.clear();
    return readFailure(io, 'query', dir, err);
  }
  await sink.end();
  progress?.clear();
  io.stderr.write(incompleteNote(q.stats) + summary(q.stats, events));
  return q.stats.damaged > 0 ? EXIT_FAILED : EXIT_OK;
}

async function runTail(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...FILTER_OPTIONS,
      json: { type: 'boolean', default: false },
      follow: { type: 'boolean', short: 'f', default: false },
      lines: { type: 'string', short: 'n' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(TAIL_HELP);
    return EXIT_OK;
  }
  const dir = await auditDirArg(positionals, io, 'tail');
  const filter = filterFrom(values);
  const n = countFlag('lines', values.lines, 20);

  const out = tty(io.stdout);
  const progress = tty(io.stderr).isTTY ? new ProgressLine(io.stderr) : undefined;
  const sink = new TextSink(io.stdout, { beforeWrite: () => progress?.clear() });
  const onDamaged = damageReporter(io, progress);
  const table = values.json ? undefined : new EventTable((t) => sink.write(t), { width: out.columns });
  const print = (h: QueryHit): void => (table ? table.add(h.record) : sink.write(`${h.text}\n`));
  // Newest first to find the last N cheaply; at least one so that the scan
  // still runs and yields the end of the log, where following starts.
  const q = queryAudit(dir, filter, { order: 'desc', limit: Math.max(n, 1), onDamaged, ...(progress ? { onProgress: (p: QueryProgress) => progress.update(p) } : {}) });
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  let damaged = 0;
  try {
    const last: QueryHit[] = [];
    for await (const h of q) last.push(h);
    progress?.clear();
    for (const h of last.slice(0, n).reverse()) print(h);
    damaged += q.stats.damaged;
    if (values.follow) {
      const from = q.stats.end;
      if (!from) throw new Error('audit tail: the scan did not reach the end of the log');
      table?.settle();
      await sink.flush(true);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const f = followAudit(dir, filter, from, { signal: stop.signal, onDamaged });
      for await (const h of f) {
        print(h);
        await sink.flush(true);
        if (sink.closed) break;
      }
      damaged += f.stats.damaged;
    } else if (table && last.length > 0) {
      table.settle();
    }
  } catch (err) {
    progress?.clear();
    return readFailure(io, 'tail', dir, err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  await sink.end();
  if (q.stats.incomplete && !values.follow) io.stderr.write(incompleteNote(q.stats));
  if (damaged > 0) io.stderr.write(`${formatCount(damaged)} damaged line${damaged === 1 ? '' : 's'} (not records; run 'meshgate audit verify')\n`);
  return damaged > 0 ? EXIT_FAILED : EXIT_OK;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  verify: { summary: 'check the hash chain of an audit log folder', help: VERIFY_HELP, run: runVerify },
  query: { summary: 'find audit events by time, identity, route, decision, status, …', help: QUERY_HELP, run: runQuery },
  tail: { summary: 'show the newest audit events, and follow new ones with -f', help: TAIL_HELP, run: runTail },
};

const HELP = `Usage: meshgate audit <command> [options]

Commands:
${Object.entries(SUBCOMMANDS).map(([k, v]) => `  ${k.padEnd(8)}  ${v.summary}`).join('\n')}

Run 'meshgate audit <command> --help' for a command's options.
`;

/**
 * `meshgate audit verify|query|tail`. verify: exit 0 intact, 1 tampered;
 * query/tail: 0 ok, 1 damaged lines found; all: 2 usage error.
 */
export const auditCommand: Command = {
  name: 'audit',
  summary: 'audit log: audit verify | query | tail',
  help: HELP,
  run(argv: string[], io: CliIO): Promise<number> {
    return dispatchSubcommand('audit', HELP, SUBCOMMANDS, argv, io);
  },
};
