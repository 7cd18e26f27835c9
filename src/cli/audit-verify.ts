/**
 * `meshgate audit verify`: the hash-chain check of an audit log folder
 * (src/audit/verify.ts), optionally against an anchor checkpoint kept
 * outside it.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkHead, type AuditHead } from '../audit/head.ts';
import { verifyAuditDir } from '../audit/verify.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, type CliIO } from './command.ts';

/** The one audit DIR argument of `meshgate audit <sub>`, resolved against the cwd; a usage error unless it is a readable folder. */
export async function auditDirArg(positionals: string[], io: CliIO, sub: string): Promise<string> {
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? `audit ${sub} needs the audit DIR` : `audit ${sub} takes exactly one DIR`);
  const dir = path.resolve(io.cwd, positionals[0] as string);
  try {
    if (!(await stat(dir)).isDirectory()) throw new UsageError(`${dir} is not a directory`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read audit dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return dir;
}

/** `meshgate audit verify --help`. */
export const VERIFY_HELP = `Usage: meshgate audit verify DIR [--anchor FILE] [--json]

Checks the hash chain of the audit log in DIR: every record matches its hash,
links to the one before it, seq numbers are consecutive across segments, no
segment file is missing, and the log reaches the HEAD.json checkpoint.

Prints "ok: N records in M segments, chain head <hash>" or names the first bad
record (segment file, line, seq) and what the evidence shows: modified,
deleted, reordered, inserted, truncated, malformed or missing_segment.

Options:
  --anchor FILE  also check against a checkpoint kept outside DIR (a copy of
                 an earlier HEAD.json): the only way to detect a rewrite of
                 the whole log including HEAD.json (see docs/audit-events.md)
  --json         print the full result as JSON
  -h, --help     show this help

Exit codes: 0 intact, 1 tampering or damage found, 2 usage error or DIR unreadable.
`;

async function readAnchor(file: string): Promise<AuditHead> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read anchor ${file}: ${(err as NodeJS.ErrnoException).code ?? 'not JSON'}`);
  }
  const head = checkHead(parsed);
  if (typeof head === 'string') throw new UsageError(`anchor ${file} is not a checkpoint: ${head}`);
  return head;
}

/** `meshgate audit verify DIR [--anchor FILE] [--json]`: exit 0 intact, 1 tampering or damage found, 2 usage error. */
export async function runVerify(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, anchor: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(VERIFY_HELP);
    return EXIT_OK;
  }
  const dir = await auditDirArg(positionals, io, 'verify');
  const anchor = values.anchor === undefined ? undefined : await readAnchor(path.resolve(io.cwd, values.anchor));
  let result;
  try {
    result = await verifyAuditDir(dir, anchor ? { anchor } : {});
  } catch (err) {
    // Unreadable files are an operator problem, not evidence of tampering.
    io.stderr.write(`meshgate audit verify: cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return EXIT_USAGE;
  }
  if (values.json) {
    io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else if (result.ok) {
    const anchored = anchor ? `, anchored at seq ${anchor.seq}` : '';
    io.stdout.write(`ok: ${result.records} records in ${result.segments.length} segments, chain head ${result.lastHash.slice(0, 16)}${anchored}\n`);
  } else if (result.problem) {
    const p = result.problem;
    const where = p.line > 0 ? `${p.segment}:${p.line}` : p.segment;
    const seq = p.seq !== undefined ? ` (seq ${p.seq})` : '';
    io.stdout.write(`FAILED: ${p.kind} at ${where}${seq}: ${p.message}\n`);
    io.stdout.write(`verified ${result.records} records before it (last good seq ${result.lastSeq}, hash ${result.lastHash.slice(0, 16)})\n`);
  }
  if (!values.json) for (const w of result.warnings) io.stderr.write(`warning: ${w}\n`);
  return result.ok ? EXIT_OK : EXIT_FAILED;
}
