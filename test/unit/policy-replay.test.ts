import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readAuditEvents } from '../../src/audit/read-events.ts';
import type { Authorizer } from '../../src/authz/authorizer.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import { loadPolicyAuthorizer } from '../../src/policy/load-authorizer.ts';
import { recordedVerdict, replayAudit, type ReplayReport } from '../../src/policy/replay.ts';
import { writeTraffic, type TrafficStats } from '../fixtures/policy/audit-traffic.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEMO = { modelPath: path.join(ROOT, 'policies/model.conf'), policyPath: path.join(ROOT, 'policies/policy.csv') };
const CANDIDATE_DIR = path.join(ROOT, 'test/fixtures/policy/candidate');
const CANDIDATE = { modelPath: path.join(CANDIDATE_DIR, 'model.conf'), policyPath: path.join(CANDIDATE_DIR, 'policy.csv') };

async function run(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const io: CliIO = { stdout, stderr, env: {}, cwd };
  const code = await main(argv, io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

describe('policy replay over 100,000 recorded requests', () => {
  let dir: string;
  let audit: string;
  let stats: TrafficStats;
  let baseline: Authorizer;
  let candidate: Authorizer;
  let report: ReplayReport;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-policy-replay-'));
    audit = path.join(dir, 'audit');
    baseline = await loadPolicyAuthorizer(DEMO);
    candidate = await loadPolicyAuthorizer(CANDIDATE);
    stats = await writeTraffic(audit, 100_000, baseline);
    report = await replayAudit({ sources: [audit], authorizer: candidate });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('every event is accounted for: replayable, or refused before authorization', () => {
    assert.equal(report.events, 100_000);
    assert.equal(report.notReplayable, stats.preAuthz);
    assert.equal(report.replayable, 100_000 - stats.preAuthz);
    assert.equal(report.unchanged + report.allowToDeny + report.denyToAllow, report.replayable);
    assert.deepEqual(Object.keys(report.notReplayableByReason).sort(), ['jwt_expired', 'route_not_found']);
    assert.deepEqual(Object.keys(report.recordedVersions), [baseline.version]);
    assert.equal(report.candidateVersion, candidate.version);
  });

  test('the flips are exactly the events the two policies decide differently', async () => {
    let a2d = 0;
    let d2a = 0;
    for await (const e of readAuditEvents(audit)) {
      const before = recordedVerdict(e);
      if (before === undefined) continue;
      const sub = e.principal?.sub ?? e.peer?.spiffeId ?? 'anonymous';
      const after = candidate.decide({ sub, peer: e.peer?.spiffeId ?? '', obj: e.path!, act: e.method!, claims: {} }).allowed;
      if (before && !after) a2d++;
      if (!before && after) d2a++;
    }
    assert.ok(a2d > 0 && d2a > 0, 'the candidate fixture must flip both ways for this test to mean anything');
    assert.equal(report.allowToDeny, a2d);
    assert.equal(report.denyToAllow, d2a);
    assert.equal(report.flips.reduce((s, g) => s + g.count, 0), a2d + d2a);
  });

  test('removing the deny rule shows up as deny→allow for alice with the rule before and after', () => {
    const g = report.flips.find((f) => f.direction === 'deny_to_allow' && f.identity === 'alice');
    assert.ok(g, JSON.stringify(report.flips.map((f) => [f.direction, f.identity, f.route])));
    assert.equal(g.route, 'default');
    assert.equal(g.reasonBefore, 'authz_deny_rule');
    assert.equal(g.ruleBefore, 'policy.csv:18: p, alice, /orders/secret, .*, deny');
    assert.equal(g.reasonAfter, 'allowed');
    assert.equal(g.ruleAfter, 'policy.csv:8: p, role:reader, /orders/:id, ^GET$, allow');
    assert.ok(g.examples.length > 0 && g.examples.length <= 3);
    assert.ok(g.examples.every((e) => e.path === '/orders/secret' && e.method === 'GET' && /^[0-9a-f-]{36}$/.test(e.id)));
  });

  test('losing HEAD flips readers allow→deny with no matching rule after', () => {
    const g = report.flips.find((f) => f.direction === 'allow_to_deny' && f.identity === 'spiffe://mesh.local/ns/default/sa/client' && f.ruleBefore?.includes('/orders/:id'));
    assert.ok(g);
    assert.equal(g.reasonAfter, 'authz_no_matching_rule');
    assert.equal(g.ruleAfter, null);
    assert.ok(g.examples.every((e) => e.method === 'HEAD'));
  });

  test('groups are sorted largest first', () => {
    for (let i = 1; i < report.flips.length; i++) assert.ok(report.flips[i - 1]!.count >= report.flips[i]!.count);
  });

  test('replaying the recorded policy itself flips nothing', async () => {
    const same = await replayAudit({ sources: [audit], authorizer: baseline });
    assert.equal(same.flips.length, 0);
    assert.equal(same.unchanged, same.replayable);
  });
});

describe('policy replay command', () => {
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-policy-replay-cli-'));
    await writeTraffic(path.join(dir, 'audit'), 2_000, await loadPolicyAuthorizer(DEMO), 3);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('prints the flips and exits 0; --fail-on-flip makes flips exit 1', async () => {
    const r = await run(['policy', 'replay', '--policy', CANDIDATE_DIR, 'audit'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^replayed 2,000 events against policy sha256:[0-9a-f]{16}/);
    assert.match(r.stdout, /^deny→allow {2}\d+ {2}alice {2}route default$/m);
    assert.match(r.stdout, /before: authz_deny_rule {2}policy\.csv:18: p, alice, \/orders\/secret, \.\*, deny/);
    assert.match(r.stdout, /not replayable \(decided before authorization\) \d+: /);
    assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
    const strict = await run(['policy', 'replay', '--policy', CANDIDATE_DIR, 'audit', '--fail-on-flip'], dir);
    assert.equal(strict.code, 1);
    const same = await run(['policy', 'replay', '--policy', path.join(ROOT, 'policies'), 'audit', '--fail-on-flip'], dir);
    assert.equal(same.code, 0);
    assert.match(same.stdout, /no decision flips/);
  });

  test('on a terminal a progress line with events and events/s is drawn on stderr, then cleared', async () => {
    const stdout = new PassThrough();
    const stderr = Object.assign(new PassThrough(), { isTTY: true });
    const err: Buffer[] = [];
    stderr.on('data', (b: Buffer) => err.push(b));
    stdout.resume();
    const code = await main(['policy', 'replay', '--policy', CANDIDATE_DIR, 'audit'], { stdout, stderr, env: {}, cwd: dir });
    assert.equal(code, 0);
    const text = Buffer.concat(err).toString();
    assert.match(text, /replaying: 2,000 events, [\d,]+ events\/s/);
    assert.ok(text.endsWith('\r\x1b[2K'), 'the line is cleared before the report');
  });

  test('--json prints the report; a segment file works as a source', async () => {
    const seg = fs.readdirSync(path.join(dir, 'audit')).find((f) => f.endsWith('.jsonl'))!;
    const r = await run(['policy', 'replay', '--policy', path.join(CANDIDATE_DIR, 'policy.csv'), path.join('audit', seg), '--json'], dir);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as ReplayReport;
    assert.equal(report.events, 2_000);
    assert.ok(report.flips.length > 0);
  });

  test('usage errors exit 2: no --policy, no audit source, unreadable source, broken candidate', async () => {
    assert.equal((await run(['policy', 'replay', 'audit'], dir)).code, 2);
    assert.equal((await run(['policy', 'replay', '--policy', CANDIDATE_DIR], dir)).code, 2);
    const missing = await run(['policy', 'replay', '--policy', CANDIDATE_DIR, 'nope'], dir);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nope \(ENOENT\)/);
    fs.mkdirSync(path.join(dir, 'broken'), { recursive: true });
    fs.copyFileSync(path.join(CANDIDATE_DIR, 'model.conf'), path.join(dir, 'broken/model.conf'));
    fs.writeFileSync(path.join(dir, 'broken/policy.csv'), 'p, alice, /x\n');
    const broken = await run(['policy', 'replay', '--policy', 'broken', 'audit'], dir);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /policy\.csv:1: p line has 2 column/);
  });

  test('a candidate model that reads claims is replayed with claims = {} and says so', async () => {
    fs.mkdirSync(path.join(dir, 'abac'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'abac/model.conf'), fs.readFileSync(CANDIDATE.modelPath, 'utf8').replace('r = sub, obj, act', 'r = sub, obj, act, claims').replace('m = g(r.sub, p.sub)', 'm = r.claims.admin == true || g(r.sub, p.sub)'));
    fs.copyFileSync(CANDIDATE.policyPath, path.join(dir, 'abac/policy.csv'));
    const r = await run(['policy', 'replay', '--policy', 'abac', 'audit'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /reads r\.claims, which the audit log does not record: replayed with claims = \{\}/);
  });
});
