/**
 * Engine state as plain JSON, persisted with the analyzer's cursor: after a
 * restart from a snapshot the engine continues exactly as if it had never
 * stopped (same alerts, same ids, no repeats). State is restored per rule
 * name and only into a rule with the same definition: an edited rule starts
 * fresh rather than reinterpreting state built for different thresholds.
 */
import type { OpenAlert } from './open-alert.ts';
import type { GroupEntry, RuleRuntime } from './rule-runtime.ts';

export interface RuleSnapshot {
  readonly def: string;
  /** [group key, last touched (watermark ms), detector state], in table order. */
  readonly groups: readonly (readonly [string, number, unknown])[];
  readonly open: readonly OpenAlert[];
}

export interface EngineSnapshot {
  readonly v: 1;
  readonly watermark: number | null;
  readonly events: number;
  readonly rules: Readonly<Record<string, RuleSnapshot>>;
}

export function snapshotRules(watermark: number, events: number, books: readonly { rt: RuleRuntime; open: readonly OpenAlert[] }[]): EngineSnapshot {
  const rules: Record<string, RuleSnapshot> = {};
  for (const { rt, open } of books) {
    const groups: [string, number, unknown][] = [];
    rt.tables.forEach((table, i) => {
      const prefix = rt.global ? '' : `${rt.scopes[i] as string}:`;
      for (const [v, g] of table) groups.push([`${prefix}${v}`, g.seen, rt.detector.save(g.s)]);
    });
    // Detectors' save() copies whatever they mutate, so the snapshot shares nothing with the live state and the
    // caller may serialize it later. (A structuredClone of the whole snapshot did the same at ~5× the cost: it
    // was the largest single item of an analyzer partition's checkpoint, bench/stream.ts.)
    rules[rt.spec.name] = { def: rt.defHash, groups, open: open.map((o) => ({ ...o, evidence: o.evidence.slice() })) };
  }
  return { v: 1, watermark: Number.isFinite(watermark) ? watermark : null, events, rules };
}

export interface Restored {
  readonly watermark: number;
  readonly events: number;
  /** Open alerts per rule, in the order of `rts`. */
  readonly open: readonly OpenAlert[][];
}

/** Loads `state` into the rule runtimes (clearing theirs). Throws TypeError when it is not an engine snapshot. */
export function restoreRules(state: unknown, rts: readonly RuleRuntime[]): Restored {
  if (typeof state !== 'object' || state === null || (state as { v?: unknown }).v !== 1) throw new TypeError('not a detection engine snapshot (v 1)');
  const s = state as EngineSnapshot;
  if (typeof s.rules !== 'object' || s.rules === null) throw new TypeError('engine snapshot has no rules');
  const open: OpenAlert[][] = [];
  for (const rt of rts) {
    for (const t of rt.tables) t.clear();
    const rs = Object.hasOwn(s.rules, rt.spec.name) ? s.rules[rt.spec.name] : undefined;
    if (!rs || rs.def !== rt.defHash || !Array.isArray(rs.groups) || !Array.isArray(rs.open)) {
      open.push([]);
      continue;
    }
    for (const [key, seen, saved] of structuredClone(rs.groups)) {
      // Keys are "scope:value" (scope names have no colon), or the value alone for global rules.
      const i = rt.global ? 0 : rt.scopes.indexOf(key.slice(0, key.indexOf(':')) as (typeof rt.scopes)[number]);
      if (i < 0) continue;
      (rt.tables[i] as Map<string, GroupEntry>).set(rt.global ? key : key.slice(key.indexOf(':') + 1), { s: rt.detector.load(saved), seen });
    }
    open.push(structuredClone(rs.open) as OpenAlert[]);
  }
  return { watermark: typeof s.watermark === 'number' ? s.watermark : -Infinity, events: typeof s.events === 'number' ? s.events : 0, open };
}
