/**
 * `meshgate analyzer <sub>`: the breach-detection analyzer. Each subcommand
 * is one entry of SUBCOMMANDS; `replay` lives here, `run` (following live
 * audit logs) in src/analyzer/run-command.ts.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AuditFormatError } from '../audit/verify.ts';
import { SHIPPED_DETECTIONS } from '../config/load.ts';
import { replay } from '../analyzer/replay.ts';
import { runSubcommand } from '../analyzer/run-command.ts';
import { loadRules, RulesError } from '../analyzer/rules/load.ts';
import type { Alert, RemediationOrder } from '../analyzer/types.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, dispatchSubcommand, type CliIO, type Command, type Subcommand } from './command.ts';

/** One `meshgate analyzer` subcommand (src/analyzer/run-command.ts exports one for `run`). */
export type AnalyzerSubcommand = Subcommand & { readonly summary: string };

const REPLAY_HELP = `Usage: meshgate analyzer replay FILE... [--rules FILE] [--json] [--fail-on-alert]

Runs the detection rules over recorded audit logs in event time, with the
same engine as the live analyzer, and prints the alerts they raise. FILE is
an audit dir (every segment, in order) or a single segment file; several are
merged by event time. Deterministic: the same logs and rules always print
the same output, alert ids included.

Options:
  --rules FILE      detection rules (default: the shipped policies/detections.yaml)
  --json            one alert per line as JSON (final state: count, lastSeen, evidence)
  --evidence N      event ids kept per alert (default 20)
  --fail-on-alert   exit 1 when any alert was raised (for CI)
  -h, --help        show this help

Timing goes to stderr, so stdout stays byte-identical between runs.
Exit codes: 0 done, 1 alerts raised with --fail-on-alert, 2 usage error,
unreadable input or invalid rules.
`;

async function runReplay(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      rules: { type: 'string' },
      json: { type: 'boolean', default: false },
      evidence: { type: 'string' },
      'fail-on-alert': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(REPLAY_HELP);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('analyzer replay needs at least one audit dir or segment file');
  let evidenceLimit: number | undefined;
  if (values.evidence !== undefined) {
    evidenceLimit = Number(values.evidence);
    if (!Number.isInteger(evidenceLimit) || evidenceLimit < 1 || evidenceLimit > 10_000) throw new UsageError('--evidence must be an integer from 1 to 10000');
  }
  const files = positionals.map((p) => path.resolve(io.cwd, p));
  for (const f of files) {
    try {
      await stat(f);
    } catch (err) {
      throw new UsageError(`cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  let rules;
  try {
    rules = await loadRules(values.rules === undefined ? SHIPPED_DETECTIONS : path.resolve(io.cwd, values.rules));
  } catch (err) {
    if (!(err instanceof RulesError)) throw err;
    io.stderr.write(`meshgate analyzer replay: ${err.message}\n`);
    return EXIT_USAGE;
  }
  let result;
  try {
    result = await replay(files, rules, evidenceLimit === undefined ? {} : { evidenceLimit });
  } catch (err) {
    if (err instanceof AuditFormatError) {
      io.stderr.write(`meshgate analyzer replay: not an audit record at ${err.message} (run meshgate audit verify)\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  if (values.json) {
    for (const a of result.alerts) io.stdout.write(`${JSON.stringify(a)}\n`);
  } else {
    io.stdout.write(alertTable(result.alerts, result.remediations));
  }
  const secs = result.elapsedMs / 1000;
  const rate = secs > 0 ? Math.round(result.events / secs) : result.events;
  io.stderr.write(`${result.events} events, ${result.alerts.length} alerts, ${result.remediations.length} quarantine orders in ${secs.toFixed(2)} s (${rate} events/s)\n`);
  return values['fail-on-alert'] && result.alerts.length > 0 ? EXIT_FAILED : EXIT_OK;
}

/** Alerts as an aligned table; a QUARANTINE column says what the rule ordered. */
export function alertTable(alerts: readonly Alert[], orders: readonly RemediationOrder[]): string {
  if (alerts.length === 0) return 'no alerts\n';
  const byAlert = new Map(orders.map((o) => [o.alertId, o]));
  const rows = alerts.map((a) => {
    const o = byAlert.get(a.id);
    const q = o ? `${o.scope} ${Math.round(o.durationMs / 60_000)}m${o.simulated ? ' (simulated)' : ''}` : '-';
    return [a.firstSeen, a.rule, a.severity, a.scope, a.value, String(a.count), q, a.summary];
  });
  const head = ['FIRST SEEN', 'RULE', 'SEVERITY', 'SCOPE', 'VALUE', 'COUNT', 'QUARANTINE', 'SUMMARY'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

const SUBCOMMANDS: Record<string, AnalyzerSubcommand> = {
  replay: { summary: 'run the detection rules over recorded audit logs (event time, deterministic)', help: REPLAY_HELP, run: runReplay },
  run: runSubcommand,
};

const HELP = (): string => `Usage: meshgate analyzer <command> [options]

Commands:
${Object.entries(SUBCOMMANDS).map(([k, v]) => `  ${k.padEnd(8)}  ${v.summary}`).join('\n')}

Run 'meshgate analyzer <command> --help' for a command's options.
Detection rules: docs/detections.md.
`;

/** `meshgate analyzer replay|run`. */
export const analyzerCommand: Command = {
  name: 'analyzer',
  summary: 'breach detection: analyzer run | replay',
  get help(): string {
    return HELP();
  },
  run(argv: string[], io: CliIO): Promise<number> {
    return dispatchSubcommand('analyzer', HELP(), SUBCOMMANDS, argv, io);
  },
};
