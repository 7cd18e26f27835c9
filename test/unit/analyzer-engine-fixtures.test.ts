/**
 * Runs every fixture of test/fixtures/detections/ (README there): the
 * events go through the real AuditWriter, then `replay()` — the code behind
 * `meshgate analyzer replay` — and the final alerts must be exactly the
 * expected ones, so every negative control in the fixture is checked too.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { verifyAuditDir } from '../../src/audit/verify.ts';
import { SHIPPED_DETECTIONS } from '../../src/config/load.ts';
import { replay } from '../../src/analyzer/replay.ts';
import { loadRules } from '../../src/analyzer/rules/load.ts';
import type { RuleSet } from '../../src/analyzer/rules/schema.ts';
import { parseFixtureEvents, tmpDir, writeAudit } from './analyzer-engine-helpers.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/detections');

interface Expected { rule: string; scope: string; value: string; count: number }
interface Case { description: string; rules?: string[]; rulesFile?: string; expect: Expected[] }

const shipped = await loadRules(SHIPPED_DETECTIONS);
const cases = fs.readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

async function rulesOf(dir: string, c: Case): Promise<RuleSet> {
  if (c.rulesFile !== undefined) return loadRules(path.join(dir, c.rulesFile));
  const names = c.rules ?? [];
  for (const n of names) assert.ok(shipped.rules.some((r) => r.name === n), `${n} is not a shipped rule`);
  return { ...shipped, rules: shipped.rules.filter((r) => names.includes(r.name)) };
}

const key = (a: Expected): string => `${a.rule} ${a.scope} ${a.value} ${a.count}`;

for (const name of cases) {
  const dir = path.join(FIXTURES, name);
  const c = parse(fs.readFileSync(path.join(dir, 'case.yaml'), 'utf8')) as Case;
  test(`fixture ${name}: ${c.description.replace(/\s+/g, ' ').trim()}`, async (t) => {
    const audit = path.join(tmpDir(t), 'audit');
    await writeAudit(audit, parseFixtureEvents(fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8')));
    assert.equal((await verifyAuditDir(audit)).ok, true);
    const result = await replay([audit], await rulesOf(dir, c));
    const got = result.alerts.map((a) => key({ rule: a.rule, scope: a.scope, value: a.value, count: a.count })).sort();
    assert.deepEqual(got, c.expect.map(key).sort());
    for (const a of result.alerts) {
      assert.ok(a.evidence.length > 0 && a.evidence.length <= 20, 'evidence is bounded and never empty');
      assert.ok(a.firstSeen <= a.lastSeen);
    }
  });
}

test('every shipped detection rule has a fixture that expects it to fire', () => {
  const covered = new Set<string>();
  for (const name of cases) {
    const c = parse(fs.readFileSync(path.join(FIXTURES, name, 'case.yaml'), 'utf8')) as Case;
    for (const e of c.expect) covered.add(e.rule);
  }
  assert.deepEqual(shipped.rules.map((r) => r.name).filter((n) => !covered.has(n)), []);
});
