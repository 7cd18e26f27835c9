/**
 * The decisions file `<analyzer.dir>/decisions.json`:
 * `{ v: 1, decisions: Decision[], exceptions: Exception[] }`.
 * Written by the DecisionStore (analyzer and CLI, under a lock), read by the
 * gateway's QuarantineTable. Expired decisions stay for the repeat-offender
 * lookback (docs/quarantine.md), then are pruned.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Decision, Exception, Scope } from '../analyzer/types.ts';

/** File name inside the analyzer state folder. */
export const DECISIONS_FILE = 'decisions.json';

/** The scopes a decision or exception can name, most specific first. */
export const SCOPES: readonly Scope[] = Object.freeze(['jti', 'cert', 'spiffe', 'sub', 'ip']);

export interface DecisionsDoc {
  readonly v: 1;
  readonly decisions: readonly Decision[];
  readonly exceptions: readonly Exception[];
}

export const EMPTY_DOC: DecisionsDoc = Object.freeze({ v: 1, decisions: Object.freeze([]), exceptions: Object.freeze([]) });

const scope = z.enum(['spiffe', 'sub', 'jti', 'cert', 'ip']);
const isoTime = z.string().refine((s) => Number.isFinite(Date.parse(s)), 'not an ISO 8601 time');
const text = z.string().min(1).max(4096);

const decisionSchema = z.object({
  id: text,
  scope,
  value: text,
  origin: text,
  reason: z.string().max(4096),
  alertId: text.optional(),
  createdAt: isoTime,
  expiresAt: isoTime,
  simulated: z.boolean(),
  offence: z.number().int().min(1),
});

const exceptionSchema = z.object({
  id: text,
  rule: text,
  scope,
  value: text,
  createdAt: isoTime,
  expiresAt: isoTime,
  note: z.string().max(4096).optional(),
});

const docSchema = z.object({
  v: z.literal(1),
  decisions: z.array(decisionSchema),
  exceptions: z.array(exceptionSchema),
});

/** Thrown when decisions.json exists but is not a valid decisions document. */
export class DecisionsFileError extends Error {
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.name = 'DecisionsFileError';
    this.file = file;
  }
}

/** Path of the decisions file in `dir`. */
export function decisionsPath(dir: string): string {
  return path.join(dir, DECISIONS_FILE);
}

/** Validates parsed JSON as a decisions document; throws DecisionsFileError naming the first problem. */
export function parseDecisionsDoc(value: unknown, file: string): DecisionsDoc {
  const r = docSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : '(root)';
    throw new DecisionsFileError(file, `${where}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data as DecisionsDoc;
}

/** Reads and validates `file`; a missing file is an empty document. */
export async function readDecisionsFile(file: string): Promise<DecisionsDoc> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_DOC;
    throw new DecisionsFileError(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new DecisionsFileError(file, 'not valid JSON', { cause: err });
  }
  return parseDecisionsDoc(parsed, file);
}
