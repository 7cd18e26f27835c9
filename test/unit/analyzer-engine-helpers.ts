/**
 * Test helpers for the detection engine: compact audit events (a base allowed
 * request plus overrides), writing them through the real AuditWriter, and the
 * fixture format of test/fixtures/detections/<case>/ (README there).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditEvent, AuditRecord } from '../../src/audit/event.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { parseDuration } from '../../src/core/duration.ts';

export const T0 = Date.UTC(2026, 2, 2, 9, 0, 0);

/** Overrides for one event; `at` is an offset from T0 (`90s`, `1h5m`) or ms. */
export interface Ev {
  readonly at?: string | number;
  readonly spiffe?: string | null;
  readonly cert?: string | null;
  readonly ip?: string;
  readonly sub?: string | null;
  readonly jti?: string | null;
  readonly [field: string]: unknown;
}

let counter = 0;

function offset(at: string | number | undefined): number {
  if (at === undefined) return 0;
  if (typeof at === 'number') return at;
  let ms = 0;
  for (const part of at.match(/\d+(?:ms|s|m|h|d)/g) ?? []) ms += parseDuration(part) ?? NaN;
  if (!Number.isFinite(ms) || at.replace(/\d+(?:ms|s|m|h|d)/g, '') !== '') throw new TypeError(`bad offset ${at}`);
  return ms;
}

const hex = (s: string): string => Buffer.from(s).toString('hex').padEnd(64, '0').slice(0, 64);

/** A full audit event: an allowed GET from a workload with a verified token, then the overrides. */
export function event(o: Ev = {}): AuditEvent {
  const { at, spiffe, cert, ip, sub, jti, ...rest } = o;
  const t = T0 + offset(at);
  const n = ++counter;
  const id = `${t.toString(16).padStart(12, '0').replace(/^(.{8})(.{4})$/, '$1-$2')}-7${(n & 0xfff).toString(16).padStart(3, '0')}-8000-${n.toString(16).padStart(12, '0')}`;
  const spiffeId = spiffe === undefined ? 'spiffe://mesh.local/ns/shop/sa/web' : spiffe;
  const fp = cert === undefined ? (spiffeId ? hex(spiffeId) : null) : cert;
  const subject = sub === undefined ? 'user-1' : sub;
  return {
    v: 1, type: 'request', id, time: new Date(t).toISOString(), requestId: id,
    source: { ip: ip ?? '10.1.0.1', port: 40000 + (n % 20000) },
    peer: spiffeId !== null || fp !== null ? { spiffeId: spiffeId ?? '', fingerprint: fp ?? '' } : null,
    principal: subject === null ? null : { iss: 'https://issuer.mesh.local', sub: subject },
    jti: subject === null ? null : jti === undefined ? `jti-${subject}` : jti,
    tokenHash: subject === null ? null : 'aGFzaA',
    method: 'GET', path: '/orders/1', rawPath: null, route: 'orders', decision: 'allow', reason: 'allowed',
    rule: 'policy.csv:3: p, role:customer, /orders/*, GET, allow', policyVersion: 'v1', status: 200,
    bytesIn: 0, bytesOut: 1000, latencyMs: 2, shadow: null,
    ...(rest as Partial<AuditEvent>),
  } as AuditEvent;
}

/** Records as the writer would store them (seq/prev/hash placeholders): for feeding the engine directly. */
export function records(evs: readonly Ev[]): AuditRecord[] {
  return evs.map((e, i) => ({ seq: i + 1, prev: '0'.repeat(64), ...event(e), hash: '0'.repeat(64) }) as AuditRecord);
}

/** A temp dir removed after the test. */
export function tmpDir(t: { after: (fn: () => void) => void }, prefix = 'meshgate-det-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Writes events (in the given order) as a real hash-chained audit log in `dir`. */
export async function writeAudit(dir: string, events: readonly AuditEvent[], segmentBytes = 64 * 1024 * 1024): Promise<void> {
  const w = new AuditWriter({ dir, segmentBytes, fsyncInterval: 60_000, checkpointInterval: 0, queueLimit: 100_000 }, { clock: new ManualClock(T0) });
  await w.open();
  for (const e of events) w.append(e);
  await w.close();
}

/**
 * Events of a fixture file: JSON Lines of `Ev` objects; `#` lines are
 * comments; `"repeat": N, "every": "2s"` expands a line into N events.
 */
export function parseFixtureEvents(text: string): AuditEvent[] {
  const out: { e: AuditEvent; order: number }[] = [];
  text.split('\n').forEach((line, i) => {
    const s = line.trim();
    if (s === '' || s.startsWith('#')) return;
    let o: Ev & { repeat?: number; every?: string; vary?: string };
    try {
      o = JSON.parse(s) as typeof o;
    } catch (err) {
      throw new SyntaxError(`line ${i + 1}: ${(err as Error).message}`);
    }
    const { repeat = 1, every = '0s', vary, ...ev } = o;
    const step = offset(every);
    for (let k = 0; k < repeat; k++) {
      // `vary` names a field whose value gets the repeat index appended (distinct values).
      const extra = vary ? { [vary]: `${String((ev as Record<string, unknown>)[vary] ?? '')}${k}` } : {};
      out.push({ e: event({ ...ev, ...extra, at: offset(ev.at) + k * step }), order: out.length });
    }
  });
  // The gateway writes in completion order; fixtures list events as people think of them.
  return out.sort((a, b) => Date.parse(a.e.time) - Date.parse(b.e.time) || a.order - b.order).map((x) => x.e);
}
