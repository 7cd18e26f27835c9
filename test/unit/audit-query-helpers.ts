/** Shared fixtures of the audit-query tests: events and logs written by the real AuditWriter. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { newEventId, type AuditEvent, type AuditRecord } from '../../src/audit/event.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A request event at T0 + `offsetMs` with sensible defaults; `over` replaces fields. */
export function ev(offsetMs: number, over: Partial<Mutable<AuditEvent>> = {}): AuditEvent {
  const time = T0 + offsetMs;
  return {
    v: 1, type: 'request', id: newEventId(time), time: new Date(time).toISOString(), requestId: `req-${offsetMs}`,
    source: { ip: '10.0.0.1', port: 40000 }, peer: { spiffeId: 'spiffe://mesh.local/ns/prod/sa/web', fingerprint: 'ab'.repeat(32) },
    principal: { iss: 'https://issuer.mesh.local', sub: 'alice' }, jti: `j-${offsetMs}`, tokenHash: 'aGFzaA',
    method: 'GET', path: '/orders/1', rawPath: null, route: 'orders', decision: 'allow', reason: 'allowed',
    rule: 'policy.csv:3: p, alice, /orders/*, GET', policyVersion: 'v1', status: 200, bytesIn: 0, bytesOut: 10, latencyMs: 3, shadow: null,
    ...over,
  };
}

/** A record as stored, for `matches` tests that need no disk. */
export function rec(offsetMs: number, over: Partial<Mutable<AuditEvent>> = {}): AuditRecord {
  return { seq: 1, prev: '0'.repeat(64), ...ev(offsetMs, over), hash: 'f'.repeat(64) } as AuditRecord;
}

/** A fresh temp dir, removed after the test. */
export function tempDir(t: { after: (fn: () => void) => void }): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-audit-query-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

/** Writes `events` with the real writer into `dir` (small segments rotate often). */
export async function writeLog(dir: string, events: readonly AuditEvent[], segmentBytes = 64 * 1024 * 1024): Promise<void> {
  const w = new AuditWriter({ dir, segmentBytes, fsyncInterval: 1000, checkpointInterval: 60_000, queueLimit: 100_000 });
  await w.open();
  for (const e of events) w.append(e);
  await w.close();
}

/** Segment file names of `dir`, oldest first. */
export function segments(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => /^audit-\d+\.jsonl$/.test(f)).sort();
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `meshgate …` in-process; `tty` makes stdout look like a terminal of that width. */
export async function runCli(argv: string[], cwd: string, options: { tty?: number } = {}): Promise<RunResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  if (options.tty !== undefined) Object.assign(stdout, { isTTY: true, columns: options.tty });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const io: CliIO = { stdout, stderr, env: {}, cwd };
  const code = await main(argv, io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}
