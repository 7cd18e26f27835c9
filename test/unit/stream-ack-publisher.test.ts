/**
 * The shipper's publisher encodes its own headers block (ack-publisher.ts):
 * it must be byte for byte what the NATS client would send, and JetStream
 * must act on it — de-duplicate by `Nats-Msg-Id`, refuse a subject another
 * stream captures (`Nats-Expected-Stream`).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { AckPublisher, publishHeaders, type PubAckResult } from '../../src/stream/ack-publisher.ts';
import { eventually, natsSkip, useNatsSuite, type NatsServer } from '../helpers/nats.ts';

const encoded = (h: MsgHdrs): string => Buffer.from((h as unknown as { encode(): Uint8Array }).encode()).toString('latin1');

function clientHeaders(stream: string, id: string): MsgHdrs {
  const h = headers();
  h.set('Nats-Msg-Id', id);
  h.set('Nats-Expected-Stream', stream);
  return h;
}

describe('publish headers', () => {
  test('the headers block is byte for byte what the client encodes, and reads back the same values', () => {
    for (const stream of ['MESHGATE_AUDIT', 'a', 'S-1_x']) {
      const make = publishHeaders(stream);
      for (const id of ['0190c3a1-7b2c-7000-8000-00000000002a', 'x', 'id:with:colons', '~!@#$%^&*()_+{}|<>?']) {
        const h = make(id);
        assert.equal(encoded(h), encoded(clientHeaders(stream, id)), `${stream} / ${id}`);
        assert.equal(h.get('Nats-Msg-Id'), id);
        assert.equal(h.get('Nats-Expected-Stream'), stream);
        assert.deepEqual(h.keys(), ['Nats-Msg-Id', 'Nats-Expected-Stream']);
      }
    }
  });

  test('ids with spaces or non-ASCII go through the client, which trims and encodes them as it always did', () => {
    const make = publishHeaders('S');
    for (const id of [' padded ', 'ünïcode-id', 'a b']) assert.equal(encoded(make(id)), encoded(clientHeaders('S', id)));
  });

  test('an id with a line break is refused, as the client refuses it', () => {
    const make = publishHeaders('S');
    for (const id of ['a\r\nNats-Expected-Stream: OTHER', 'a\nb']) assert.throws(() => make(id), /cannot contain/);
  });
});

describe('AckPublisher against JetStream', { skip: natsSkip() }, () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  useNatsSuite('meshgate-ackpub-', (f) => ({ nats, nc } = f));

  test('a publish is stored under its msg id, a repeat is acknowledged as a duplicate, another stream\'s subject is refused', async () => {
    assert.ok(nats.url);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'PUB_A', subjects: ['puba.>'], duplicate_window: 60_000_000_000 });
    await jsm.streams.add({ name: 'PUB_B', subjects: ['pubb.>'] });
    const acks = new Map<number, PubAckResult>();
    const p = new AckPublisher(nc, 'PUB_A', (token, r) => acks.set(token, r));
    try {
      p.publish('puba.x', new TextEncoder().encode('one'), 'evt-1', 1);
      p.publish('puba.x', new TextEncoder().encode('one again'), 'evt-1', 2);
      p.publish('puba.y', new TextEncoder().encode('two'), 'evt-2', 3);
      p.publish('pubb.x', new TextEncoder().encode('elsewhere'), 'evt-3', 4);
      await eventually(() => acks.size === 4, 'four PubAcks');
      assert.deepEqual(acks.get(1), { ok: true, seq: 1, duplicate: false });
      assert.deepEqual(acks.get(2), { ok: true, seq: 1, duplicate: true });
      assert.deepEqual(acks.get(3), { ok: true, seq: 2, duplicate: false });
      assert.equal(acks.get(4)?.ok, false, 'a subject captured by PUB_B is refused, not stored');
      const stored = await jsm.streams.getMessage('PUB_A', { seq: 2 });
      assert.equal(stored?.header.get('Nats-Msg-Id'), 'evt-2');
      assert.equal(new TextDecoder().decode(stored?.data), 'two');
      assert.equal((await jsm.streams.info('PUB_B')).state.messages, 0);
    } finally {
      p.close();
    }
  });
});
