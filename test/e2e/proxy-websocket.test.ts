/**
 * WebSocket upgrades pass the same pipeline as plain requests: an allowed
 * upgrade is spliced to the upstream's WebSocket server, a refused one gets
 * the same status and reason an HTTP request would.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { startHarness, type Harness } from '../helpers/gateway.ts';

let h: Harness;
let alice: string;
const wss = new WebSocketServer({ noServer: true });
const upgrades: { url: string; headers: IncomingHttpHeaders }[] = [];

before(async () => {
  wss.on('connection', (ws) => ws.on('message', (data: Buffer) => ws.send(`echo:${data.toString()}`)));
  h = await startHarness({
    upstreamUpgrade: (req, socket, head) => {
      upgrades.push({ url: req.url ?? '', headers: req.headers });
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
  });
  alice = await h.pki.mintToken({ sub: 'alice' });
});
after(async () => {
  await h.close();
  await new Promise((r) => wss.close(r));
});

function connectWs(path: string, token?: string): WebSocket {
  return new WebSocket(h.url(path).replace(/^https:/, 'wss:'), {
    ...h.pki.tlsClientOptions(),
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
}

/** Resolves with the refusal's status and problem+json body, or rejects if the upgrade succeeds. */
function refusal(ws: WebSocket): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    ws.on('open', () => { ws.close(); reject(new Error('upgrade unexpectedly succeeded')); });
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }); ws.terminate(); });
    });
  });
}

test('an allowed upgrade reaches the upstream WebSocket server and messages echo both ways', async () => {
  upgrades.length = 0;
  const ws = connectWs('/ws', alice);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const replies: string[] = [];
  for (const msg of ['hello', 'x'.repeat(100_000)]) {
    const reply = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
    ws.send(msg);
    replies.push(await reply);
  }
  assert.equal(replies[0], 'echo:hello');
  assert.equal(replies[1], `echo:${'x'.repeat(100_000)}`);
  await new Promise<void>((resolve) => { ws.once('close', () => resolve()); ws.close(); });
  assert.equal(upgrades.length, 1);
  assert.equal(upgrades[0]?.url, '/ws');
  assert.equal(upgrades[0]?.headers['x-meshgate-principal'], 'alice');
  assert.equal(upgrades[0]?.headers['x-meshgate-peer'], h.pki.client.spiffeIds[0]);
});

const REFUSED: readonly { name: string; path: string; token: boolean; status: number; reason: string }[] = [
  { name: 'an upgrade without a token', path: '/ws', token: false, status: 401, reason: 'jwt_missing' },
  { name: 'an upgrade on a path the policy denies', path: '/admin/ws', token: true, status: 403, reason: 'authz_no_matching_rule' },
  { name: 'an upgrade whose path normalizes to a denied one', path: '/public/%2e%2e/admin/ws', token: true, status: 403, reason: 'authz_no_matching_rule' },
  { name: 'an upgrade with an encoded slash', path: '/ws%2f..', token: true, status: 400, reason: 'path_encoded_slash' },
];

for (const c of REFUSED) {
  test(`${c.name} is refused with ${c.status} ${c.reason} and never reaches the upstream`, async () => {
    upgrades.length = 0;
    const r = await refusal(connectWs(c.path, c.token ? alice : undefined));
    assert.equal(r.status, c.status);
    assert.equal(r.body.reason, c.reason);
    assert.equal(upgrades.length, 0);
  });
}

test('each upgrade is audited once: the tunnel with status 101 and its bytes, each refusal with its reason', async () => {
  await h.gateway.stop();
  const events = await h.auditEvents();
  assert.equal(events.length, 1 + REFUSED.length);
  const tunnel = events.find((e) => e.status === 101);
  assert.ok(tunnel);
  assert.equal(tunnel.path, '/ws');
  assert.equal(tunnel.decision, 'allow');
  assert.ok(tunnel.bytesIn > 100_000 && tunnel.bytesOut > 100_000, `bytes in/out ${tunnel.bytesIn}/${tunnel.bytesOut}`);
  for (const c of REFUSED) assert.ok(events.some((e) => e.reason === c.reason && e.status === c.status), `an event for ${c.name}`);
});
