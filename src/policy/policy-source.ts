/**
 * Where a policy lives and what it says: the model and policy files of a
 * folder (or given one by one), read and parsed with the same readers the
 * engine uses, so every finding can name the file and line.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseModelText, type ModelDefinition } from '../authz/model-text.ts';
import { PolicyError } from '../authz/policy-error.ts';
import { parsePolicyText, type PolicyLine } from '../authz/policy-text.ts';
import { ENGINE_FUNCTIONS, engineTokenize } from './casbin-functions.ts';

/** The two files of a policy. */
export interface PolicyPaths {
  readonly modelPath: string;
  readonly policyPath: string;
}

/** A parsed model and policy. */
export interface PolicySource extends PolicyPaths {
  readonly model: ModelDefinition;
  readonly lines: readonly PolicyLine[];
}

/** Names looked for in a policy folder. */
export const MODEL_FILE = 'model.conf';
export const POLICY_FILE = 'policy.csv';

/**
 * Resolves `[DIR] [--model F] [--policy F]` against `cwd`: explicit files win;
 * otherwise DIR/model.conf and DIR/policy.csv. DIR may also be a policy.csv
 * file, whose folder then supplies the model. `fallbackModel` is used when
 * neither --model nor DIR/model.conf exists (e.g. the config's model).
 */
export function resolvePolicyPaths(cwd: string, opts: { dir?: string | undefined; model?: string | undefined; policy?: string | undefined; fallbackModel?: string | undefined }): PolicyPaths {
  const dirArg = path.resolve(cwd, opts.dir ?? 'policies');
  const isFile = existsSync(dirArg) && statSync(dirArg).isFile();
  const dir = isFile ? path.dirname(dirArg) : dirArg;
  const policyPath = opts.policy !== undefined ? path.resolve(cwd, opts.policy) : isFile ? dirArg : path.join(dir, POLICY_FILE);
  let modelPath = opts.model !== undefined ? path.resolve(cwd, opts.model) : path.join(dir, MODEL_FILE);
  if (opts.model === undefined && opts.fallbackModel !== undefined && !existsSync(modelPath)) modelPath = opts.fallbackModel;
  return { modelPath, policyPath };
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new PolicyError(file, undefined, `cannot read file (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { cause: e });
  }
}

/** Reads and parses both files; throws PolicyError (file, line, reason) on the first problem. */
export async function readPolicySource(paths: PolicyPaths): Promise<PolicySource> {
  const [modelText, policyText] = await Promise.all([readText(paths.modelPath), readText(paths.policyPath)]);
  const model = parseModelText(modelText, paths.modelPath, ENGINE_FUNCTIONS);
  const lines = parsePolicyText(policyText, paths.policyPath, model, engineTokenize);
  return { ...paths, model, lines };
}
