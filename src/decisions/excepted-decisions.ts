/**
 * Exceptions on the enforcing side, for decision stores that several writers
 * change without one lock (the NATS KV bucket, src/stream/decisions-kv.ts).
 *
 * With decisions.json the analyzer checks exceptions under the file lock, so
 * a rule's order and a person's exception cannot cross. In a bucket, an
 * analyzer replica may write a decision a moment after someone excepted its
 * rule, before the replica saw the exception. Gateways therefore drop, when
 * they load the bucket, every rule-ordered decision that the analyzer would
 * have suppressed had it seen the exception in time: one ordered at an event
 * time on or after the exception was made and before it expires. A decision
 * ordered before the exception existed stays in force (docs/quarantine.md:
 * "an exception does not lift a decision already in force — delete it too"),
 * and manual decisions are never excepted.
 */
import type { Decision, Exception } from '../analyzer/types.ts';

/**
 * Where an entry was written in the store's own order (a KV revision), when
 * known. Timestamps alone can be backdated — a skewed clock on the host that
 * made the exception, or anyone allowed to write exception keys — and must
 * never lift a decision that was stored before the exception existed.
 */
export type WriteOrder = (entry: Decision | Exception) => number | undefined;

/** The exception that makes `d` unenforceable (see the file comment), if any. */
export function exceptionCovering(d: Decision, exceptions: readonly Exception[], order?: WriteOrder): Exception | undefined {
  if (d.origin === 'manual') return undefined;
  const at = Date.parse(d.createdAt);
  const written = order?.(d);
  return exceptions.find((x) => {
    if (!((x.rule === d.origin || x.rule === '*') && x.scope === d.scope && x.value === d.value)) return false;
    const xWritten = order?.(x);
    if (written !== undefined && xWritten !== undefined && written < xWritten) return false;
    return Date.parse(x.createdAt) <= at && at < Date.parse(x.expiresAt);
  });
}

/** `decisions` without those an exception covers. */
export function withoutExcepted(decisions: readonly Decision[], exceptions: readonly Exception[], order?: WriteOrder): Decision[] {
  if (exceptions.length === 0) return [...decisions];
  return decisions.filter((d) => exceptionCovering(d, exceptions, order) === undefined);
}
