/**
 * `policy replay` benchmark: writes N recorded requests with the real
 * AuditWriter (decided by the demo policy), then replays them against a
 * candidate policy and reports events/s.
 *
 *   node bench/policy-replay.ts [events=1000000]
 *
 * Target (issue 3): 1,000,000 recorded events in well under a minute.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicyAuthorizer } from '../src/policy/load-authorizer.ts';
import { replayAudit } from '../src/policy/replay.ts';
import { writeTraffic } from '../test/fixtures/policy/audit-traffic.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const root = fileURLToPath(new URL('..', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-replay-bench-'));
try {
  const baseline = await loadPolicyAuthorizer({ modelPath: path.join(root, 'policies/model.conf'), policyPath: path.join(root, 'policies/policy.csv') });
  const candidate = await loadPolicyAuthorizer({
    modelPath: path.join(root, 'test/fixtures/policy/candidate/model.conf'),
    policyPath: path.join(root, 'test/fixtures/policy/candidate/policy.csv'),
  });
  let t = performance.now();
  await writeTraffic(path.join(dir, 'audit'), N, baseline);
  const bytes = fs.readdirSync(path.join(dir, 'audit')).reduce((s, f) => s + fs.statSync(path.join(dir, 'audit', f)).size, 0);
  console.log(`wrote ${N.toLocaleString('en-US')} events (${(bytes / 1e6).toFixed(0)} MB) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  t = performance.now();
  const r = await replayAudit({ sources: [path.join(dir, 'audit')], authorizer: candidate });
  const s = (performance.now() - t) / 1000;
  console.log(`replayed ${r.events.toLocaleString('en-US')} events in ${s.toFixed(1)} s (${Math.round(r.events / s).toLocaleString('en-US')} events/s)`);
  console.log(`  replayable ${r.replayable.toLocaleString('en-US')}, not replayable ${r.notReplayable.toLocaleString('en-US')}, unchanged ${r.unchanged.toLocaleString('en-US')}`);
  console.log(`  allow→deny ${r.allowToDeny.toLocaleString('en-US')}, deny→allow ${r.denyToAllow.toLocaleString('en-US')} in ${r.flips.length} groups`);
  console.log(`  heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB, engine ${candidate.engine}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
