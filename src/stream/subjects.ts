/**
 * Names on the wire: audit subjects, partition numbers, consumer filters and
 * KV keys. Shippers and analyzer replicas must agree on every one of these,
 * so they live in one place (docs/operations.md "Subjects and partitions").
 *
 *   <subjectPrefix>.<service>.<logId>.p<partition>
 *
 * `logId` names one gateway's audit log (see `logIdOf`), so that a shipper
 * can ask the stream for the last event *it* stored on each subject
 * (`last_by_subj`) after a crash or an outage, whatever other replicas of
 * the same service publish.
 */
import { createHash } from 'node:crypto';

/** Partition of `identity` among `partitions`: FNV-1a (32-bit) over its UTF-8 bytes, mod partitions. */
export function partitionOf(identity: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) throw new TypeError('partitions must be a positive integer');
  let h = 0x811c9dc5;
  const bytes = Buffer.from(identity, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}

/** Subject of one event: `<prefix>.<service>.<logId>.p<partition>`. */
export function auditSubject(prefix: string, service: string, logId: string, partition: number): string {
  return `${prefix}.${service}.${logId}.p${partition}`;
}

/** What one partition's consumer filters on: that partition of every service and log. */
export function partitionFilter(prefix: string, partition: number): string {
  return `${prefix}.*.*.p${partition}`;
}

/** Durable consumer name of a partition. */
export function durableName(durablePrefix: string, partition: number): string {
  return `${durablePrefix}-p${partition}`;
}

/** Alerts subject for `rule` (anything but a subject-token character becomes `_`). */
export function alertSubject(prefix: string, rule: string): string {
  return `${prefix}.${rule.replace(/[^A-Za-z0-9_-]/g, '_') || '_'}`;
}

/**
 * The log id of an audit log: the first 12 hex digits of the hash of its
 * first record. Stable for the life of the log (it survives a lost cursor
 * file and restarts), different for every log.
 */
export function logIdOf(firstRecordHash: string): string {
  if (!/^[0-9a-f]{64}$/.test(firstRecordHash)) throw new TypeError('expected a 64-digit record hash');
  return firstRecordHash.slice(0, 12);
}

/** True when every subject `pattern` could match is also matched by `cover` (NATS `*` and `>` wildcards). */
export function subjectCovers(cover: string, pattern: string): boolean {
  const c = cover.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < c.length; i++) {
    const ct = c[i] as string;
    if (ct === '>') return i < p.length;
    const pt = p[i];
    if (pt === undefined || pt === '>') return false;
    if (ct === '*') continue;
    if (pt === '*' || pt !== ct) return false;
  }
  return c.length === p.length;
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`: values (SPIFFE IDs, IPv6 addresses, subs) are base64url-encoded. */
export function decisionKey(scope: string, value: string, simulated: boolean): string {
  const encoded = Buffer.from(value, 'utf8').toString('base64url') || '_';
  // A KV key is a subject token: past the server's control-line limit (4 KB in
  // all) a write disconnects the client. A long value (a verified token's sub
  // or jti may be kilobytes) is keyed by its SHA-256 instead; the stored
  // decision carries the value, and `scope.h.<hash>` has a token count no
  // plain key has.
  const k = encoded.length <= MAX_ENCODED_VALUE ? `${scope}.${encoded}` : `${scope}.h.${createHash('sha256').update(value, 'utf8').digest('base64url')}`;
  return simulated ? `${k}.sim` : k;
}

/** Longest base64url value kept in a decision key as is. */
const MAX_ENCODED_VALUE = 512;
