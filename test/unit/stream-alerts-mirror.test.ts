/**
 * The alerts mirror on a real nats-server: the replicas' alert emissions
 * land in the gateway's alerts.jsonl exactly once — across restarts, a
 * cursor that lags the file (a crash between append and cursor save), a lost
 * cursor, and re-published emissions — and what is not an alert is skipped.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ALERTS_FILE, readAlertLines } from '../../src/analyzer/sinks/alerts-log.ts';
import type { Alert } from '../../src/analyzer/types.ts';
import { ALERTS_MIRROR_CURSOR, asAlert, startAlertsMirror } from '../../src/stream/alerts-mirror.ts';
import { ensureAlertsStream } from '../../src/stream/analyzer-outputs.ts';
import { alertSubject } from '../../src/stream/subjects.ts';
import { natsSkip, useNatsSuite } from '../helpers/nats.ts';

function alert(i: number, count = 5): Alert {
  const t = Date.UTC(2026, 0, 1, 0, 0, i);
  return {
    v: 1, id: `a-${i}`, rule: i % 2 ? 'brute-force' : 'probing', severity: 'high', title: 'test', scope: 'spiffe',
    value: `spiffe://mesh.local/ns/default/sa/svc-${i}`, firstSeen: new Date(t).toISOString(), lastSeen: new Date(t + count).toISOString(),
    count, evidence: [`e-${i}`], summary: `${count} events`,
  };
}

test('only well-formed alerts of the right subject and size are mirrored, with unknown members dropped', () => {
  const a = alert(1);
  const subject = alertSubject('mg.alerts', a.rule);
  const enc = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));
  assert.deepEqual(asAlert(enc(a), subject, 'mg.alerts'), a);
  assert.deepEqual(asAlert(enc({ ...a, injected: 'x'.repeat(100) }), subject, 'mg.alerts'), a, 'unknown members are not copied');
  assert.equal(asAlert(enc(a), alertSubject('mg.alerts', 'other-rule'), 'mg.alerts'), undefined, 'a rule published on another rule\'s subject');
  assert.equal(asAlert(enc({ ...a, summary: 'x'.repeat(70_000) }), subject, 'mg.alerts'), undefined, 'over 64 KB');
  assert.equal(asAlert(enc({ ...a, severity: 'urgent' }), subject, 'mg.alerts'), undefined);
  assert.equal(asAlert(enc({ ...a, count: -1 }), subject, 'mg.alerts'), undefined);
  assert.equal(asAlert(enc({ ...a, evidence: [7] }), subject, 'mg.alerts'), undefined);
  assert.equal(asAlert(Buffer.from('not json'), subject, 'mg.alerts'), undefined);
});

describe('alerts mirror', { skip: natsSkip() }, () => {
  let nc: NatsConnection;
  let root: string;
  let n = 0;
  useNatsSuite('meshgate-alerts-mirror-', (f) => ({ nc, root } = f));

  async function setup() {
    n++;
    const stream = `ALERTS_M${n}`;
    const prefix = `m${n}.alerts`;
    await ensureAlertsStream(await jetstreamManager(nc), stream, prefix);
    const dir = path.join(root, `state-${n}`);
    mkdirSync(dir, { recursive: true });
    const js = jetstream(nc);
    let last = 0;
    const publish = async (a: Alert): Promise<number> => {
      const ack = await js.publish(alertSubject(prefix, a.rule), JSON.stringify(a), { msgID: `${a.id}:${a.count}`, expect: { streamName: stream } });
      last = ack.seq;
      return ack.seq;
    };
    const mirror = () => startAlertsMirror({ connection: nc, stream, subjectPrefix: prefix, dir, saveEveryMs: 0 });
    const lines = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const l of readAlertLines(path.join(dir, ALERTS_FILE))) out.push(`${l.alert.id}:${l.alert.count}`);
      return out;
    };
    return { stream, prefix, dir, publish, mirror, lines, last: () => last };
  }

  test('every emission of the alerts stream is appended to alerts.jsonl once, in stream order', async () => {
    const s = await setup();
    for (let i = 0; i < 20; i++) await s.publish(alert(i));
    await s.publish(alert(3, 9)); // an update of a-3: a new emission
    const m = await s.mirror();
    await m.waitFor(s.last());
    // Live: published while the mirror runs.
    await s.publish(alert(20));
    await m.waitFor(s.last());
    await m.close();
    const got = await s.lines();
    assert.deepEqual(got, [...Array.from({ length: 20 }, (_, i) => `a-${i}:5`), 'a-3:9', 'a-20:5']);
    assert.equal(m.stats().mirrored, 22);
    assert.equal(m.status().ready, true);
  });

  test('a restart resumes from the cursor: nothing twice, nothing missed', async () => {
    const s = await setup();
    for (let i = 0; i < 5; i++) await s.publish(alert(i));
    const m1 = await s.mirror();
    await m1.waitFor(s.last());
    await m1.close();
    for (let i = 5; i < 8; i++) await s.publish(alert(i));
    const m2 = await s.mirror();
    await m2.waitFor(s.last());
    await m2.close();
    assert.deepEqual(await s.lines(), Array.from({ length: 8 }, (_, i) => `a-${i}:5`));
    assert.equal(m2.stats().mirrored, 3);
    assert.equal(m2.stats().duplicates, 0);
  });

  test('alerts written after the saved cursor (a crash before the cursor save) are not written again', async () => {
    const s = await setup();
    for (let i = 0; i < 4; i++) await s.publish(alert(i));
    const m1 = await s.mirror();
    await m1.waitFor(s.last());
    await m1.close();
    // The cursor as it was before the last two alerts were saved: they are in the file, the cursor lags.
    const cursorFile = path.join(s.dir, ALERTS_MIRROR_CURSOR);
    const cursor = JSON.parse((await import('node:fs')).readFileSync(cursorFile, 'utf8')) as { seq: number; alertsOffset: number };
    let offset = 0;
    for await (const l of readAlertLines(path.join(s.dir, ALERTS_FILE))) if (l.alert.id === 'a-2') offset = l.offset;
    writeFileSync(cursorFile, JSON.stringify({ ...cursor, seq: cursor.seq - 2, alertsOffset: offset }));
    await s.publish(alert(4));
    const m2 = await s.mirror();
    await m2.waitFor(s.last());
    await m2.close();
    assert.deepEqual(await s.lines(), ['a-0:5', 'a-1:5', 'a-2:5', 'a-3:5', 'a-4:5']);
    assert.equal(m2.stats().duplicates, 2);
  });

  test('a lost or damaged cursor is rebuilt from the stream without duplicating the file', async () => {
    const s = await setup();
    for (let i = 0; i < 3; i++) await s.publish(alert(i));
    const m1 = await s.mirror();
    await m1.waitFor(s.last());
    await m1.close();
    rmSync(path.join(s.dir, ALERTS_MIRROR_CURSOR));
    await s.publish(alert(3));
    const m2 = await s.mirror();
    await m2.waitFor(s.last());
    await m2.close();
    writeFileSync(path.join(s.dir, ALERTS_MIRROR_CURSOR), '{"v":1,"seq":"not a number"');
    const m3 = await s.mirror();
    await m3.waitFor(s.last());
    await m3.close();
    assert.deepEqual(await s.lines(), ['a-0:5', 'a-1:5', 'a-2:5', 'a-3:5']);
    assert.equal(m3.stats().mirrored, 0);
    assert.equal(m3.stats().duplicates, 4);
  });

  test('an emission re-published after the duplicate window and a message that is not an alert are skipped', async () => {
    const s = await setup();
    const js = jetstream(nc);
    await s.publish(alert(0));
    // A different message id, the same emission (what a replay outside the duplicate window would store).
    await js.publish(alertSubject(s.prefix, 'probing'), JSON.stringify(alert(0)), { msgID: 'other-id' });
    await js.publish(alertSubject(s.prefix, 'probing'), '{"id":"a-x","rule":"probing"}');
    await js.publish(alertSubject(s.prefix, 'probing'), 'not json');
    const seq = await s.publish(alert(1));
    const m = await s.mirror();
    await m.waitFor(seq);
    await m.close();
    assert.deepEqual(await s.lines(), ['a-0:5', 'a-1:5']);
    assert.equal(m.stats().invalid, 2);
    assert.equal(m.stats().duplicates, 1);
  });

  test('a stream deleted and created again while the mirror runs is mirrored from its start, without duplicates', async () => {
    const s = await setup();
    for (let i = 0; i < 3; i++) await s.publish(alert(i));
    const m = await startAlertsMirror({ connection: nc, stream: s.stream, subjectPrefix: s.prefix, dir: s.dir, saveEveryMs: 0, recreateCheckMs: 100 });
    try {
      await m.waitFor(3);
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(s.stream);
      await ensureAlertsStream(jsm, s.stream, s.prefix);
      await s.publish(alert(1)); // already in alerts.jsonl: recognised, not appended again
      for (let i = 3; i < 6; i++) await s.publish(alert(i));
      const deadline = Date.now() + 15_000;
      while ((await s.lines()).length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await s.lines(), ['a-0:5', 'a-1:5', 'a-2:5', 'a-3:5', 'a-4:5', 'a-5:5']);
    } finally {
      await m.close();
    }
  });

  test('a mirror started before NATS is reachable stops cleanly and keeps alerts.jsonl intact', async () => {
    const dir = path.join(root, 'unreachable');
    mkdirSync(dir, { recursive: true });
    const never = new Promise<NatsConnection>(() => {});
    const m = await startAlertsMirror({ connection: never, stream: 'NOPE', subjectPrefix: 'nope.alerts', dir });
    assert.equal(m.status().ready, true, 'an alerts outage never takes the gateway out of service');
    await m.close();
    await assert.rejects(m.waitFor(1, 50), /did not reach seq 1/);
  });
});
