/**
 * `meshgate policy check | test | explain | replay` (PRODUCT §1.9): the
 * edit → check → test → replay → deploy loop. Each subcommand is argument
 * parsing and output only; the work is in src/policy/, and every decision
 * goes through the same Authorizer (and, for explain, the same pipeline) the
 * gateway uses. docs/policy-workflow.md walks through the loop.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PolicyError } from '../authz/policy-error.ts';
import { AuditFormatError } from '../audit/read-events.ts';
import { ConfigError, formatIssue, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { checkPolicy } from '../policy/check-policy.ts';
import { ExplainSetupError, explainRequest, type ExplainQuery } from '../policy/explain.ts';
import { formatCheck, formatExplain, formatReplay, formatTests } from '../policy/format-report.ts';
import { loadPolicyAuthorizer } from '../policy/load-authorizer.ts';
import { resolvePolicyPaths } from '../policy/policy-source.ts';
import { replayAudit } from '../policy/replay.ts';
import { runPolicyTests } from '../policy/run-tests.ts';
import { TestFileError, readTestFile } from '../policy/test-file.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, dispatchSubcommand, type CliIO, type Command, type Subcommand } from './command.ts';

const CHECK_HELP = `Usage: meshgate policy check [DIR] [--model FILE --policy FILE] [--encoded-slash reject|keep] [--json]

Loads DIR/model.conf and DIR/policy.csv (DIR defaults to policies/) exactly as
the gateway would, then lints them. Every finding names file:line:
  errors    syntax, unknown functions or fields, rules that can never match,
            patterns that are not valid regular expressions, deny rules
            written against raw (non-canonical) paths, keyMatch patterns with
            text after "*" on allow rules, effects other than allow/deny
  warnings  rules shadowed by an earlier rule with the same effect, other
            wildcard and regex footguns, implausible subjects

Options:
  --model FILE, --policy FILE   check these files instead of DIR's
  --encoded-slash MODE          headers.encodedSlash of the gateway (default reject)
  --json                        print the report as JSON
Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 usage error.
`;

const TEST_HELP = `Usage: meshgate policy test FILE [--model FILE --policy FILE] [--json]

Runs the policy unit tests in FILE (YAML) through the gateway's own request
pipeline and authorizer:

  model: model.conf        # optional, relative to FILE (default: FILE's folder)
  policy: policy.csv
  tests:
    - name: alice cannot read the secret order
      request: { sub: alice, method: GET, path: /orders/secret }   # also peer:, claims:
      expect: deny
      reason: authz_deny_rule                       # optional
      rule: "p, alice, /orders/secret, .*, deny"     # optional (or "policy.csv:18", or "none")

sub defaults to the peer's SPIFFE ID, then "anonymous"; the path is
canonicalized as the gateway does. Each failure shows expected vs got.

Options:
  --model FILE, --policy FILE   override the files named in FILE
  --json                        print the report as JSON
Exit codes: 0 all passed, 1 a test failed, 2 usage error or bad test file.
`;

const EXPLAIN_HELP = `Usage: meshgate policy explain -c meshgate.yaml [--method M] --path TARGET
         [--spiffe ID | --cert FILE] [--token T | --token-file F | --sub S [--claims JSON]] [--json]

Runs a described request through the gateway's real pipeline, built from the
configuration (routes, policy, JWT issuers and keys), and prints each stage's
verdict: TLS/peer, hygiene, normalize (the canonical path), route, JWT and
authz (reason, matched rule, policy version), then the status and reason.

Options:
  -c, --config FILE   the gateway configuration
  --method M          HTTP method (default GET)
  --path TARGET       request target as the client sends it (may be raw, may have a query)
  --spiffe ID         the peer's SPIFFE ID (asserted; no certificate checked)
  --cert FILE         the peer's certificate (checked offline against tls.clientCa and tls.crl)
  --token T           a bearer token, verified with the configured keys (never printed);
  --token-file F      the same, read from a file (keeps it out of the process list)
  --sub S             assume a verified principal with this subject ("JWT: assumed")
  --claims JSON       claims of the assumed principal, e.g. '{"scope":"orders"}'
  --json              print the report as JSON
Exit codes: 0 allowed, 1 denied, 2 usage or configuration error.
`;

const REPLAY_HELP = `Usage: meshgate policy replay --policy DIR [--model FILE] [--config FILE] [AUDIT...]
         [--json] [--fail-on-flip]

Re-decides every recorded request that reached authorization under the
candidate policy in DIR (DIR/policy.csv and DIR/model.conf, or --model, or the
config's model) and reports each decision that flips (allow→deny,
deny→allow), grouped by identity and route, with counts, example event ids
and the rule before and after. AUDIT is an audit folder or segment file
(several allowed; default: the config's audit.dir). Requests refused before
authorization (TLS, path, route, JWT) are counted as not replayable.

Options:
  --policy DIR        the candidate policy (a folder or a policy.csv)
  --model FILE        the candidate model (default DIR/model.conf, else the config's)
  -c, --config FILE   the gateway configuration (model and audit.dir defaults)
  --json              print the report as JSON
  --fail-on-flip      exit 1 when any decision flips
Exit codes: 0 done (1 with --fail-on-flip and flips), 2 usage error or unreadable input.
`;

const HELP = `Usage: meshgate policy <command> [options]

The policy workflow: edit → check → test → replay → deploy.

Commands:
  check     lint a model + policy (file:line findings; exit 1 on errors)
  test      run policy unit tests from a YAML file
  explain   show why a described request would be allowed or denied, stage by stage
  replay    re-decide recorded traffic under a candidate policy and report flips

Run 'meshgate policy <command> --help' for a command's options.
See docs/policy-workflow.md.
`;

const show = (cwd: string) => (file: string): string => {
  const rel = path.relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
};

const write = (io: CliIO, text: string): void => { io.stdout.write(text); };
const json = (io: CliIO, v: unknown): void => write(io, `${JSON.stringify(v, null, 2)}\n`);

/** A broken policy or config is the operator's input problem: exit 2 with file:line. */
function inputError(io: CliIO, sub: string, e: unknown): number {
  if (e instanceof ConfigError) {
    io.stderr.write(`meshgate policy ${sub}: ${e.fileName}: invalid configuration\n${e.issues.map((i) => `  ${formatIssue(e.fileName, i)}\n`).join('')}`);
    return EXIT_USAGE;
  }
  if (e instanceof PolicyError || e instanceof TestFileError || e instanceof AuditFormatError) {
    io.stderr.write(`meshgate policy ${sub}: ${e.message}\n`);
    return EXIT_USAGE;
  }
  throw e;
}

async function runCheck(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: { model: { type: 'string' }, policy: { type: 'string' }, 'encoded-slash': { type: 'string', default: 'reject' }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length > 1) throw new UsageError('policy check takes at most one DIR');
  const mode = values['encoded-slash'];
  if (mode !== 'reject' && mode !== 'keep') throw new UsageError('--encoded-slash must be reject or keep');
  const paths = resolvePolicyPaths(io.cwd, { dir: positionals[0], model: values.model, policy: values.policy });
  const report = await checkPolicy(paths, { encodedSlash: mode });
  const unreadable = report.findings.find((f) => f.message.startsWith('cannot read file'));
  if (unreadable) {
    // A missing file is a usage problem (wrong DIR), not a finding about a policy.
    io.stderr.write(`meshgate policy check: ${show(io.cwd)(unreadable.file)}: ${unreadable.message}\n`);
    return EXIT_USAGE;
  }
  if (values.json) json(io, report);
  else write(io, formatCheck(report, show(io.cwd)));
  return report.ok ? EXIT_OK : EXIT_FAILED;
}

async function runTest(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: { model: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError('policy test needs exactly one test FILE');
  try {
    const file = path.resolve(io.cwd, positionals[0] as string);
    const suite = await readTestFile(file);
    const paths = resolvePolicyPaths(io.cwd, {
      dir: path.dirname(file),
      model: values.model ?? suite.model,
      policy: values.policy ?? suite.policy,
    });
    const report = await runPolicyTests(suite, await loadPolicyAuthorizer(paths), paths);
    if (values.json) json(io, report);
    else write(io, formatTests(report, show(io.cwd)));
    return report.failed === 0 ? EXIT_OK : EXIT_FAILED;
  } catch (e) {
    return inputError(io, 'test', e);
  }
}

async function readConfig(io: CliIO, file: string): Promise<Config> {
  return loadConfig(file, io.env, { cwd: io.cwd, fileName: file });
}

async function runExplain(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv, allowPositionals: false, strict: true,
    options: {
      config: { type: 'string', short: 'c' }, method: { type: 'string', default: 'GET' }, path: { type: 'string' },
      spiffe: { type: 'string' }, cert: { type: 'string' }, token: { type: 'string' }, 'token-file': { type: 'string' },
      sub: { type: 'string' }, claims: { type: 'string' }, json: { type: 'boolean', default: false },
    },
  });
  if (values.config === undefined) throw new UsageError('missing -c meshgate.yaml');
  if (values.path === undefined || values.path === '') throw new UsageError('missing --path');
  if (values.spiffe !== undefined && values.cert !== undefined) throw new UsageError('give --spiffe or --cert, not both');
  const tokens = [values.token, values['token-file'], values.sub].filter((v) => v !== undefined).length;
  if (tokens > 1) throw new UsageError('give one of --token, --token-file or --sub');
  if (values.claims !== undefined && values.sub === undefined) throw new UsageError('--claims needs --sub (a verified token always has a subject)');
  let claims: Record<string, unknown> | undefined;
  if (values.claims !== undefined) {
    try { claims = JSON.parse(values.claims) as Record<string, unknown>; } catch { throw new UsageError('--claims must be a JSON object'); }
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new UsageError('--claims must be a JSON object');
  }
  let token = values.token;
  if (values['token-file'] !== undefined) {
    try { token = (await readFile(path.resolve(io.cwd, values['token-file']), 'utf8')).trim(); } catch (e) {
      throw new UsageError(`cannot read --token-file (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  try {
    const config = await readConfig(io, values.config);
    const query: ExplainQuery = {
      method: values.method, path: values.path, spiffe: values.spiffe,
      certFile: values.cert === undefined ? undefined : path.resolve(io.cwd, values.cert),
      token, sub: values.sub, claims,
    };
    const report = await explainRequest(config, query);
    if (values.json) json(io, report);
    else write(io, formatExplain(report));
    return report.allowed ? EXIT_OK : EXIT_FAILED;
  } catch (e) {
    if (e instanceof ExplainSetupError) {
      io.stderr.write(`meshgate policy explain: ${e.message}\n`);
      return EXIT_USAGE;
    }
    return inputError(io, 'explain', e);
  }
}

/** A one-line progress display on a terminal (stderr), redrawn at most 5 times a second. */
function progressLine(io: CliIO): ((events: number, ms: number) => void) & { done(): void } {
  let last = 0;
  const f = (events: number, ms: number): void => {
    const now = performance.now();
    if (now - last < 200) return;
    last = now;
    const rate = ms > 0 ? Math.round((events * 1000) / ms) : 0;
    io.stderr.write(`\r\x1b[2Kreplaying: ${events.toLocaleString('en-US')} events, ${rate.toLocaleString('en-US')} events/s`);
  };
  return Object.assign(f, { done: () => { if (last > 0) io.stderr.write('\r\x1b[2K'); } });
}

async function runReplay(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      policy: { type: 'string' }, model: { type: 'string' }, config: { type: 'string', short: 'c' },
      json: { type: 'boolean', default: false }, 'fail-on-flip': { type: 'boolean', default: false },
    },
  });
  if (values.policy === undefined) throw new UsageError('missing --policy DIR (the candidate policy)');
  let progress: ReturnType<typeof progressLine> | undefined;
  try {
    const config = values.config === undefined ? undefined : await readConfig(io, values.config);
    const sources = positionals.map((p) => path.resolve(io.cwd, p));
    if (sources.length === 0) {
      if (!config) throw new UsageError('give AUDIT folders or files, or -c meshgate.yaml to replay its audit.dir');
      sources.push(config.audit.dir);
    }
    const paths = resolvePolicyPaths(io.cwd, { dir: values.policy, model: values.model, fallbackModel: config?.authz.model });
    const authorizer = await loadPolicyAuthorizer(paths, config?.authz.engine);
    progress = (io.stderr as { isTTY?: boolean }).isTTY === true ? progressLine(io) : undefined;
    let report;
    try {
      report = await replayAudit({ sources, authorizer, ...(progress ? { onProgress: progress, progressEvery: 10_000 } : {}) });
    } catch (e) {
      if (e instanceof Error && /^cannot read /.test(e.message)) throw new UsageError(e.message);
      throw e;
    } finally {
      progress?.done();
    }
    if (values.json) json(io, report);
    else write(io, formatReplay(report));
    return values['fail-on-flip'] && report.flips.length > 0 ? EXIT_FAILED : EXIT_OK;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    return inputError(io, 'replay', e);
  }
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  check: { help: CHECK_HELP, run: runCheck },
  test: { help: TEST_HELP, run: runTest },
  explain: { help: EXPLAIN_HELP, run: runExplain },
  replay: { help: REPLAY_HELP, run: runReplay },
};

/** `meshgate policy check | test | explain | replay`. */
export const policyCommand: Command = {
  name: 'policy',
  summary: 'policy workflow: policy check | test | explain | replay',
  help: HELP,
  run(argv: string[], io: CliIO): Promise<number> {
    return dispatchSubcommand('policy', HELP, SUBCOMMANDS, argv, io);
  },
};
