/**
 * The newest complete record of an audit log, read from the end of the
 * newest segment: how far the writer is, for the analyzer's lag metrics.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { listSegments, openRecord } from '../audit/chain.ts';

/** seq and event time (ms) of the last complete record in `dir`; undefined when there is none. */
export async function latestRecord(dir: string): Promise<{ seq: number; timeMs: number } | undefined> {
  const segs = await listSegments(dir).catch(() => []);
  for (let i = segs.length - 1; i >= 0; i--) {
    const fh = await open(path.join(dir, (segs[i] as { name: string }).name), 'r').catch(() => undefined);
    if (!fh) continue;
    try {
      const size = (await fh.stat()).size;
      // Records are a few hundred bytes; 64 KiB holds the last complete one unless lines are huge.
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.allocUnsafe(len);
      const { bytesRead } = await fh.read(buf, 0, len, size - len);
      const text = buf.toString('utf8', 0, bytesRead);
      const end = text.lastIndexOf('\n');
      if (end === -1) continue;
      const begin = text.lastIndexOf('\n', end - 1) + 1;
      const r = openRecord(text.slice(begin, end));
      if (!r.ok) continue;
      const t = Date.parse(String(r.record['time']));
      return { seq: r.seq, timeMs: Number.isFinite(t) ? t : 0 };
    } finally {
      await fh.close();
    }
  }
  return undefined;
}
