import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Decision, Exception } from '../../src/analyzer/types.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import { readDecisionsFile } from '../../src/decisions/decisions-file.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshgate-decisions-cli-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function run(argv: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const io: CliIO = { stdout, stderr, env, cwd };
  const code = await main(argv, io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

const CONFIG = `
upstream: { url: "http://127.0.0.1:8080" }
tls: { cert: c.crt, key: c.key, clientCa: ca.crt, trustDomains: [mesh.local] }
authz: { model: m.conf, policy: p.csv }
routes: [{ match: { pathPrefix: / }, auth: none }]
audit: { dir: audit }
`;

test('decisions add quarantines a value for a duration; list shows it; delete unbans it', async (t) => {
  const root = tmp(t);
  const add = await run(['decisions', 'add', '--dir', 'state', '--scope', 'spiffe', '--value', 'spiffe://mesh.local/ns/shop/sa/cart', '--duration', '2h', '--reason', 'incident 7', '--json'], root);
  assert.equal(add.code, 0, add.stderr);
  const d = JSON.parse(add.stdout) as Decision;
  assert.equal(d.scope, 'spiffe');
  assert.equal(d.origin, 'manual');
  assert.equal(d.reason, 'incident 7');
  assert.equal(d.simulated, false);
  assert.ok(Math.abs(Date.parse(d.expiresAt) - Date.parse(d.createdAt) - 7_200_000) < 1);
  const table = await run(['decisions', 'list', '--dir', 'state'], root);
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^ID\s+SCOPE\s+VALUE\s+MODE\s+EXPIRES/);
  assert.match(table.stdout, new RegExp(`${d.id}\\s+spiffe\\s+spiffe://mesh.local/ns/shop/sa/cart\\s+enforced\\s+in 2h`));
  const del = await run(['decisions', 'delete', d.id, '--dir', 'state'], root);
  assert.equal(del.code, 0, del.stderr);
  assert.match(del.stdout, /deleted decision d-/);
  const json = await run(['decisions', 'list', '--dir', 'state', '--json'], root);
  assert.deepEqual(JSON.parse(json.stdout), { decisions: [], exceptions: [] });
  const again = await run(['decisions', 'delete', d.id, '--dir', 'state'], root);
  assert.equal(again.code, 1, 'deleting an unknown id fails with 1');
  assert.match(again.stderr, /no decision or exception/);
});

test('decisions except records a false-positive exception; list --all includes expired entries', async (t) => {
  const root = tmp(t);
  const r = await run(['decisions', 'except', '--dir', 'state', '--rule', 'brute-force', '--scope', 'sub', '--value', 'batch-job', '--duration', '7d', '--note', 'nightly import', '--json'], root);
  assert.equal(r.code, 0, r.stderr);
  const x = JSON.parse(r.stdout) as Exception;
  assert.equal(x.rule, 'brute-force');
  assert.equal(x.note, 'nightly import');
  const doc = await readDecisionsFile(path.join(root, 'state', 'decisions.json'));
  assert.deepEqual(doc.exceptions, [x]);
  const list = await run(['decisions', 'list', '--dir', 'state'], root);
  assert.match(list.stdout, /exceptions:\nID\s+RULE/);
  assert.match(list.stdout, /brute-force\s+sub\s+batch-job\s+in 7d\s+nightly import/);
  // An expired decision is hidden by default and shown with --all.
  fs.writeFileSync(path.join(root, 'state', 'decisions.json'), JSON.stringify({ v: 1, exceptions: [], decisions: [{
    id: 'd-old', scope: 'ip', value: '10.0.0.1', origin: 'brute', reason: 'rule brute', createdAt: '2020-01-01T00:00:00.000Z', expiresAt: '2020-01-01T01:00:00.000Z', simulated: false, offence: 1,
  }] }));
  assert.match((await run(['decisions', 'list', '--dir', 'state'], root)).stdout, /^no decisions\n$/);
  assert.match((await run(['decisions', 'list', '--dir', 'state', '--all'], root)).stdout, /d-old\s+ip\s+10\.0\.0\.1\s+enforced\s+\d+d ago/);
});

test('values are checked per scope and cert fingerprints are normalized to lowercase hex', async (t) => {
  const root = tmp(t);
  const bad: [string, string, RegExp][] = [
    ['ip', '10.0.0.300', /not an IP address/],
    ['spiffe', 'cart', /not a SPIFFE ID/],
    ['cert', 'abc', /SHA-256 fingerprint/],
    ['host', 'x', /--scope must be one of spiffe\|sub\|jti\|cert\|ip/],
  ];
  for (const [scope, value, msg] of bad) {
    const r = await run(['decisions', 'add', '--dir', 'state', '--scope', scope, '--value', value, '--duration', '1h'], root);
    assert.equal(r.code, 2, `${scope}=${value}`);
    assert.match(r.stderr, msg);
  }
  const fp = 'AB:'.repeat(31) + 'AB';
  const r = await run(['decisions', 'add', '--dir', 'state', '--scope', 'cert', '--value', fp, '--duration', '1h', '--simulated', '--json'], root);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout) as Decision;
  assert.equal(d.value, 'ab'.repeat(32));
  assert.equal(d.simulated, true);
});

test('usage errors exit 2: missing duration, bad duration, no state dir, unknown subcommand', async (t) => {
  const root = tmp(t);
  const cases: [string[], RegExp][] = [
    [['decisions', 'add', '--dir', 's', '--scope', 'ip', '--value', '10.0.0.1'], /--duration is required/],
    [['decisions', 'add', '--dir', 's', '--scope', 'ip', '--value', '10.0.0.1', '--duration', '90'], /not a positive duration/],
    [['decisions', 'list'], /no analyzer state dir: pass --dir STATE or -c meshgate.yaml/],
    [['decisions', 'ban'], /unknown decisions command 'ban'/],
    [['decisions', 'delete', '--dir', 's'], /exactly one ID/],
    [['decisions', 'list', '--dir', 's', '--bogus'], /bogus/],
  ];
  for (const [argv, msg] of cases) {
    const r = await run(argv, root);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.stderr, msg, argv.join(' '));
  }
  assert.equal((await run(['decisions'], root)).code, 2);
});

test('-c meshgate.yaml finds the state dir at analyzer.dir (default <audit.dir>/analyzer); a bad config exits 2', async (t) => {
  const root = tmp(t);
  fs.writeFileSync(path.join(root, 'meshgate.yaml'), CONFIG);
  const r = await run(['decisions', 'add', '-c', 'meshgate.yaml', '--scope', 'sub', '--value', 'eve', '--duration', '10m'], root);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(root, 'audit', 'analyzer', 'decisions.json')));
  // Without -c, ./meshgate.yaml is used.
  const list = await run(['decisions', 'list', '--json'], root);
  assert.equal((JSON.parse(list.stdout) as { decisions: Decision[] }).decisions[0]?.value, 'eve');
  fs.writeFileSync(path.join(root, 'broken.yaml'), 'listen: [');
  const bad = await run(['decisions', 'list', '-c', 'broken.yaml'], root);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid configuration broken\.yaml/);
});

test('a corrupt decisions.json is reported with exit 2 and left untouched', async (t) => {
  const root = tmp(t);
  fs.mkdirSync(path.join(root, 'state'));
  fs.writeFileSync(path.join(root, 'state', 'decisions.json'), '{"v":1');
  const r = await run(['decisions', 'add', '--dir', 'state', '--scope', 'ip', '--value', '10.0.0.1', '--duration', '1h'], root);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /decisions\.json: not valid JSON/);
  assert.equal(fs.readFileSync(path.join(root, 'state', 'decisions.json'), 'utf8'), '{"v":1');
});

test('decisions --help and each subcommand --help print the usage and exit 0', async (t) => {
  const root = tmp(t);
  for (const argv of [['decisions', '--help'], ['decisions', 'add', '--help'], ['decisions', 'except', '-h']]) {
    const r = await run(argv, root);
    assert.equal(r.code, 0, argv.join(' '));
    assert.match(r.stdout, /meshgate decisions add --scope SCOPE --value V --duration D/);
  }
});
