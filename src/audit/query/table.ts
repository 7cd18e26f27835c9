/**
 * Human output of audit queries: an aligned event table that fits the
 * terminal, and the group-count table. Cell text comes from the network
 * (paths, subjects): control and bidi characters are escaped so a crafted
 * request cannot rewrite the reviewer's terminal.
 */
import type { AuditRecord } from '../event.ts';
import type { Aggregation } from './aggregate.ts';
import { identityOf } from './filter.ts';

// C0, DEL, C1, and the invisible direction controls (Trojan Source, CVE-2021-42574).
const UNSAFE_RE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `s` with terminal-unsafe characters shown as `\uXXXX`. */
export function sanitizeCell(s: string): string {
  return s.replace(UNSAFE_RE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `s` cut to `width` characters, ending in `…` when cut. */
export function truncateCell(s: string, width: number): string {
  if (s.length <= width) return s;
  return width <= 1 ? '…'.slice(0, width) : `${s.slice(0, width - 1)}…`;
}

/**
 * Widths for columns that share `available` characters: a column that needs
 * less than an equal share keeps its natural width and the rest is shared
 * among the others (water-filling). Columns are kept at least `min` wide (or
 * their natural width, if smaller) when that still fits; a wrapped line
 * would break the alignment, so the total never exceeds `available` unless
 * even one character per column does not fit.
 */
export function fitWidths(natural: readonly number[], available: number, min = 8): number[] {
  if (natural.reduce((a, b) => a + b, 0) <= available) return [...natural];
  const widths = natural.map(() => 0);
  let open = natural.map((_, i) => i);
  let left = Math.max(0, available);
  for (;;) {
    const share = Math.floor(left / Math.max(1, open.length));
    const fits = open.filter((i) => (natural[i] as number) <= share);
    if (fits.length === 0) {
      open.forEach((i, k) => { widths[i] = share + (k < left - share * open.length ? 1 : 0); });
      break;
    }
    for (const i of fits) {
      widths[i] = natural[i] as number;
      left -= natural[i] as number;
    }
    open = open.filter((i) => !fits.includes(i));
    if (open.length === 0) break;
  }
  const floored = widths.map((w, i) => Math.max(w, Math.min(min, natural[i] as number)));
  if (floored.reduce((a, b) => a + b, 0) <= available) return floored;
  return widths.map((w) => Math.max(1, w));
}

/** Columns of the event table, in order. */
export const EVENT_COLUMNS = ['TIME', 'DECISION', 'STATUS', 'METHOD', 'PATH', 'IDENTITY', 'REASON', 'LATENCY'] as const;
/** PATH, IDENTITY, REASON give up width when the terminal is narrow. */
const FLEX = [4, 5, 6];
const RIGHT = new Set([2, 7]);
const GAP = '  ';
/** Widths used when no rows arrive before the first follow-mode row. */
const DEFAULT_WIDTHS = [24, 8, 6, 6, 32, 40, 22, 9];

function latency(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-';
  return ms < 1000 ? `${ms.toFixed(1)}ms` : `${(ms / 1000).toFixed(2)}s`;
}

/** The table cells of one event, sanitized; `-` for an absent value. */
export function eventCells(record: AuditRecord): string[] {
  const r = record as unknown as Record<string, unknown>;
  const s = (v: unknown): string => (typeof v === 'string' && v !== '' ? sanitizeCell(v) : typeof v === 'number' ? String(v) : '-');
  return [s(r['time']), s(r['decision']), r['status'] === 0 ? '-' : s(r['status']), s(r['method']), s(r['path']), s(identityOf(record)), s(r['reason']), latency(r['latencyMs'])];
}

/**
 * Streams events as an aligned table. Column widths come from the first
 * page of rows (so output starts before the query ends) and then stay;
 * with `width` (a terminal) cells are cut to fit, without it nothing is cut
 * and a longer later cell just pushes its row wider.
 */
export class EventTable {
  readonly #emit: (text: string) => void;
  readonly #width: number | undefined;
  readonly #pageSize: number;
  #pending: string[][] = [];
  #widths: number[] | undefined;

  constructor(emit: (text: string) => void, options: { width?: number | undefined; pageSize?: number } = {}) {
    this.#emit = emit;
    this.#width = options.width;
    this.#pageSize = options.pageSize ?? 1000;
  }

  add(record: AuditRecord): void {
    const cells = eventCells(record);
    if (this.#widths) this.#emit(this.#line(cells));
    else {
      this.#pending.push(cells);
      if (this.#pending.length >= this.#pageSize) this.settle();
    }
  }

  /** Fixes the widths (from the rows so far), prints the header and the pending rows. */
  settle(): void {
    if (this.#widths) return;
    const rows = this.#pending;
    const natural = rows.length === 0
      ? [...DEFAULT_WIDTHS]
      : EVENT_COLUMNS.map((h, c) => rows.reduce((w, r) => Math.max(w, (r[c] as string).length), h.length));
    if (this.#width !== undefined) {
      const fixed = natural.reduce((a, w, i) => a + (FLEX.includes(i) ? 0 : w), 0) + GAP.length * (natural.length - 1);
      const flex = fitWidths(FLEX.map((i) => natural[i] as number), this.#width - fixed);
      FLEX.forEach((c, k) => { natural[c] = flex[k] as number; });
    }
    this.#widths = natural;
    this.#pending = [];
    this.#emit([this.#line([...EVENT_COLUMNS]), ...rows.map((r) => this.#line(r))].join(''));
  }

  /** True once widths are fixed (header printed). */
  get settled(): boolean {
    return this.#widths !== undefined;
  }

  #line(cells: readonly string[]): string {
    const w = this.#widths as number[];
    const out = cells.map((c, i) => {
      const width = w[i] as number;
      const cell = this.#width !== undefined ? truncateCell(c, width) : c;
      return RIGHT.has(i) ? cell.padStart(width) : cell.padEnd(width);
    });
    return `${out.join(GAP).trimEnd()}\n`;
  }
}

/** The group counts as a table: COUNT, SHARE of all counted, and the key. */
export function groupTable(a: Aggregation, width?: number): string {
  const total = Math.max(1, a.total);
  const rows = a.groups.map((g) => [String(g.count), `${((100 * g.count) / total).toFixed(1)}%`, g.key === null ? '(none)' : sanitizeCell(g.key)]);
  if (a.overflow > 0) rows.push([String(a.overflow), `${((100 * a.overflow) / total).toFixed(1)}%`, '(other keys: too many distinct values to hold)']);
  const head = ['COUNT', 'SHARE', a.groupBy.toUpperCase()];
  const w0 = Math.max(head[0]!.length, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(head[1]!.length, ...rows.map((r) => r[1]!.length));
  const keyWidth = width === undefined ? undefined : Math.max(8, width - w0 - w1 - 2 * GAP.length);
  return [head, ...rows]
    .map((r) => `${r[0]!.padStart(w0)}${GAP}${r[1]!.padStart(w1)}${GAP}${keyWidth === undefined ? r[2] : truncateCell(r[2]!, keyWidth)}\n`)
    .join('');
}
