/**
 * Audit query benchmark: writes N events (default 1,000,000) with the real
 * AuditWriter into a temp dir, then times `meshgate audit query` (run
 * in-process, output discarded) for a filtered table, a count, a group-by
 * and, as the worst case, a query that must parse every record.
 *
 *   node bench/audit-query.ts [events=1000000]
 *
 * Target (issue 5): 1,000,000 events scanned in a few seconds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { newEventId, type AuditEvent } from '../src/audit/event.ts';
import { AuditWriter } from '../src/audit/writer.ts';
import { main } from '../src/cli/main.ts';

const N = Number(process.argv[2] ?? 1_000_000);
/** The events span one day, ending now, so that `--since 1h` means something. */
const SPAN_MS = 86_400_000;
const START = Date.now() - SPAN_MS;
const ROUTES = ['orders', 'payments', 'inventory', 'admin', 'reports'];
const DENY_REASONS = ['authz_no_matching_rule', 'authz_deny_rule', 'jwt_expired', 'jwt_bad_signature', 'peer_cert_required'];

function event(i: number): AuditEvent {
  const t = START + Math.floor((i * SPAN_MS) / N);
  const deny = i % 10 === 0;
  const route = ROUTES[Math.floor(i / 3) % ROUTES.length] as string;
  return {
    v: 1, type: 'request', id: newEventId(t), time: new Date(t).toISOString(), requestId: `req-${i}`,
    source: { ip: `10.1.${(i >> 8) & 255}.${i & 255}`, port: 40000 + (i % 20000) },
    peer: { spiffeId: `spiffe://mesh.local/ns/${i % 3 === 0 ? 'prod' : 'staging'}/sa/svc-${i % 40}`, fingerprint: 'ab'.repeat(32) },
    principal: i % 4 === 0 ? null : { iss: 'https://issuer.mesh.local', sub: `user-${i % 1000}` },
    jti: `jti-${i}`, tokenHash: 'Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6', method: i % 5 === 0 ? 'POST' : 'GET',
    path: `/${route}/${i % 5000}`, rawPath: null, route,
    decision: deny ? 'deny' : 'allow', reason: deny ? (DENY_REASONS[(i / 10) % DENY_REASONS.length] as string) : 'allowed',
    rule: deny ? null : `policy.csv:${3 + (i % 20)}: p, role:reader, /${route}/*, GET, allow`, policyVersion: 'c0ffee12',
    status: deny ? 403 : 200, bytesIn: i % 7 === 0 ? 512 : 0, bytesOut: 1024 + (i % 4096), latencyMs: (i % 997) / 3, shadow: null,
  };
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-bench-query-'));
const dir = path.join(root, 'audit');
const devNull = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });

async function time(label: string, args: string[]): Promise<void> {
  let out = '';
  const stdout = new Writable({ write: (c: Buffer, _e, cb) => { if (out.length < 4096) out += c; cb(); } });
  const t0 = process.hrtime.bigint();
  const code = await main(['audit', 'query', dir, ...args], { stdout, stderr: devNull(), env: {}, cwd: root });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const first = out.split('\n')[args.includes('--group-by') ? 1 : 0] ?? '';
  console.log(`${label.padEnd(44)} ${secs.toFixed(2)} s  (exit ${code}; ${first.trim().slice(0, 60)})`);
}

try {
  const w = new AuditWriter({ dir, segmentBytes: 64 * 1024 * 1024, fsyncInterval: 1000, checkpointInterval: 10_000, queueLimit: 100_000 });
  await w.open();
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < N; ) {
    for (let j = 0; j < 1000 && i < N; j++, i++) w.append(event(i));
    await tick();
    while (w.stats().queued > 20_000) await tick();
  }
  await w.close();
  const wsecs = Number(process.hrtime.bigint() - w0) / 1e9;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  const bytes = files.reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  console.log(`wrote ${N.toLocaleString('en-US')} events, ${(bytes / 1048576).toFixed(0)} MiB in ${files.length} segments (${wsecs.toFixed(1)} s)`);
  console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);

  await time('filtered table (deny, admin, last 6h)', ['--decision', 'deny', '--route', 'admin', '--since', '6h', '--limit', '0']);
  await time('filtered JSON (identity prefix, 4xx)', ['--identity', 'spiffe://mesh.local/ns/prod/*', '--status', '4xx', '--json']);
  await time('count (one subject)', ['--count', '--identity', 'user-7']);
  await time('count (min latency 300ms)', ['--count', '--min-latency', '300ms']);
  await time('group-by identity (denials)', ['--group-by', 'identity', '--decision', 'deny']);
  await time('group-by route (every event)', ['--group-by', 'route']);
  await time('newest 100 denials (--reverse)', ['--decision', 'deny', '--reverse']);
  await time('worst case: every event as JSON', ['--json']);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
