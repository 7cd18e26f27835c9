/**
 * The on-disk chain format shared by the writer, the verifier and readers.
 * docs/audit-events.md is the prose version of this file.
 *
 * A record is one line: the JSON text `B` of `{ seq, prev, ...event }`
 * exactly as `JSON.stringify` produced it, with the member
 * `,"hash":"<64 hex>"` spliced in before B's closing brace. So B is
 * recovered from a line byte-for-byte by cutting that last member out — no
 * re-serialization, hence no dependence on key order or number formatting.
 *
 *     hash = lowercase hex SHA-256( UTF-8( prev + "\n" + B ) )
 *
 * `prev` of the first record ever written is GENESIS_HASH; every later
 * record's `prev` is the `hash` of the record before it, across segments.
 */
import { hash as digest } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { AuditEvent } from './event.ts';

/** `prev` of record 1. */
export const GENESIS_HASH = '0'.repeat(64);

const SEGMENT_RE = /^audit-(\d{6,})\.jsonl$/;
/** `,"hash":"` + 64 hex + `"}` */
const HASH_SUFFIX_LEN = 9 + 64 + 2;
const HEX64_RE = /^[0-9a-f]{64}$/;

/** Segment file name for segment number `n` (1-based): `audit-000001.jsonl`. */
export function segmentFileName(n: number): string {
  return `audit-${String(n).padStart(6, '0')}.jsonl`;
}

/** Segment number of a file name, or undefined when it is not a segment (e.g. `.torn-*`). */
export function segmentNumber(name: string): number | undefined {
  const m = SEGMENT_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The record hash over `prev` and the hash-less JSON text `body`. */
export function recordHash(prev: string, body: string): string {
  return digest('sha256', `${prev}\n${body}`, 'hex');
}

/** Builds the line (with trailing newline) and hash for `event` at `seq` after `prev`. */
export function sealRecord(seq: number, prev: string, event: AuditEvent): { line: string; hash: string } {
  if (!('seq' in event) && !('prev' in event) && !('hash' in event)) {
    // Fast path (every event the pipeline makes): splice the chain fields in
    // front of the event's own JSON instead of copying a 25-key object. The
    // bytes are exactly those of JSON.stringify({ seq, prev, ...event }).
    const json = JSON.stringify(event);
    const body = json === '{}' ? `{"seq":${seq},"prev":"${prev}"}` : `{"seq":${seq},"prev":"${prev}",${json.slice(1)}`;
    const h = recordHash(prev, body);
    return { line: `${body.slice(0, -1)},"hash":"${h}"}\n`, hash: h };
  }
  const rec: Record<string, unknown> = { seq, prev, ...event };
  // An event object must not smuggle its own chain fields in; the spread
  // keeps seq/prev first, these writes keep their values ours.
  rec['seq'] = seq;
  rec['prev'] = prev;
  if ('hash' in rec) delete rec['hash'];
  const body = JSON.stringify(rec);
  const h = recordHash(prev, body);
  return { line: `${body.slice(0, -1)},"hash":"${h}"}\n`, hash: h };
}

/** The chain fields of a line, read by position; `reason` says why they could not be. */
export type ScannedLine =
  | { ok: true; seq: number; prev: string; hash: string; body: string }
  | { ok: false; reason: string };

const CHAIN_PREFIX_RE = /^\{"seq":([1-9]\d{0,15}),"prev":"([0-9a-f]{64})",/;

/**
 * Reads seq, prev and hash by position, without parsing the JSON: the writer
 * always writes `{"seq":N,"prev":"…",` first and `"hash"` last. This is what
 * `verify` uses (JSON.parse would double its cost). It loses no evidence: the
 * hash covers every byte, so only someone able to forge hashes could place a
 * non-JSON record in the chain, and they could as well place a JSON one.
 */
export function scanRecord(line: string): ScannedLine {
  const cut = line.length - HASH_SUFFIX_LEN;
  if (cut < 1 || !line.startsWith(',"hash":"', cut) || !line.endsWith('"}')) return { ok: false, reason: 'line does not end with a "hash" member' };
  const hash = line.slice(cut + 9, cut + 9 + 64);
  if (!HEX64_RE.test(hash)) return { ok: false, reason: '"hash" is not a 64-digit hex hash' };
  const m = CHAIN_PREFIX_RE.exec(line);
  if (!m) return { ok: false, reason: 'line does not start with "seq" and "prev"' };
  const seq = Number(m[1]);
  if (!Number.isSafeInteger(seq)) return { ok: false, reason: '"seq" is not a safe integer' };
  return { ok: true, seq, prev: m[2] as string, hash, body: `${line.slice(0, cut)}}` };
}

/** A line split into its parts; `reason` says why it could not be. */
export type OpenedLine =
  | { ok: true; record: Record<string, unknown>; seq: number; prev: string; hash: string; body: string }
  | { ok: false; reason: string };

/** Parses one line (without newline) into the record and the exact hashed body. */
export function openRecord(line: string): OpenedLine {
  // Checked by position, not with an end-anchored regex: that would be
  // retried at every comma of the line.
  const cut = line.length - HASH_SUFFIX_LEN;
  if (cut < 1 || !line.startsWith(',"hash":"', cut) || !line.endsWith('"}')) return { ok: false, reason: 'line does not end with a "hash" member' };
  const hash = line.slice(cut + 9, cut + 9 + 64);
  if (!HEX64_RE.test(hash)) return { ok: false, reason: '"hash" is not a 64-digit hex hash' };
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'line is not valid JSON' };
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return { ok: false, reason: 'line is not a JSON object' };
  const r = record as Record<string, unknown>;
  const seq = r['seq'];
  const prev = r['prev'];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { ok: false, reason: '"seq" is not a positive integer' };
  if (typeof prev !== 'string' || !HEX64_RE.test(prev)) return { ok: false, reason: '"prev" is not a 64-digit hex hash' };
  return { ok: true, record: r, seq, prev, hash, body: `${line.slice(0, cut)}}` };
}

/** Segment files in `dir`, in segment-number order (not string order). */
export async function listSegments(dir: string): Promise<{ name: string; n: number }[]> {
  const out: { name: string; n: number }[] = [];
  for (const name of await readdir(dir)) {
    const n = segmentNumber(name);
    if (n !== undefined) out.push({ name, n });
  }
  return out.sort((a, b) => a.n - b.n);
}
