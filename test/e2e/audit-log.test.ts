/**
 * The audit log a running gateway writes: exactly one event per request
 * (refusals and failed handshakes included), never a token, and a chain that
 * `meshgate audit verify` accepts as written and rejects after each kind of
 * tampering. The verifier's own corner cases live in test/unit/audit-*.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { connect } from 'node:tls';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { AuditRecord } from '../../src/audit/event.ts';
import { rawStatus, startHarness, type Harness } from '../helpers/gateway.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/meshgate.js');

let h: Harness;
let logText = '';
let events: AuditRecord[] = [];
let requestsMade = 0;
const tokens: string[] = [];

/** A handshake attempt; resolves when the gateway has answered it one way or the other. */
function handshake(opts: { cert?: string; key?: string }): Promise<void> {
  return new Promise((done) => {
    const s = connect({ host: '127.0.0.1', port: h.gateway.address.port, ca: h.pki.ca.certPem, servername: 'localhost', ...opts });
    // TLS 1.3: the client finishes first; the server's refusal arrives as an alert afterwards.
    s.on('secureConnect', () => s.write('GET /orders HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => done());
  });
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}` },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    p.on('error', fail);
    p.on('close', (code) => done({ code, stdout, stderr }));
  });
}

before(async () => {
  const sink = new Writable({ write(c: Buffer, _e, cb) { logText += c.toString(); cb(); } });
  h = await startHarness({
    log: pino({ level: 'trace' }, sink),
    // Small segments so the log the gateway writes spans several files.
    patch: (cfg) => ({ ...cfg, audit: { ...cfg.audit, segmentBytes: 4096 } }),
  });
  const alice = await h.pki.mintToken({ sub: 'alice' });
  const root = await h.pki.mintToken({ sub: 'root', jti: 'root-token-1' });
  const expired = await h.pki.mintToken({ sub: 'alice', ttlSeconds: -600 });
  const [head, payload, sig] = alice.split('.') as [string, string, string];
  const forged = `${head}.${payload}.${sig.slice(0, -4)}${sig.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
  tokens.push(alice, root, expired, forged);

  const send = async (path: string, o: Parameters<Harness['request']>[1], status: number): Promise<void> => {
    requestsMade++;
    const r = await h.request(path, o);
    assert.equal(r.status, status, `${path} → ${status}: ${r.text}`);
  };
  await send('/orders', { token: alice }, 200);
  await send('/orders/1', { token: alice }, 200);
  await send('/admin/x', { token: alice }, 403);
  await send('/admin/x', { token: root }, 200);
  await send('/orders/secret', { token: alice }, 403);
  await send('/orders', {}, 401);
  await send('/orders', { token: expired }, 401);
  await send('/orders', { token: forged }, 401);
  await send('/upload', { token: alice, method: 'POST', body: 'x'.repeat(1000) }, 200);
  await send('/orders', { token: alice, headers: { 'x-big': 'a'.repeat(20_000) } }, 431);
  // The upstream fails mid-request: logged as a warning with its cause.
  h.setUpstream((req) => { req.socket.destroy(); });
  await send('/orders', { token: alice }, 502);
  requestsMade++;
  assert.equal(rawStatus(await h.raw(`GET /admin%2fx HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${root}\r\nConnection: close\r\n\r\n`)), 400);
  requestsMade++;
  await handshake({});
  requestsMade++;
  const other = h.pki.adversarial().otherCa;
  await handshake({ cert: other.certPem, key: other.keyPem });
  await h.gateway.stop();
  events = await h.auditEvents();
});
after(() => h.close());

test('the log has exactly one event per request made, refused requests and failed handshakes included', () => {
  assert.equal(events.length, requestsMade);
  assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'event ids are unique');
  assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
  const handshakes = events.filter((e) => e.type === 'tls_handshake');
  assert.deepEqual(handshakes.map((e) => e.reason).sort(), ['peer_cert_missing', 'peer_cert_untrusted']);
  for (const e of handshakes) assert.equal(e.status, 0);
  const reasons = events.filter((e) => e.type === 'request').map((e) => `${e.status} ${e.reason}`).sort();
  assert.deepEqual(reasons, [
    '200 allowed', '200 allowed', '200 allowed', '200 allowed',
    '400 path_encoded_slash', '401 jwt_bad_signature', '401 jwt_expired', '401 jwt_missing',
    '403 authz_deny_rule', '403 authz_no_matching_rule', '431 headers_too_large', '502 upstream_error',
  ].sort());
});

test('events record the token by hash and jti, never the token', () => {
  const rootEvent = events.find((e) => e.principal?.sub === 'root');
  assert.ok(rootEvent);
  assert.equal(rootEvent.jti, 'root-token-1');
  assert.match(rootEvent.tokenHash ?? '', /^[A-Za-z0-9_-]{43}$|^[0-9a-f]{64}$/);
});

test('no audit file and no log line contains a token or a token signature', () => {
  // Everything under the audit dir: segments, HEAD.json and whatever the analyzer keeps beside them.
  const files = readdirSync(h.config.audit.dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
  assert.ok(files.filter((f) => /audit-\d+\.jsonl$/.test(f)).length >= 2, `the log spans several segments: ${files.join(', ')}`);
  const audit = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  assert.ok(logText.length > 0, 'the gateway logged something');
  assert.match(logText, /request failed/, 'the upstream failure was logged');
  for (const t of tokens) {
    const sig = t.split('.')[2] as string;
    assert.equal(audit.includes(t), false, 'token in the audit log');
    assert.equal(audit.includes(sig), false, 'token signature in the audit log');
    assert.equal(logText.includes(t), false, 'token in the log');
    assert.equal(logText.includes(sig), false, 'token signature in the log');
  }
});

test('meshgate audit verify exits 0 on the log the gateway wrote', async () => {
  const r = await runCli(['audit', 'verify', h.config.audit.dir]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^ok: ${events.length} records in \\d+ segments`));
});

/** The segment files of `dir`, oldest first, as arrays of lines (without the trailing newline). */
function segments(dir: string): { file: string; lines: string[] }[] {
  return readdirSync(dir).filter((f) => /^audit-\d+\.jsonl$/.test(f)).sort()
    .map((f) => ({ file: join(dir, f), lines: readFileSync(join(dir, f), 'utf8').replace(/\n$/, '').split('\n') }));
}
function write(seg: { file: string; lines: string[] }): void {
  writeFileSync(seg.file, seg.lines.length ? `${seg.lines.join('\n')}\n` : '');
}

const TAMPERING: readonly { name: string; kind: string; apply: (dir: string) => void }[] = [
  {
    name: 'a denied request edited into an allowed one', kind: 'modified',
    apply: (dir) => {
      const seg = segments(dir)[0]!;
      const i = seg.lines.findIndex((l) => l.includes('"decision":"deny"'));
      assert.ok(i >= 0);
      seg.lines[i] = seg.lines[i]!.replace('"decision":"deny"', '"decision":"allow"');
      write(seg);
    },
  },
  {
    name: 'a record deleted', kind: 'deleted',
    apply: (dir) => { const seg = segments(dir)[0]!; seg.lines.splice(1, 1); write(seg); },
  },
  {
    name: 'two records swapped', kind: 'reordered',
    apply: (dir) => {
      const seg = segments(dir)[0]!;
      [seg.lines[1], seg.lines[2]] = [seg.lines[2]!, seg.lines[1]!];
      write(seg);
    },
  },
  {
    name: 'a forged record inserted', kind: 'inserted',
    apply: (dir) => {
      const seg = segments(dir)[0]!;
      seg.lines.splice(2, 0, seg.lines[1]!.replace(/"sub":"[^"]*"/, '"sub":"root"'));
      write(seg);
    },
  },
  {
    name: 'the tail truncated', kind: 'truncated',
    apply: (dir) => { const segs = segments(dir); const last = segs.at(-1)!; last.lines.pop(); write(last); },
  },
  {
    name: 'a whole segment removed', kind: 'missing_segment',
    apply: (dir) => { unlinkSync(segments(dir)[1]!.file); },
  },
];

for (const t of TAMPERING) {
  test(`meshgate audit verify exits 1 and reports ${t.kind} after ${t.name}`, async () => {
    const copy = mkdtempSync(join(tmpdir(), 'meshgate-audit-tamper-'));
    try {
      cpSync(h.config.audit.dir, copy, { recursive: true });
      t.apply(copy);
      const r = await runCli(['audit', 'verify', copy]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^FAILED: ${t.kind} at audit-\\d+\\.jsonl`));
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
}
