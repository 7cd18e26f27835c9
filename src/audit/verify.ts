/**
 * `verifyAuditDir`: proves an audit log is the unmodified, complete,
 * in-order chain the writer produced, up to its HEAD.json checkpoint — or
 * names the first record where it is not. Streams every segment once, in
 * constant memory. What it can and cannot prove: docs/audit-events.md.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { GENESIS_HASH, listSegments, recordHash, scanRecord, segmentFileName, segmentNumber } from './chain.ts';
import { HEAD_FILE, readHead, type AuditHead } from './head.ts';
import { readFileLines } from './lines.ts';

export { readAuditEvents, readAuditRecords, AuditFormatError, type LocatedRecord } from './read-events.ts';

/** What kind of damage the evidence shows. */
export type ProblemKind = 'modified' | 'deleted' | 'reordered' | 'inserted' | 'truncated' | 'malformed' | 'missing_segment';

/**
 * The first bad record: file, 1-based line (0 when the problem is a whole
 * file), and seq — for records that are missing (deleted, truncated,
 * missing_segment) the first missing seq; otherwise the seq of the bad line.
 */
export interface VerifyProblem {
  readonly kind: ProblemKind;
  readonly segment: string;
  readonly line: number;
  readonly seq?: number;
  readonly message: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** Records verified (before the problem, if any). */
  readonly records: number;
  readonly segments: string[];
  readonly lastSeq: number;
  readonly lastHash: string;
  readonly problem?: VerifyProblem;
  /** The checkpoint the log was checked against (null when there is none). */
  readonly head: AuditHead | null;
  /** Not failures, but worth a look (e.g. torn records moved aside after a crash). */
  readonly warnings: string[];
}

type Item =
  | { readonly type: 'line'; readonly segment: string; readonly line: number; readonly text: string; readonly complete: boolean; readonly tooLong: boolean }
  | { readonly type: 'missing'; readonly segment: string };

interface Parsed {
  readonly segment: string;
  readonly line: number;
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
  /** The stored hash matches the record's content. */
  readonly sealed: boolean;
}

async function* items(dir: string, segs: readonly { name: string; n: number }[]): AsyncGenerator<Item> {
  let expectedN = 1;
  for (const s of segs) {
    // Segment numbers are consecutive from 1: a gap is a removed file.
    if (s.n !== expectedN) yield { type: 'missing', segment: segmentFileName(expectedN) };
    expectedN = s.n + 1;
    for await (const l of readFileLines(path.join(dir, s.name))) yield { type: 'line', segment: s.name, ...l };
  }
}

function parse(it: Item | undefined): Parsed | undefined {
  if (it?.type !== 'line' || !it.complete || it.tooLong) return undefined;
  const r = scanRecord(it.text);
  if (!r.ok) return undefined;
  return { segment: it.segment, line: it.line, seq: r.seq, prev: r.prev, hash: r.hash, sealed: recordHash(r.prev, r.body) === r.hash };
}

/** An item stream with one item of lookahead. */
class Cursor {
  readonly #it: AsyncIterator<Item>;
  #peeked: IteratorResult<Item> | undefined;
  constructor(it: AsyncIterator<Item>) { this.#it = it; }
  async next(): Promise<Item | undefined> {
    const r = this.#peeked ?? (await this.#it.next());
    this.#peeked = undefined;
    return r.done ? undefined : r.value;
  }
  async peek(): Promise<Item | undefined> {
    this.#peeked ??= await this.#it.next();
    return this.#peeked.done ? undefined : this.#peeked.value;
  }
  async close(): Promise<void> { await this.#it.return?.(); }
}

function at(p: { segment: string; line: number; seq: number }, kind: ProblemKind, message: string): VerifyProblem {
  return { kind, segment: p.segment, line: p.line, seq: p.seq, message };
}

/**
 * Classifies a chain break at `r` (expected seq `e` after hash `h`; `last`
 * is the record before it). Kinds follow the evidence: a record whose
 * removal restores the chain was inserted; a missing seq that turns up later
 * was reordered; a missing seq that never turns up was deleted.
 */
async function classify(r: Parsed, e: number, h: string, last: Parsed | undefined, cur: Cursor): Promise<VerifyProblem> {
  const n = parse(await cur.peek());
  if (!r.sealed) {
    if (n && n.seq === e && n.prev === h) return at(r, 'inserted', `record does not match its hash and the chain is intact without it: a forged line was inserted`);
    return at(r, 'modified', `record seq ${r.seq} was modified: its content does not match its hash`);
  }
  if (r.seq === e) {
    if (n && n.seq === r.seq && n.prev === h) return at(r, 'inserted', `forged record: the next record has the same seq ${r.seq} and links to seq ${e - 1}`);
    if (!n) return at(r, 'inserted', `last record (seq ${r.seq}) does not link to seq ${e - 1}: appended by someone else`);
    if (n.prev === r.hash && last) return at(last, 'modified', `record seq ${last.seq} was modified and its hash recomputed: seq ${r.seq} does not link to it`);
    return at(r, 'modified', `record seq ${r.seq} does not link to seq ${e - 1}: its "prev" was altered`);
  }
  if (r.seq > e) {
    if (r.prev === h) return at(r, 'modified', `record links to seq ${e - 1} but claims seq ${r.seq}: its "seq" was altered`);
    if (n && n.seq === e && n.prev === h) {
      if (r.prev === n.hash) return at(r, 'reordered', `records seq ${r.seq} and ${e} are out of order`);
      return at(r, 'inserted', `forged record seq ${r.seq}: the chain is intact without it`);
    }
    // Does the missing record turn up later? Scan on (constant memory).
    for (let it = await cur.next(); it; it = await cur.next()) {
      const p = parse(it);
      if (p && p.seq === e) return at(r, 'reordered', `record seq ${e} was moved: it appears later at ${p.segment}:${p.line}`);
    }
    const missing = r.seq - e === 1 ? `record seq ${e} is` : `records seq ${e}..${r.seq - 1} are`;
    return at({ ...r, seq: e }, 'deleted', `${missing} missing: this line holds seq ${r.seq}`);
  }
  if (last && r.seq === last.seq && r.prev === last.prev) {
    if (n && n.prev === r.hash) return at(last, 'inserted', `forged record: seq ${r.seq} appears twice and the chain continues from the other one`);
    return at(r, 'inserted', `seq ${r.seq} appears twice: this record is a forged or replayed copy`);
  }
  return at(r, 'inserted', `seq ${r.seq} repeats an earlier record (expected seq ${e}): a replayed or forged line`);
}

/** Options of `verifyAuditDir`. */
export interface VerifyOptions {
  /**
   * A checkpoint kept outside the audit dir (a copy of an earlier HEAD.json).
   * The only defence against someone who rewrites the whole chain and
   * HEAD.json: the record at `anchor.seq` must still have `anchor.hash`.
   */
  readonly anchor?: AuditHead;
}

/** Verifies the audit log in `dir`. Throws only when `dir` cannot be read (ENOENT, EACCES). */
export async function verifyAuditDir(dir: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const anchor = options.anchor;
  // HEAD first: a live writer may rotate meanwhile, and HEAD only ever names
  // records already on disk, so segments listed after it cover it.
  const head = await readHead(dir);
  const segs = await listSegments(dir);
  const warnings = (await readdir(dir))
    .filter((f) => /\.torn-/.test(f) && segmentNumber(f.replace(/\.torn-.*$/, '')) !== undefined)
    .map((f) => `${f}: a torn record moved aside after a crash (not part of the chain)`);
  const segments = segs.map((s) => s.name);
  const headOk = typeof head === 'object' ? head : undefined;

  let records = 0;
  let e = 1;
  let h = GENESIS_HASH;
  let last: Parsed | undefined;
  let hashAtHead: string | undefined = headOk?.seq === 0 ? GENESIS_HASH : undefined;
  let headRecord: Parsed | undefined;
  let hashAtAnchor: string | undefined = anchor?.seq === 0 ? GENESIS_HASH : undefined;
  let anchorRecord: Parsed | undefined;
  let problem: VerifyProblem | undefined;
  const cur = new Cursor(items(dir, segs));
  try {
    for (let it = await cur.next(); it && !problem; it = await cur.next()) {
      if (it.type === 'missing') {
        problem = { kind: 'missing_segment', segment: it.segment, line: 0, seq: e, message: `segment ${it.segment} is missing (it held records from seq ${e})` };
        break;
      }
      if (!it.complete) {
        // A partial line at the very end is a write in progress or a crash
        // artifact: not part of the chain, and cutting it hides nothing the
        // checkpoint check below would not catch. Anywhere else it is damage.
        if (it.segment === segs.at(-1)?.name) {
          warnings.push(`${it.segment}:${it.line}: incomplete last line (write in progress, or a crash before the writer restarted); not part of the chain`);
          continue;
        }
        problem = { kind: 'malformed', segment: it.segment, line: it.line, message: 'incomplete line at the end of an older segment' };
        break;
      }
      const o = it.tooLong ? { ok: false as const, reason: 'line too long' } : scanRecord(it.text);
      if (!o.ok) {
        problem = { kind: 'malformed', segment: it.segment, line: it.line, message: `not an audit record: ${o.reason}` };
        break;
      }
      const r: Parsed = { segment: it.segment, line: it.line, seq: o.seq, prev: o.prev, hash: o.hash, sealed: recordHash(o.prev, o.body) === o.hash };
      if (!r.sealed || r.seq !== e || r.prev !== h) {
        problem = await classify(r, e, h, last, cur);
        break;
      }
      records++;
      if (headOk && r.seq === headOk.seq) {
        hashAtHead = r.hash;
        headRecord = r;
      }
      if (anchor && r.seq === anchor.seq) {
        hashAtAnchor = r.hash;
        anchorRecord = r;
      }
      last = r;
      e = r.seq + 1;
      h = r.hash;
    }
  } finally {
    await cur.close();
  }

  const lastSeq = e - 1;
  const lastSeg = segs.at(-1)?.name ?? segmentFileName(1);
  if (!problem) {
    const end = { segment: last?.segment ?? lastSeg, line: (last?.line ?? 0) + 1, seq: lastSeq + 1 };
    if (typeof head === 'string') {
      problem = { kind: 'malformed', segment: HEAD_FILE, line: 1, message: head };
    } else if (head === undefined) {
      if (records > 0) problem = at(end, 'truncated', `${HEAD_FILE} is missing: without the checkpoint, removal of the newest records cannot be ruled out`);
    } else if (head.seq > lastSeq) {
      const headSegN = segmentNumber(head.segment) ?? 0;
      if (headSegN > (segs.at(-1)?.n ?? 0)) problem = { kind: 'missing_segment', segment: head.segment, line: 0, seq: lastSeq + 1, message: `segment ${head.segment} named by ${HEAD_FILE} is missing (log ends at seq ${lastSeq}, checkpoint is seq ${head.seq})` };
      else problem = at(end, 'truncated', `log ends at seq ${lastSeq} but ${HEAD_FILE} checkpointed seq ${head.seq} at ${head.time}: records were removed from the end`);
    } else if (hashAtHead !== head.hash) {
      const where = headRecord ?? end;
      problem = at(where, 'truncated', `the checkpoint in ${HEAD_FILE} (seq ${head.seq}) is not in the chain: the log was truncated and rewritten from there`);
    }
  }
  if (!problem && anchor) {
    if (anchor.seq > lastSeq) problem = at({ segment: last?.segment ?? lastSeg, line: (last?.line ?? 0) + 1, seq: lastSeq + 1 }, 'truncated', `log ends at seq ${lastSeq}, before the external checkpoint at seq ${anchor.seq}`);
    else if (hashAtAnchor !== anchor.hash) {
      problem = at(anchorRecord ?? { segment: anchor.segment, line: 0, seq: anchor.seq }, 'modified', `record seq ${anchor.seq} differs from the external checkpoint: the log (and ${HEAD_FILE}) was rewritten at or before it`);
    }
  }
  return { ok: !problem, records, segments, lastSeq, lastHash: h, ...(problem ? { problem } : {}), head: headOk ?? null, warnings };
}
