/**
 * `audit.sink.nats.auth` against real nats-servers that require it:
 * user/password (inline and from a file), token (inline and from a file) and
 * an NKEY seed file; wrong credentials never connect, and no secret shows up
 * in what meshgate logs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { nkeys } from '@nats-io/transport-node';
import { pino } from 'pino';
import type { NatsConnectSettings } from '../../src/stream/connect-nats.ts';
import { connectNats } from '../../src/stream/connect-nats.ts';
import { natsSkip, startNatsServer, type NatsServer } from '../helpers/nats.ts';

describe('NATS authentication', { skip: natsSkip() }, () => {
  let users: NatsServer;
  let tokens: NatsServer;
  let dir: string;
  const seed = nkeys.createUser();
  const seedText = new TextDecoder().decode(seed.getSeed());

  before(async () => {
    users = await startNatsServer({ config: `authorization { users: [ { user: "shipper", password: "pa55-w0rd" }, { nkey: "${seed.getPublicKey()}" } ] }\n` });
    tokens = await startNatsServer({ config: 'authorization { token: "t0k3n-s3cret" }\n' });
    dir = mkdtempSync(path.join(tmpdir(), 'meshgate-nats-auth-'));
    writeFileSync(path.join(dir, 'password'), 'pa55-w0rd\n', { mode: 0o600 });
    writeFileSync(path.join(dir, 'token'), 't0k3n-s3cret\n', { mode: 0o600 });
    writeFileSync(path.join(dir, 'user.nk'), `${seedText}\n`, { mode: 0o600 });
  });
  after(async () => {
    await users?.close();
    await tokens?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects with `settings` within `ms`; returns whether it worked and what was logged. */
  async function attempt(settings: NatsConnectSettings, ms = 1500): Promise<{ ok: boolean; logged: string }> {
    let logged = '';
    const sink = new Writable({ write(chunk, _enc, cb) { logged += String(chunk); cb(); } });
    const log = pino({ level: 'debug' }, sink);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    try {
      const nc = await connectNats(settings, { name: 'auth-test', log, signal: abort.signal });
      await nc.flush();
      await nc.close();
      return { ok: true, logged };
    } catch {
      return { ok: false, logged };
    } finally {
      clearTimeout(timer);
    }
  }

  test('user and password, inline or from a file, connect', async () => {
    assert.ok((await attempt({ servers: [users.url], auth: { user: 'shipper', password: 'pa55-w0rd' } })).ok);
    assert.ok((await attempt({ servers: [users.url], auth: { user: 'shipper', passwordFile: path.join(dir, 'password') } })).ok);
  });

  test('a token, inline or from a file, connects', async () => {
    assert.ok((await attempt({ servers: [tokens.url], auth: { token: 't0k3n-s3cret' } })).ok);
    assert.ok((await attempt({ servers: [tokens.url], auth: { tokenFile: path.join(dir, 'token') } })).ok);
  });

  test('an NKEY seed file connects by signing the server nonce', async () => {
    assert.ok((await attempt({ servers: [users.url], auth: { nkeySeedFile: path.join(dir, 'user.nk') } })).ok);
  });

  test('wrong or missing credentials never connect, and the secret is not logged', async () => {
    const wrong = await attempt({ servers: [users.url], auth: { user: 'shipper', password: 'not-the-pa55' } });
    assert.equal(wrong.ok, false);
    assert.doesNotMatch(wrong.logged, /not-the-pa55|pa55-w0rd/);
    assert.match(wrong.logged, /NATS not reachable/);
    assert.equal((await attempt({ servers: [tokens.url] })).ok, false);
    const badToken = await attempt({ servers: [tokens.url], auth: { token: 'guess' } });
    assert.equal(badToken.ok, false);
    assert.doesNotMatch(badToken.logged, /guess|t0k3n-s3cret/);
  });

  test('an unreadable secret file is a configuration error at once, not an endless retry', async () => {
    await assert.rejects(connectNats({ servers: [users.url], auth: { nkeySeedFile: path.join(dir, 'missing.nk') } }, { name: 'x' }), /cannot read NATS NKEY seed file .*missing\.nk \(ENOENT\)/);
    writeFileSync(path.join(dir, 'empty'), '\n');
    await assert.rejects(connectNats({ servers: [users.url], auth: { tokenFile: path.join(dir, 'empty') } }, { name: 'x' }), /token file .* is empty/);
  });
});
