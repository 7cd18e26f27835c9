/**
 * `<analyzer.dir>/alerts.jsonl`: one JSON line per alert emission
 * (docs/alerts.md). This is the analyzer's record of what it raised: the
 * cursor is only advanced after the alerts before it are fsynced here, and a
 * restart reads the lines after the cursor's offset to avoid raising an alert
 * twice. Appends are batched off the analysis loop; fsync runs on an interval
 * and on `flush`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { readFileLines } from '../../audit/lines.ts';
import { silentLogger, type Logger } from '../../core/log.ts';
import type { Alert } from '../types.ts';
import type { AlertSink, SinkStats } from './sink.ts';

/** File name inside the analyzer state folder. */
export const ALERTS_FILE = 'alerts.jsonl';

export interface AlertsLogOptions {
  /** fsync at most this long after a write (default 1000 ms). */
  readonly fsyncIntervalMs?: number;
  readonly logger?: Logger;
}

/** Cuts a partial last line (a crash mid-append) so the next append starts on a line of its own. */
async function dropTornTail(fh: FileHandle): Promise<number> {
  const size = (await fh.stat()).size;
  if (size === 0) return 0;
  let end = size;
  const buf = Buffer.allocUnsafe(64 * 1024);
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
    if (nl !== -1) {
      const keep = start + nl + 1;
      if (keep < size) {
        await fh.truncate(keep);
        await fh.sync();
      }
      return keep;
    }
    end = start;
  }
  await fh.truncate(0);
  return 0;
}

/** The alerts.jsonl sink. */
export class AlertsLog implements AlertSink {
  readonly name = 'alerts.jsonl';
  readonly file: string;
  readonly #fh: FileHandle;
  readonly #log: Logger;
  readonly #fsyncMs: number;
  #size: number;
  #pending: string[] = [];
  #chain: Promise<void> = Promise.resolve();
  #scheduled = false;
  #dirty = false;
  #fsyncTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #emitted = 0;
  #written = 0;
  #errors = 0;

  private constructor(file: string, fh: FileHandle, size: number, opts: AlertsLogOptions) {
    this.file = file;
    this.#fh = fh;
    this.#size = size;
    this.#log = opts.logger ?? silentLogger;
    this.#fsyncMs = opts.fsyncIntervalMs ?? 1000;
  }

  /** Opens (creating 0600) `<dir>/alerts.jsonl` for appending; a torn last line is removed. */
  static async open(dir: string, opts: AlertsLogOptions = {}): Promise<AlertsLog> {
    const file = path.join(dir, ALERTS_FILE);
    const fh = await open(file, 'a+', 0o600);
    try {
      const size = await dropTornTail(fh);
      return new AlertsLog(file, fh, size, opts);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Byte length of the file including everything written so far (durable after `flush`). */
  get offset(): number {
    return this.#size;
  }

  emit(alert: Alert): void {
    if (this.#closed) return;
    this.#emitted++;
    this.#pending.push(`${JSON.stringify(alert)}\n`);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        void this.#enqueue(() => this.#write()).catch(() => {});
      });
    }
  }

  /** Writes everything emitted so far and fsyncs it. Rejects when the disk refused (the cursor must then not advance). */
  async flush(): Promise<void> {
    await this.#enqueue(async () => {
      await this.#write();
      await this.#sync();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      if (this.#fsyncTimer) clearTimeout(this.#fsyncTimer);
      await this.#chain.catch(() => {});
      await this.#fh.close();
    }
  }

  stats(): SinkStats {
    return { emitted: this.#emitted, delivered: this.#written, failed: this.#errors, dropped: 0, queued: this.#pending.length };
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.#chain.then(fn);
    this.#chain = p.catch(() => {});
    return p;
  }

  async #write(): Promise<void> {
    if (this.#pending.length === 0) return;
    const lines = this.#pending;
    this.#pending = [];
    const buf = Buffer.from(lines.join(''), 'utf8');
    try {
      let off = 0;
      while (off < buf.length) off += (await this.#fh.write(buf, off, buf.length - off)).bytesWritten;
    } catch (err) {
      // Keep the lines for the next attempt; a partial write is cut by the next open.
      this.#pending = lines.concat(this.#pending);
      this.#errors++;
      this.#log.error({ err, file: this.file }, 'alerts log write failed; alerts kept queued');
      throw err;
    }
    this.#size += buf.length;
    this.#written += lines.length;
    this.#dirty = true;
    if (!this.#fsyncTimer && this.#fsyncMs > 0) {
      this.#fsyncTimer = setTimeout(() => {
        this.#fsyncTimer = undefined;
        void this.#enqueue(() => this.#sync()).catch(() => {});
      }, this.#fsyncMs);
      this.#fsyncTimer.unref();
    }
  }

  async #sync(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    try {
      await this.#fh.sync();
    } catch (err) {
      this.#dirty = true;
      this.#errors++;
      this.#log.error({ err, file: this.file }, 'alerts log fsync failed');
      throw err;
    }
  }
}

/** A parsed line of alerts.jsonl and the byte offset it starts at. */
export interface AlertLine {
  readonly alert: Alert;
  readonly offset: number;
  readonly line: number;
}

function looksLikeAlert(v: unknown): v is Alert {
  if (typeof v !== 'object' || v === null) return false;
  const a = v as Record<string, unknown>;
  return typeof a['id'] === 'string' && typeof a['rule'] === 'string' && typeof a['scope'] === 'string' && typeof a['value'] === 'string'
    && typeof a['count'] === 'number' && typeof a['lastSeen'] === 'string' && Array.isArray(a['evidence']);
}

/**
 * Yields the alerts of `file` from byte `fromOffset` (default 0) on. A missing
 * file yields nothing; incomplete and unparsable lines are skipped and counted
 * in `skipped` of the optional counter object.
 */
export async function* readAlertLines(file: string, fromOffset = 0, counter?: { skipped: number }): AsyncGenerator<AlertLine> {
  let lines;
  try {
    lines = readFileLines(file, fromOffset, 1024 * 1024);
    for await (const l of lines) {
      if (!l.complete || l.tooLong) {
        if (counter) counter.skipped++;
        continue;
      }
      if (l.text.length === 0) continue;
      let v: unknown;
      try {
        v = JSON.parse(l.text);
      } catch {
        if (counter) counter.skipped++;
        continue;
      }
      if (!looksLikeAlert(v)) {
        if (counter) counter.skipped++;
        continue;
      }
      yield { alert: v, offset: l.offset, line: l.line };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
}

/** The key that identifies one alert emission: the same alert re-emitted after a restart has the same key. */
export function emissionKey(a: Pick<Alert, 'id' | 'count' | 'lastSeen'>): string {
  return `${a.id}\u0000${a.count}\u0000${a.lastSeen}`;
}
