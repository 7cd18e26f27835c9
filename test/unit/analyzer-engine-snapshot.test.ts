/**
 * Engine snapshots are taken on the analyzer's hot loop and serialized
 * afterwards (checkpoints, cursors): a snapshot must share nothing with the
 * live state, or events processed between the snapshot and its
 * serialization would leak into it and a restore would double-count them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AuditRecord } from '../../src/audit/event.ts';
import { SHIPPED_DETECTIONS } from '../../src/config/load.ts';
import { createEngine } from '../../src/analyzer/engine/engine.ts';
import { loadRules } from '../../src/analyzer/rules/load.ts';
import { parseFixtureEvents, records, T0, type Ev } from './analyzer-engine-helpers.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/detections');

/** Every detection fixture's events, each shifted to its own hour: state for every detector kind. */
function mixedStream(): AuditRecord[] {
  const names = fs.readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const evs: Ev[] = [];
  names.forEach((n, i) => {
    for (const ev of parseFixtureEvents(fs.readFileSync(path.join(FIXTURES, n, 'events.jsonl'), 'utf8'))) {
      const { id: _id, time, requestId: _r, ...rest } = ev;
      evs.push({ ...rest, at: Date.parse(time) - T0 + i * 3 * 3_600_000 } as unknown as Ev);
    }
  });
  return records(evs.sort((a, b) => (a.at as number) - (b.at as number)));
}

test('a snapshot is not changed by events processed after it was taken', async () => {
  const recs = mixedStream();
  const engine = createEngine(await loadRules(SHIPPED_DETECTIONS));
  const cuts = [Math.floor(recs.length / 4), Math.floor(recs.length / 2), Math.floor((3 * recs.length) / 4)];
  const taken: { snap: unknown; json: string }[] = [];
  recs.forEach((r, i) => {
    engine.process(r);
    if (cuts.includes(i)) {
      const snap = engine.snapshot();
      taken.push({ snap, json: JSON.stringify(snap) });
    }
  });
  assert.equal(taken.length, cuts.length);
  for (const [i, t] of taken.entries()) {
    assert.ok(t.json.length > 1000, `snapshot ${i} holds state`);
    assert.equal(JSON.stringify(t.snap), t.json, `snapshot ${i} changed after it was taken`);
  }
});

test('two engines restored from one snapshot object do not share state', async () => {
  const recs = mixedStream();
  const rules = await loadRules(SHIPPED_DETECTIONS);
  const a = createEngine(rules);
  const half = Math.floor(recs.length / 2);
  for (const r of recs.slice(0, half)) a.process(r);
  const snap = a.snapshot();
  const b = createEngine(rules);
  const c = createEngine(rules);
  b.restore(snap);
  c.restore(snap);
  const outB = recs.slice(half).map((r) => JSON.stringify(b.process(r)));
  const outC = recs.slice(half).map((r) => JSON.stringify(c.process(r)));
  assert.deepEqual(outC, outB);
  assert.ok(outB.some((o) => o.includes('"alerts":[{')), 'the second half raises alerts');
});
