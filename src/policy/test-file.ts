/**
 * The policy unit-test file (`meshgate policy test FILE`):
 *
 *   model: model.conf            # optional; relative to this file
 *   policy: policy.csv           # optional; relative to this file
 *   encodedSlash: reject         # optional; as headers.encodedSlash in meshgate.yaml
 *   tests:
 *     - name: alice cannot read the secret order
 *       request: { sub: alice, method: GET, path: /orders/secret }
 *       expect: deny
 *       reason: authz_deny_rule                       # optional
 *       rule: "p, alice, /orders/secret, .*, deny"     # optional; or "policy.csv:18", or "none"
 *
 * `request` may also carry `peer` (a SPIFFE ID) and `claims` (verified JWT
 * claims). Every problem is reported with the file's line.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, isMap, isSeq, parseDocument, type Document } from 'yaml';
import { parseSpiffeId } from '../core/spiffe-id.ts';
import type { EncodedSlashMode } from '../http/canonical-path.ts';
import { HTTP_METHODS } from './method-set.ts';

/** The request of one test case, as written. */
export interface TestRequest {
  readonly sub?: string | undefined;
  readonly peer?: string | undefined;
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
  readonly method: string;
  readonly path: string;
}

/** One test case. `line` is where it starts in the file. */
export interface PolicyTestCase {
  readonly name: string;
  readonly line: number;
  readonly request: TestRequest;
  readonly expect: 'allow' | 'deny';
  readonly reason?: string | undefined;
  /** Expected matched rule: its text, `file:line`, or `none`. */
  readonly rule?: string | undefined;
}

/** A parsed test file; model/policy paths are absolute. */
export interface PolicyTestSuite {
  readonly file: string;
  readonly model: string | undefined;
  readonly policy: string | undefined;
  readonly encodedSlash: EncodedSlashMode;
  readonly tests: readonly PolicyTestCase[];
}

/** A test file that cannot be read or is malformed (exit 2, not a test failure). */
export class TestFileError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  constructor(file: string, line: number | undefined, reason: string) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
    this.name = 'TestFileError';
    this.file = file;
    this.line = line;
  }
}

const TOP_KEYS = new Set(['model', 'policy', 'encodedSlash', 'tests']);
const CASE_KEYS = new Set(['name', 'request', 'expect', 'reason', 'rule']);
const REQUEST_KEYS = new Set(['sub', 'peer', 'claims', 'method', 'path']);

/** Reads and validates a test file. Throws TestFileError. */
export async function readTestFile(file: string): Promise<PolicyTestSuite> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TestFileError(file, undefined, `cannot read file (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseTestFile(text, file);
}

/** Parses test-file text; `file` names it in errors and anchors relative paths. */
export function parseTestFile(text: string, file: string): PolicyTestSuite {
  const lc = new LineCounter();
  const doc = parseDocument(text, { version: '1.2', schema: 'core', uniqueKeys: true, lineCounter: lc });
  const first = doc.errors[0];
  if (first) throw new TestFileError(file, first.linePos?.[0].line, first.message.split('\n')[0] ?? 'YAML syntax error');
  const lineOf = (p: readonly (string | number)[]): number | undefined => {
    const node = doc.getIn(p, true) as { range?: [number, number, number] } | undefined;
    return node?.range ? lc.linePos(node.range[0]).line : undefined;
  };
  const fail = (p: readonly (string | number)[], reason: string): never => { throw new TestFileError(file, lineOf(p), reason); };
  const root: unknown = doc.toJS();
  if (!isRecord(root)) fail([], 'expected a mapping with a "tests" list');
  const top = root as Record<string, unknown>;
  for (const k of Object.keys(top)) if (!TOP_KEYS.has(k)) fail([k], `unknown key "${k}" (expected ${[...TOP_KEYS].join(', ')})`);
  const dir = path.dirname(path.resolve(file));
  const relPath = (k: 'model' | 'policy'): string | undefined => {
    const v = top[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') fail([k], `"${k}" must be a file path`);
    return path.resolve(dir, v as string);
  };
  const slash = top['encodedSlash'] ?? 'reject';
  if (slash !== 'reject' && slash !== 'keep') fail(['encodedSlash'], '"encodedSlash" must be reject or keep');
  if (!isSeq(doc.get('tests', true)) || !Array.isArray(top['tests'])) fail(['tests'], '"tests" must be a list of test cases');
  const tests = (top['tests'] as unknown[]).map((raw, i) => parseCase(raw, i, doc, fail, lineOf));
  const names = new Set<string>();
  tests.forEach((t, i) => {
    if (names.has(t.name)) fail(['tests', i, 'name'], `duplicate test name ${JSON.stringify(t.name)}`);
    names.add(t.name);
  });
  return { file, model: relPath('model'), policy: relPath('policy'), encodedSlash: slash as EncodedSlashMode, tests };
}

type Fail = (p: readonly (string | number)[], reason: string) => never;

function parseCase(raw: unknown, i: number, doc: Document, fail: Fail, lineOf: (p: readonly (string | number)[]) => number | undefined): PolicyTestCase {
  const at = (...p: (string | number)[]): (string | number)[] => ['tests', i, ...p];
  if (!isRecord(raw) || !isMap(doc.getIn(at(), true))) fail(at(), 'a test case must be a mapping with name, request and expect');
  const c = raw as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!CASE_KEYS.has(k)) fail(at(k), `unknown key "${k}" (expected ${[...CASE_KEYS].join(', ')})`);
  const name = c['name'];
  if (typeof name !== 'string' || name.trim() === '') fail(at('name'), 'every test needs a "name"');
  const expect = c['expect'];
  if (expect !== 'allow' && expect !== 'deny') fail(at('expect'), '"expect" must be allow or deny');
  const optString = (k: string): string | undefined => {
    const v = c[k];
    if (v !== undefined && (typeof v !== 'string' || v === '')) fail(at(k), `"${k}" must be a non-empty string`);
    return v as string | undefined;
  };
  const r = c['request'];
  if (!isRecord(r)) fail(at('request'), '"request" must be a mapping with method and path');
  const req = r as Record<string, unknown>;
  for (const k of Object.keys(req)) if (!REQUEST_KEYS.has(k)) fail(at('request', k), `unknown request key "${k}" (expected ${[...REQUEST_KEYS].join(', ')})`);
  const method = req['method'];
  if (typeof method !== 'string' || !HTTP_METHODS.includes(method)) fail(at('request', 'method'), `"method" must be an upper-case HTTP method such as GET (got ${JSON.stringify(method)})`);
  const p = req['path'];
  if (typeof p !== 'string' || p === '') fail(at('request', 'path'), '"path" must be a request path such as /orders/1');
  const sub = req['sub'];
  if (sub !== undefined && (typeof sub !== 'string' || sub === '')) fail(at('request', 'sub'), '"sub" must be a non-empty string (a verified JWT subject)');
  const peer = req['peer'];
  if (peer !== undefined) {
    const id = typeof peer === 'string' ? parseSpiffeId(peer) : { ok: false as const, error: 'not a string' };
    if (!id.ok) fail(at('request', 'peer'), `"peer" must be a SPIFFE ID: ${id.error}`);
  }
  const claims = req['claims'];
  if (claims !== undefined && !isRecord(claims)) fail(at('request', 'claims'), '"claims" must be a mapping of JWT claims');
  if (claims !== undefined && sub === undefined && typeof (claims as Record<string, unknown>)['sub'] !== 'string') {
    fail(at('request', 'claims'), 'claims come from a verified token, which always has a subject: give "sub" too');
  }
  return {
    name: name as string,
    line: lineOf(at()) ?? 0,
    request: {
      sub: (sub as string | undefined) ?? (claims as Record<string, unknown> | undefined)?.['sub'] as string | undefined,
      peer: peer as string | undefined,
      claims: claims as Record<string, unknown> | undefined,
      method: method as string,
      path: p as string,
    },
    expect: expect as 'allow' | 'deny',
    reason: optString('reason'),
    rule: optString('rule'),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
