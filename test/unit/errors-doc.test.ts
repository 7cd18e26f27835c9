import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Errors, type ErrorSpec } from '../../src/core/errors.ts';

interface DocRow {
  readonly code: string;
  readonly status: number;
  readonly reason: string;
  readonly meaning: string;
}

/** Rows of the catalogue table: | `CODE` | status | `reason` | meaning | */
function docRows(): DocRow[] {
  const md = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows: DocRow[] = [];
  for (const line of md.split('\n')) {
    if (!line.startsWith('| `MG_ERR_')) continue;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    assert.equal(cells.length, 4, `malformed row: ${line}`);
    const [code, status, reason, meaning] = cells as [string, string, string, string];
    assert.match(code, /^`[^`]+`$/, line);
    assert.match(reason, /^`[^`]+`$/, line);
    assert.match(status, /^\d+$/, line);
    rows.push({ code: code.slice(1, -1), status: Number(status), reason: reason.slice(1, -1), meaning });
  }
  return rows;
}

const specs: ErrorSpec[] = Object.values(Errors);

test('the docs table parses and has at least one row', () => {
  assert.ok(docRows().length > 0);
});

test('every error code in src/core/errors.ts is documented in docs/errors.md', () => {
  const documented = new Set(docRows().map((r) => r.code));
  const missing = specs.filter((s) => !documented.has(s.code)).map((s) => s.code);
  assert.deepEqual(missing, [], `add these codes to docs/errors.md: ${missing.join(', ')}`);
});

test('every code in docs/errors.md exists in src/core/errors.ts, once', () => {
  const rows = docRows();
  const known = new Set(specs.map((s) => s.code));
  assert.deepEqual(rows.filter((r) => !known.has(r.code)).map((r) => r.code), [], 'docs/errors.md lists codes that do not exist');
  const codes = rows.map((r) => r.code);
  assert.deepEqual(codes.filter((c, i) => codes.indexOf(c) !== i), [], 'docs/errors.md lists a code twice');
});

test('documented status and reason equal the code catalogue, and every row has a meaning', () => {
  const byCode = new Map(specs.map((s) => [s.code, s]));
  for (const row of docRows()) {
    const spec = byCode.get(row.code);
    if (!spec) continue;
    assert.equal(row.status, spec.status, `${row.code}: status in docs/errors.md differs from the code`);
    assert.equal(row.reason, spec.reason, `${row.code}: reason in docs/errors.md differs from the code`);
    assert.ok(row.meaning.length > 10, `${row.code}: meaning is missing`);
  }
});

test('codes and reasons are unique', () => {
  const codes = specs.map((s) => s.code);
  const reasons = specs.map((s) => s.reason);
  assert.deepEqual(codes.filter((c, i) => codes.indexOf(c) !== i), [], 'duplicate codes');
  assert.deepEqual(reasons.filter((r, i) => reasons.indexOf(r) !== i), [], 'duplicate reasons');
});

test('codes match MG_ERR_[A-Z_]+ and agree with their catalogue key; reasons are snake_case', () => {
  for (const [key, s] of Object.entries(Errors)) {
    assert.match(s.code, /^MG_ERR_[A-Z_]+$/, key);
    assert.equal(s.code, `MG_ERR_${key}`, `${key}: the key and the code must name the same error`);
    assert.match(s.reason, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, `${key}: reason ${s.reason}`);
    assert.notEqual(s.reason, 'allowed', `${key}: "allowed" is reserved for forwarded requests`);
  }
});

test('statuses are 0 (handshake refused) or an HTTP error status', () => {
  for (const s of specs) {
    assert.ok(s.status === 0 || (s.status >= 400 && s.status <= 599), `${s.code}: status ${s.status}`);
    if (s.status === 0) assert.match(s.code, /^MG_ERR_TLS_/, `${s.code}: only TLS handshake errors have no HTTP response`);
  }
});
