/**
 * The scenario generator behind `npm run bench:detect`: labelled traces are
 * real audit logs (they verify), reproducible from their seed, and their
 * labels point at events that exist.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readAuditEvents, verifyAuditDir } from '../../src/audit/verify.ts';
import { generateScenarios } from '../../scripts/gen-scenarios.ts';
import { tmpDir } from './analyzer-engine-helpers.ts';

function digest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }).map(String).sort()) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  return out;
}

test('the same seed writes byte-identical traces that verify, with labels that match the log', async (t) => {
  const root = tmpDir(t);
  const a = path.join(root, 'a');
  const b = path.join(root, 'b');
  const labels = await generateScenarios({ out: a, seed: 7, hours: 3 });
  await generateScenarios({ out: b, seed: 7, hours: 3 });
  assert.deepEqual(digest(a), digest(b));

  const v = await verifyAuditDir(path.join(a, 'audit'));
  assert.equal(v.ok, true, JSON.stringify(v.problem));
  assert.equal(v.records, labels.events);

  const ids = new Map<string, number>();
  for await (const r of readAuditEvents(path.join(a, 'audit'))) ids.set(r.id, Date.parse(r.time));
  assert.equal(ids.size, labels.events, 'event ids are unique');
  const kinds = new Set(labels.attacks.map((x) => x.kind));
  assert.equal(kinds.size, 16);
  for (const attack of labels.attacks) {
    assert.ok(attack.events.length > 0 && attack.expected.length > 0, attack.id);
    for (const id of attack.events) assert.ok(ids.has(id), `${attack.id}: ${id} is in the log`);
    // Attacks come after an hour and 45 minutes of learning.
    assert.ok(Date.parse(attack.start) >= Date.parse(labels.start) + 105 * 60_000, attack.id);
  }
  assert.deepEqual(labels.nearMisses.map((n) => n.kind).sort(), ['batch-job', 'client-bug', 'deploy-new-routes', 'mistyped-credentials', 'retry-storm']);
});

test('fewer than 3 hours is refused (no room for learning before the attacks)', async (t) => {
  await assert.rejects(generateScenarios({ out: path.join(tmpDir(t), 'c'), hours: 2 }), TypeError);
});
