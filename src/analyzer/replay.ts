/**
 * Replay (PRODUCT §1.8): recorded audit logs through the same detection
 * engine as live mode, in event time. Deterministic — the engine reads only
 * the records — so the same input and rules always give the same alerts,
 * ids included; tests and the detection-quality bench rely on it.
 *
 * Several sources (audit dirs of several gateways, or single segment files)
 * are merged by event time; records of one source keep their log order.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { listSegments } from '../audit/chain.ts';
import type { AuditRecord } from '../audit/event.ts';
import { AuditFormatError } from '../audit/verify.ts';
import { createEngine, type EngineStats } from './engine/engine.ts';
import type { RuleSet } from './rules/schema.ts';
import type { Alert, EngineOutput, RemediationOrder } from './types.ts';

const CHUNK = 4 << 20;

/**
 * Records of one segment file, in file order, in batches. Reads 4 MiB at a
 * time and parses whole batches: per-line async iteration cost as much as the
 * detection itself. A partial last line is a write in progress when the file
 * is the newest segment (skipped), damage otherwise.
 */
async function* segmentBatches(file: string, newest: boolean): AsyncGenerator<AuditRecord[]> {
  const name = path.basename(file);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    let line = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) return;
      const nl = buf.lastIndexOf(10, bytesRead - 1);
      if (nl < 0) {
        if (bytesRead < CHUNK) {
          if (newest) return;
          throw new AuditFormatError(name, line + 1, 'partial record at the end of an older segment');
        }
        throw new AuditFormatError(name, line + 1, 'line too long');
      }
      // Cut at the last newline so no record (or UTF-8 sequence) is split.
      pos += nl + 1;
      const lines = buf.toString('utf8', 0, nl).split('\n');
      const out: AuditRecord[] = [];
      for (const text of lines) {
        line++;
        out.push(parseRecord(text, name, line));
      }
      yield out;
    }
  } finally {
    await fh.close();
  }
}

/**
 * One record line, parsed. Replay is not verification (that is `meshgate audit
 * verify`): it checks what the engine relies on, and leaves the hash and
 * chain checks of openRecord — a third of replay time — to the verifier.
 */
function parseRecord(text: string, segment: string, line: number): AuditRecord {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    throw new AuditFormatError(segment, line, 'line is not valid JSON');
  }
  if (typeof r !== 'object' || r === null || typeof (r as { seq?: unknown }).seq !== 'number' || typeof (r as { time?: unknown }).time !== 'string') {
    throw new AuditFormatError(segment, line, 'not an audit record (seq, time)');
  }
  return r as AuditRecord;
}

async function* dirBatches(dir: string): AsyncGenerator<AuditRecord[]> {
  const segs = await listSegments(dir);
  for (let i = 0; i < segs.length; i++) yield* segmentBatches(path.join(dir, (segs[i] as { name: string }).name), i === segs.length - 1);
}

/** Records of one source, in batches: an audit dir (all segments in seq order) or one segment file. Throws ENOENT for a missing path. */
export async function openSource(p: string): Promise<AsyncGenerator<AuditRecord[]>> {
  const st = await stat(p);
  return st.isDirectory() ? dirBatches(p) : segmentBatches(p, true);
}

interface Cursor {
  readonly it: AsyncGenerator<AuditRecord[]>;
  batch: AuditRecord[];
  i: number;
  t: number;
}

/** All records of `paths` in batches, merged by event time across sources (ties: the earlier source first). */
export async function* replayBatches(paths: readonly string[]): AsyncGenerator<AuditRecord[]> {
  const sources = await Promise.all(paths.map(openSource));
  if (sources.length === 1) {
    yield* sources[0] as AsyncGenerator<AuditRecord[]>;
    return;
  }
  const cursors: Cursor[] = sources.map((it) => ({ it, batch: [], i: 0, t: 0 }));
  /** Moves to the next record; false at the end of the source. */
  const fill = async (c: Cursor): Promise<boolean> => {
    while (c.i >= c.batch.length) {
      const n = await c.it.next();
      if (n.done) return false;
      c.batch = n.value;
      c.i = 0;
    }
    c.t = Date.parse((c.batch[c.i] as AuditRecord).time) || 0;
    return true;
  };
  const live: Cursor[] = [];
  for (const c of cursors) if (await fill(c)) live.push(c);
  let out: AuditRecord[] = [];
  while (live.length > 0) {
    let best = 0;
    for (let k = 1; k < live.length; k++) if ((live[k] as Cursor).t < (live[best] as Cursor).t) best = k;
    const c = live[best] as Cursor;
    out.push(c.batch[c.i++] as AuditRecord);
    if (!(await fill(c))) live.splice(best, 1);
    if (out.length >= 4096) {
      yield out;
      out = [];
    }
  }
  if (out.length > 0) yield out;
}

/** All records of `paths`, one by one (see replayBatches). */
export async function* replayRecords(paths: readonly string[]): AsyncGenerator<AuditRecord> {
  for await (const batch of replayBatches(paths)) yield* batch;
}

export interface ReplayOptions {
  readonly evidenceLimit?: number;
  /** Called for every engine output that carries something (live order: firing, then updates). */
  readonly onOutput?: (out: EngineOutput, record: AuditRecord | null) => void;
}

export interface ReplayResult {
  readonly events: number;
  /** Every alert in its final form (updates applied), in firing order. */
  readonly alerts: readonly Alert[];
  readonly remediations: readonly RemediationOrder[];
  readonly stats: EngineStats;
  /** Wall time of the replay (not part of the deterministic output). */
  readonly elapsedMs: number;
  /** CPU time this process spent on it (user + system): throughput per core, whatever else runs. */
  readonly cpuMs: number;
}

/** Replays `paths` through a fresh engine built from `rules`. */
export async function replay(paths: readonly string[], rules: RuleSet, options: ReplayOptions = {}): Promise<ReplayResult> {
  const engine = createEngine(rules, options.evidenceLimit === undefined ? {} : { evidenceLimit: options.evidenceLimit });
  const alerts = new Map<string, Alert>();
  const remediations: RemediationOrder[] = [];
  const take = (out: EngineOutput, rec: AuditRecord | null): void => {
    if (out.alerts.length === 0 && out.remediations.length === 0) return;
    for (const a of out.alerts) alerts.set(a.id, a);
    remediations.push(...out.remediations);
    options.onOutput?.(out, rec);
  };
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let events = 0;
  for await (const batch of replayBatches(paths)) {
    events += batch.length;
    for (const rec of batch) take(engine.process(rec), rec);
  }
  take(engine.flush(), null);
  const cpu = process.cpuUsage(cpu0);
  return { events, alerts: [...alerts.values()], remediations, stats: engine.stats(), elapsedMs: performance.now() - start, cpuMs: (cpu.user + cpu.system) / 1000 };
}
