import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventTable, fitWidths, groupTable, sanitizeCell, truncateCell } from '../../src/audit/query/table.ts';
import { rec } from './audit-query-helpers.ts';

test('fitWidths keeps natural widths when they fit and water-fills when they do not', () => {
  assert.deepEqual(fitWidths([10, 20, 5], 40), [10, 20, 5]);
  // 5 fits an equal share of 30; 10 and 40 share the remaining 25.
  assert.deepEqual(fitWidths([10, 40, 5], 30), [10, 15, 5]);
  assert.deepEqual(fitWidths([50, 50, 50], 31), [11, 10, 10]);
});

test('fitWidths never exceeds the available width while one character per column fits', () => {
  for (let avail = 3; avail < 60; avail++) {
    const w = fitWidths([30, 45, 22], avail);
    assert.ok(w.reduce((a, b) => a + b, 0) <= avail, `${avail}: ${w}`);
    assert.ok(w.every((x) => x >= 1));
  }
});

test('truncateCell cuts with an ellipsis and leaves short cells alone', () => {
  assert.equal(truncateCell('abcdef', 4), 'abc…');
  assert.equal(truncateCell('abc', 4), 'abc');
  assert.equal(truncateCell('abc', 1), '…');
});

test('sanitizeCell escapes C0, C1, DEL and bidi controls and keeps other text', () => {
  assert.equal(sanitizeCell('a\u001b[31mb\u0007\u009b\u007f'), 'a\\u001b[31mb\\u0007\\u009b\\u007f');
  assert.equal(sanitizeCell('x\u202ey\u2066z'), 'x\\u202ey\\u2066z');
  assert.equal(sanitizeCell('/orders/é😀'), '/orders/é😀');
});

test('an event table on a narrow terminal keeps every line within its width (80 columns and up)', () => {
  for (const width of [80, 100, 120]) {
    let out = '';
    const t = new EventTable((s) => { out += s; }, { width });
    t.add(rec(0, { path: `/very/${'long/'.repeat(30)}path`, principal: null, peer: { spiffeId: `spiffe://mesh.local/${'ns/'.repeat(20)}x`, fingerprint: 'ab' } }));
    t.add(rec(1));
    t.settle();
    for (const l of out.split('\n').slice(0, -1)) assert.ok(l.length <= width, `${width}: ${l.length} ${l}`);
  }
});

test('an event table without rows settles to a header with default widths; later rows print at once', () => {
  let out = '';
  const t = new EventTable((s) => { out += s; });
  assert.equal(t.settled, false);
  t.settle();
  assert.match(out, /^TIME {22}DECISION {2}STATUS {2}METHOD {2}PATH {30}IDENTITY/);
  t.add(rec(0, { status: 0, method: null, path: null, route: null, type: 'tls_handshake' }));
  assert.match(out.split('\n')[1]!, /^2026-01-01T12:00:00\.000Z  allow {10}- {2}- {7}- /);
});

test('the group table shows count, share and key, with (none) for records without the field', () => {
  const s = groupTable({ groupBy: 'route', total: 4, groups: [{ key: 'a', count: 3 }, { key: null, count: 1 }], overflow: 0 });
  assert.equal(s, 'COUNT  SHARE  ROUTE\n    3  75.0%  a\n    1  25.0%  (none)\n');
});
