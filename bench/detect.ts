/**
 * Detection quality and analyzer throughput (issue 4).
 *
 *   npm run bench:detect [-- --seed N --hours H --rules FILE --regen]
 *
 * Generates (or reuses) labelled traces with scripts/gen-scenarios.ts,
 * replays them through the detection engine and prints, per rule:
 * precision, recall over the injected attacks that rule must catch, false
 * alerts per 100k benign events, and median time-to-detect (event time from
 * the attack's first event to the alert); then throughput on one core — the
 * engine alone on parsed records, and a full replay (read + parse + engine).
 *
 * An alert belongs to an attack when the event that fired it, or any event
 * in its evidence, is one of the attack's events; otherwise it is a false
 * alert. Goals: recall 1.0, ≤ 1 false alert per 100k benign events,
 * ≥ 100,000 events/s.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AuditRecord } from '../src/audit/event.ts';
import { readAuditEvents } from '../src/audit/verify.ts';
import { createEngine } from '../src/analyzer/engine/engine.ts';
import { replay } from '../src/analyzer/replay.ts';
import { loadRules } from '../src/analyzer/rules/load.ts';
import type { Alert } from '../src/analyzer/types.ts';
import { generateScenarios, SCENARIO_VERSION, type Labels } from '../scripts/gen-scenarios.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    hours: { type: 'string', default: '8' },
    dir: { type: 'string' },
    rules: { type: 'string', default: path.join(ROOT, 'policies/detections.yaml') },
    regen: { type: 'boolean', default: false },
    verbose: { type: 'boolean', short: 'v', default: false },
  },
  strict: true,
});
const seed = Number(values.seed);
const hours = Number(values.hours);
const dir = path.resolve(values.dir ?? path.join(ROOT, 'bench/.data', `detect-s${seed}-h${hours}`));

async function traces(): Promise<Labels> {
  const file = path.join(dir, 'labels.json');
  if (!values.regen && fs.existsSync(file)) {
    const l = JSON.parse(fs.readFileSync(file, 'utf8')) as Labels;
    if (l.v === SCENARIO_VERSION && l.seed === seed && l.hours === hours) return l;
  }
  process.stdout.write(`generating ${hours} h of traffic (seed ${seed}) into ${path.relative(process.cwd(), dir)} …\n`);
  return generateScenarios({ out: dir, seed, hours });
}

const labels = await traces();
const rules = await loadRules(values.rules);
const auditDir = path.join(dir, 'audit');

// Full replay first, while the heap is small (the quality pass below keeps every
// record in memory, which would tax the replay's garbage collection). Twice: the
// first run warms the JIT, and both must produce the same alerts (determinism).
const replays = [await replay([auditDir], rules), await replay([auditDir], rules)];
// Per CPU second of this process: "events/s on one core" whatever else the machine runs.
const replayRate = Math.max(...replays.map((r) => r.events / (r.cpuMs / 1000)));
const replayWall = Math.max(...replays.map((r) => r.events / (r.elapsedMs / 1000)));
const deterministic = JSON.stringify(replays[0]?.alerts) === JSON.stringify(replays[1]?.alerts);

const records: AuditRecord[] = [];
for await (const r of readAuditEvents(auditDir)) records.push(r);

// --- quality ---------------------------------------------------------------
const attackOf = new Map<string, number>();
labels.attacks.forEach((a, i) => { for (const id of a.events) attackOf.set(id, i); });
const benignEvents = records.length - attackOf.size;

interface Fired { alert: Alert; trigger: AuditRecord }
const fired = new Map<string, Fired>();
{
  const engine = createEngine(rules);
  for (const rec of records) {
    const out = engine.process(rec);
    for (const a of out.alerts) {
      const f = fired.get(a.id);
      if (f) f.alert = a;
      else fired.set(a.id, { alert: a, trigger: rec });
    }
  }
  for (const a of engine.flush().alerts) (fired.get(a.id) as Fired).alert = a;
}

const attackFor = (f: Fired): number | undefined => attackOf.get(f.trigger.id) ?? f.alert.evidence.map((id) => attackOf.get(id)).find((x) => x !== undefined);

interface RuleRow { alerts: number; tp: number; fp: number; expected: number; detected: number; ttd: number[] }
const rows = new Map<string, RuleRow>(rules.rules.map((r) => [r.name, { alerts: 0, tp: 0, fp: 0, expected: 0, detected: 0, ttd: [] }]));
const falseAlerts: Fired[] = [];
/** Earliest alert per (attack, rule). */
const caught = new Map<string, number>();
for (const f of fired.values()) {
  const row = rows.get(f.alert.rule) as RuleRow;
  row.alerts++;
  const ai = attackFor(f);
  if (ai === undefined) {
    row.fp++;
    falseAlerts.push(f);
    continue;
  }
  row.tp++;
  const k = `${ai}\u0000${f.alert.rule}`;
  const t = Date.parse(f.trigger.time);
  if (!caught.has(k) || t < (caught.get(k) as number)) caught.set(k, t);
}
const missed: string[] = [];
labels.attacks.forEach((a, i) => {
  for (const rule of a.expected) {
    const row = rows.get(rule);
    if (!row) {
      missed.push(`${a.id}: expected rule ${rule} is not in the rule set`);
      continue;
    }
    row.expected++;
    const t = caught.get(`${i}\u0000${rule}`);
    if (t === undefined) missed.push(`${a.id} (${a.actor}): ${rule} did not fire`);
    else {
      row.detected++;
      row.ttd.push(t - Date.parse(a.start));
    }
  }
});

const median = (xs: number[]): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmtMs = (ms: number | undefined): string => (ms === undefined ? '-' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
const per100k = (n: number): string => ((n / benignEvents) * 100_000).toFixed(2);

// --- throughput -------------------------------------------------------------
function engineRate(): number {
  const engine = createEngine(rules);
  const c0 = process.cpuUsage();
  for (const rec of records) engine.process(rec);
  engine.flush();
  const c = process.cpuUsage(c0);
  return records.length / ((c.user + c.system) / 1e6);
}
engineRate(); // warm-up: JIT and caches
const engineRates = [engineRate(), engineRate(), engineRate()];

// --- report -------------------------------------------------------------------
const table: string[][] = [['rule', 'alerts', 'TP', 'FP', 'precision', 'recall', 'FP/100k benign', 'median TTD']];
let totAlerts = 0;
let totTp = 0;
let totFp = 0;
let totExp = 0;
let totDet = 0;
for (const [name, r] of rows) {
  totAlerts += r.alerts;
  totTp += r.tp;
  totFp += r.fp;
  totExp += r.expected;
  totDet += r.detected;
  table.push([name, String(r.alerts), String(r.tp), String(r.fp), r.alerts ? (r.tp / r.alerts).toFixed(3) : '-', r.expected ? `${(r.detected / r.expected).toFixed(2)} (${r.detected}/${r.expected})` : '-', per100k(r.fp), fmtMs(median(r.ttd))]);
}
const allTtd = [...rows.values()].flatMap((r) => r.ttd);
table.push(['all rules', String(totAlerts), String(totTp), String(totFp), totAlerts ? (totTp / totAlerts).toFixed(3) : '-', `${(totDet / Math.max(1, totExp)).toFixed(2)} (${totDet}/${totExp})`, per100k(totFp), fmtMs(median(allTtd))]);
const widths = (table[0] as string[]).map((_, i) => Math.max(...table.map((r) => (r[i] as string).length)));
const md = (r: string[]): string => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`;

const out: string[] = [];
out.push(`traces: ${labels.events} events over ${labels.hours} h (seed ${labels.seed}), ${labels.attacks.length} attacks (${attackOf.size} events), ${benignEvents} benign events incl. ${labels.nearMisses.length} near-miss episodes`);
out.push('');
out.push(md(table[0] as string[]));
out.push(`|${widths.map((w, i) => (i === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`);
for (const r of table.slice(1)) out.push(md(r));
out.push('');
const n = (x: number): string => Math.round(x).toLocaleString('en-US');
out.push(`throughput (one core, per CPU second): replay ${n(replayRate)} events/s (read + parse + engine; ${n(replayWall)}/s wall clock on this machine); engine alone ${n(median(engineRates) as number)} events/s on parsed records`);
out.push(`determinism: two replays gave ${deterministic ? 'identical' : 'DIFFERENT'} alerts`);
const recall = totDet / Math.max(1, totExp);
const fpRate = (totFp / benignEvents) * 100_000;
out.push(`goals: recall ${recall === 1 ? 'met' : 'MISSED'} (${recall.toFixed(2)}), false alerts ${fpRate <= 1 ? 'met' : 'MISSED'} (${fpRate.toFixed(2)} per 100k benign), throughput ${replayRate >= 100_000 ? 'met' : 'MISSED'}`);
if (missed.length > 0) out.push('', 'missed:', ...missed.map((m) => `  ${m}`));
if (falseAlerts.length > 0) {
  out.push('', 'false alerts:');
  for (const f of falseAlerts.slice(0, values.verbose ? Infinity : 20)) out.push(`  ${f.alert.firstSeen} ${f.alert.rule} ${f.alert.scope}=${f.alert.value} count ${f.alert.count}: ${f.alert.summary}`);
  if (!values.verbose && falseAlerts.length > 20) out.push(`  … ${falseAlerts.length - 20} more (--verbose)`);
}
process.stdout.write(`${out.join('\n')}\n`);
