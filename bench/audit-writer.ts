/**
 * Audit writer benchmark: the cost of `append` on the request path (ns/op)
 * sustained throughput to disk (events/s, including hashing, writes,
 * rotation and the final fsync + checkpoint), and `verify` speed.
 *
 *   node bench/audit-writer.ts [events=500000]
 *
 * Targets (PRODUCT §1.6): append well under 1 µs; ≥ 50,000 events/s.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { newEventId, type AuditEvent } from '../src/audit/event.ts';
import { verifyAuditDir } from '../src/audit/verify.ts';
import { AuditWriter } from '../src/audit/writer.ts';

const N = Number(process.argv[2] ?? 500_000);

function event(i: number): AuditEvent {
  return {
    v: 1, type: 'request', id: newEventId(), time: new Date().toISOString(), requestId: `req-${i}`,
    source: { ip: '10.1.2.3', port: 40000 + (i % 1000) },
    peer: { spiffeId: 'spiffe://mesh.local/ns/default/sa/web', fingerprint: 'ab'.repeat(32) },
    principal: { iss: 'https://issuer.mesh.local', sub: `user-${i % 100}` },
    jti: `jti-${i}`, tokenHash: 'Zm9v'.repeat(11), method: 'GET', path: `/orders/${i % 500}`, rawPath: null,
    route: 'orders', decision: i % 10 === 0 ? 'deny' : 'allow', reason: i % 10 === 0 ? 'authz_no_matching_rule' : 'allowed',
    rule: 'p, role:reader, /orders/*, GET', policyVersion: 'c0ffee', status: i % 10 === 0 ? 403 : 200,
    bytesIn: 0, bytesOut: 512, latencyMs: 1.25, shadow: null,
  };
}

const events = Array.from({ length: 1024 }, (_, i) => event(i));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-bench-audit-'));
const config = { dir, segmentBytes: 64 * 1024 * 1024, fsyncInterval: 1000, checkpointInterval: 10_000, queueLimit: 100_000 };

try {
  // 1. append cost: a writer that is not open only queues, so this is the request-path cost alone.
  const probe = new AuditWriter({ ...config, dir: path.join(dir, 'probe'), queueLimit: N + 1 });
  for (let i = 0; i < 10_000; i++) probe.append(events[i & 1023] as AuditEvent); // warm up
  const a0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) probe.append(events[i & 1023] as AuditEvent);
  const appendNs = Number(process.hrtime.bigint() - a0) / N;

  // 2. throughput: producers append in bursts and yield, as request handlers
  // would, backing off while the queue is deep (a saturated sidecar cannot
  // accept requests faster than it finishes them) so nothing is dropped.
  const w = new AuditWriter(config);
  await w.open();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; ) {
    for (let j = 0; j < 1000 && i < N; j++, i++) w.append(events[i & 1023] as AuditEvent);
    await tick();
    while (w.stats().queued > 20_000) await tick();
  }
  await w.close();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const s = w.stats();
  const bytes = fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  console.log(`append: ${appendNs.toFixed(1)} ns/op`);
  console.log(`write:  ${Math.round(N / secs).toLocaleString('en')} events/s (${N} events, ${(bytes / 1048576).toFixed(1)} MiB, ${secs.toFixed(2)} s, dropped ${s.dropped}, errors ${s.errors})`);

  // 3. verification speed (streaming, constant memory).
  const v0 = process.hrtime.bigint();
  const v = await verifyAuditDir(dir);
  const vsecs = Number(process.hrtime.bigint() - v0) / 1e9;
  console.log(`verify: ${Math.round(v.records / vsecs).toLocaleString('en')} records/s (${v.records} records, ok ${v.ok}, ${vsecs.toFixed(2)} s)`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
