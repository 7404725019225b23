import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import { type HeldSend, UdpOutbox } from '../../src/proxy/udp-outbox.ts';
import { UdpListener } from '../../src/transport/udp-listener.ts';
import { QUIET_HANDLER } from '../support/quiet-handler.ts';

/** A sending listener and a receiving socket on loopback. */
async function openPair(): Promise<{ sender: UdpListener; receiver: Socket; port: number }> {
  const receiver = createSocket('udp4');
  receiver.bind(0, '127.0.0.1');
  await once(receiver, 'listening');
  const sender = new UdpListener(0, '127.0.0.1', 0, 4, QUIET_HANDLER);
  await sender.bind();
  return { sender, receiver, port: receiver.address().port };
}

test("a turn's first send goes at once; the later ones leave in order in the check phase, timed as they leave", async () => {
  const { sender, receiver, port } = await openPair();
  const got: string[] = [];
  receiver.on('message', (b) => got.push(b.toString('latin1')));
  const sent: { method: string; at: number }[] = [];
  // No bound on the hold here: how long this test takes between sends must not matter.
  const outbox = new UdpOutbox(
    (send: HeldSend, at: number) => sent.push({ method: send.method, at }),
    60_000,
  );
  const errors: (Error | null)[] = [];
  const onError = (err: Error | null) => {
    if (err !== null) errors.push(err);
  };
  try {
    // One turn: the first slot is refused (the caller sends now), the next two are held.
    const before = performance.now();
    assert.equal(outbox.slot(), null);
    sender.send([Buffer.from('first')], port, '127.0.0.1', onError);
    for (const method of ['second', 'third']) {
      const held = outbox.slot();
      assert.ok(held !== null);
      held.socket = sender;
      held.chunks = [Buffer.from(method.slice(0, 3)), Buffer.from(method.slice(3))];
      held.port = port;
      held.address = '127.0.0.1';
      held.onError = onError;
      held.method = method;
    }
    assert.equal(outbox.size, 2);
    assert.equal(sent.length, 0, 'nothing held leaves before the check phase');
    await new Promise((r) => setImmediate(r));
    assert.equal(outbox.size, 0);
    assert.deepEqual(
      sent.map((s) => s.method),
      ['second', 'third'],
    );
    assert.ok(sent[0].at >= before && sent[1].at >= sent[0].at, 'each timed when it left');
    for (let i = 0; i < 50 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ['first', 'second', 'third']);
    // The next turn starts afresh: its first send goes at once again.
    assert.equal(outbox.slot(), null);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(errors, []);
  } finally {
    await sender.close();
    receiver.close();
  }
});

test("a batch of reads is a turn: its held sends leave at the batch's end, none waits for the check phase", async () => {
  const { sender, receiver, port } = await openPair();
  const got: string[] = [];
  receiver.on('message', (b) => got.push(b.toString('latin1')));
  const sent: string[] = [];
  const outbox = new UdpOutbox((send: HeldSend) => sent.push(send.method), 60_000);
  let checkPhaseRan = false;
  setImmediate(() => {
    checkPhaseRan = true;
  });
  try {
    outbox.batchStart();
    assert.equal(outbox.slot(), null, "the batch's first send goes at once");
    sender.send([Buffer.from('first')], port, '127.0.0.1', () => {});
    const held = outbox.slot();
    assert.ok(held !== null);
    held.socket = sender;
    held.chunks = [Buffer.from('second')];
    held.port = port;
    held.address = '127.0.0.1';
    held.onError = () => {};
    held.method = 'second';
    assert.deepEqual(sent, []);
    outbox.batchEnd();
    assert.deepEqual(sent, ['second'], 'sent when the batch ended, in the same turn');
    assert.equal(checkPhaseRan, false);
    assert.equal(outbox.slot(), null, 'the turn ended with the batch: the next send goes at once');
    for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ['first', 'second']);
  } finally {
    await sender.close();
    receiver.close();
  }
});

test('a send held past the bound leaves with the next one, before the check phase', async () => {
  const { sender, receiver, port } = await openPair();
  const sent: string[] = [];
  const outbox = new UdpOutbox((send: HeldSend) => sent.push(send.method), 0);
  try {
    assert.equal(outbox.slot(), null, "the turn's first goes at once");
    const held = outbox.slot();
    assert.ok(held !== null);
    held.socket = sender;
    held.chunks = [Buffer.from('held')];
    held.port = port;
    held.address = '127.0.0.1';
    held.method = 'held';
    // The bound (0 ms) has passed: the held one leaves now, and the caller sends this one after it.
    assert.equal(outbox.slot(), null);
    assert.deepEqual(sent, ['held']);
    assert.equal(outbox.size, 0);
    await new Promise((r) => setImmediate(r));
  } finally {
    await sender.close();
    receiver.close();
  }
});
