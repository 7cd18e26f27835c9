/**
 * The few fields the shipper needs from an audit record line, read straight
 * from its bytes: seq, prev, hash, event id, time and the partition identity.
 * JSON.parse of every ~700-byte line was a third of the shipper's CPU at
 * 50,000 events/s, and the shipper forwards the line untouched anyway.
 *
 * Why a key search is safe here: inside a JSON string a quote is always
 * escaped (`\"`), so the byte sequence `"sub":"` can only be a member name;
 * and each name searched for occurs once in a record (src/audit/event.ts:
 * `id` only at the top level, `spiffeId` only in `peer`, `sub` only in
 * `principal`, `ip` only in `source`). A value containing a backslash (an
 * escape) or any surprise falls back to JSON.parse, so odd records cost time,
 * never correctness.
 */

/** What the shipper reads from one record line. */
export interface LineFields {
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
  readonly id: string;
  /** Event time, ms since the epoch (NaN when unparsable). */
  readonly timeMs: number;
  /** SPIFFE ID, else token subject, else source ip ('' when none of them). */
  readonly identity: string;
}

const SEQ_PREFIX = Buffer.from('{"seq":', 'latin1');
const PREV_KEY = Buffer.from(',"prev":"', 'latin1');
const HASH_KEY = Buffer.from(',"hash":"', 'latin1');
const HASH_SUFFIX_LEN = 9 + 64 + 2; // ,"hash":"<64 hex>"}
// Keys as bytes, made once: Buffer#indexOf(string) converts its argument on every call, and that was most
// of this function's cost (five searches per line).
const KEY = {
  id: Buffer.from('"id":"', 'latin1'),
  time: Buffer.from('"time":"', 'latin1'),
  spiffeId: Buffer.from('"spiffeId":"', 'latin1'),
  sub: Buffer.from('"sub":"', 'latin1'),
  ip: Buffer.from('"ip":"', 'latin1'),
} as const;

/** Where the previous stringMember call ended: the writer emits members in schema order, so the next one is usually after it. */
let cursor = 0;

/**
 * The string value of member `"name":"…"` (without escapes); null when absent; undefined when it needs JSON.parse.
 * Searched from `cursor` first, then — only when not found there — from the start, so member order is a speed-up,
 * never an assumption.
 */
function stringMember(line: Buffer, key: Buffer): string | null | undefined {
  let at = line.indexOf(key, cursor);
  if (at < 0 && cursor > 0) at = line.indexOf(key);
  if (at < 0) return null;
  const start = at + key.length;
  const end = line.indexOf(0x22, start); // the closing quote
  if (end < 0) return undefined;
  for (let i = start; i < end; i++) if (line[i] === 0x5c) return undefined; // an escape inside
  cursor = end;
  return line.toString('utf8', start, end);
}

/** True when `line` holds `bytes` at `at`. */
function bytesAt(line: Buffer, at: number, bytes: Buffer): boolean {
  if (at < 0 || at + bytes.length > line.length) return false;
  for (let i = 0; i < bytes.length; i++) if (line[at + i] !== bytes[i]) return false;
  return true;
}

/** The decimal digits from `start` to `end` as a safe integer, or NaN. */
function digits(line: Buffer, start: number, end: number): number {
  if (end <= start || end - start > 15) return Number.NaN;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = (line[i] as number) - 0x30;
    if (c < 0 || c > 9) return Number.NaN;
    n = n * 10 + c;
  }
  return n;
}

function parsed(line: Buffer): LineFields | undefined {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(line.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const seq = r['seq'];
  const prev = r['prev'];
  const hash = r['hash'];
  const id = r['id'];
  if (typeof seq !== 'number' || typeof prev !== 'string' || typeof hash !== 'string' || typeof id !== 'string') return undefined;
  const peer = r['peer'] as { spiffeId?: unknown } | null | undefined;
  const principal = r['principal'] as { sub?: unknown } | null | undefined;
  const source = r['source'] as { ip?: unknown } | null | undefined;
  const identity = [peer?.spiffeId, principal?.sub, source?.ip].find((v): v is string => typeof v === 'string' && v.length > 0) ?? '';
  return { seq, prev, hash, id, timeMs: typeof r['time'] === 'string' ? Date.parse(r['time']) : Number.NaN, identity };
}

/** Reads the shipper's fields from a complete record line (no newline); undefined when it is not a record. */
export function lineFields(line: Buffer): LineFields | undefined {
  if (line.length < SEQ_PREFIX.length + HASH_SUFFIX_LEN || !bytesAt(line, 0, SEQ_PREFIX)) return parsed(line);
  const seqEnd = line.indexOf(PREV_KEY, SEQ_PREFIX.length);
  if (seqEnd < 0) return parsed(line);
  const seq = digits(line, SEQ_PREFIX.length, seqEnd);
  const prev = line.toString('latin1', seqEnd + PREV_KEY.length, seqEnd + PREV_KEY.length + 64);
  const hashAt = line.length - HASH_SUFFIX_LEN;
  if (!bytesAt(line, hashAt, HASH_KEY)) return parsed(line);
  const hash = line.toString('latin1', hashAt + 9, hashAt + 9 + 64);
  cursor = seqEnd + PREV_KEY.length + 64;
  const id = stringMember(line, KEY.id);
  const time = stringMember(line, KEY.time);
  const ip = stringMember(line, KEY.ip); // in src/audit/event.ts order: source, peer, principal
  const spiffe = stringMember(line, KEY.spiffeId);
  const sub = stringMember(line, KEY.sub);
  if (!Number.isSafeInteger(seq) || typeof id !== 'string' || id === '' || time === undefined || spiffe === undefined || sub === undefined || ip === undefined) return parsed(line);
  const identity = spiffe ? spiffe : sub ? sub : (ip ?? '');
  return { seq, prev, hash, id, timeMs: time === null ? Number.NaN : Date.parse(time), identity };
}
