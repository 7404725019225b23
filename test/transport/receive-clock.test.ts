/**
 * The kernel receive clock, over real sockets on loopback: a datagram that waits in its
 * socket while the event loop is busy is timed from its arrival, so its wait counts; with
 * the event loop clock the same wait is left out.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { channels } from '../../src/observe/channels.ts';
import type { ForwardedEvent } from '../../src/observe/records.ts';
import { DatagramStamps } from '../../src/transport/receive-clock.ts';
import { CountingPeer, collect, HOST, sipRequest, startProxy } from '../reliability/support/harness.ts';
import { waitUntil } from '../support/raw-peers.ts';

/** The loop held this long after a datagram is sent: the wait the clock must see. */
const HELD_MS = 40;

/** A bound socket whose sends leave at once (a literal needs no lookup), so a datagram is in flight before the loop is held. */
async function boundSocket(host = HOST): Promise<Socket> {
  const family = host.includes(':') ? 6 : 4;
  const socket = createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    lookup: (address, _options, cb) => cb(null, address, family),
  });
  await new Promise<void>((resolve) => socket.bind(0, host, () => resolve()));
  return socket;
}

function holdLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('receive clock', () => {
  let sender: Socket;

  before(async () => {
    sender = await boundSocket();
  });

  after(() => sender.close());

  test('the native helper is built (npm ci builds it; without it UDP is timed from the event loop)', async () => {
    const socket = await boundSocket();
    const { stamps, problem } = DatagramStamps.open(socket);
    socket.close();
    assert.equal(problem, null);
    assert.equal(stamps.kernel, true);
  });

  for (const host of [HOST, '::1']) {
    test(`a datagram that waited while the loop was held is aged by that wait (${host})`, async () => {
      const from = host === HOST ? sender : await boundSocket(host);
      const socket = await boundSocket(host);
      const { stamps } = DatagramStamps.open(socket);
      // The kernel turns stamping on in deferred work: datagrams of the next moments are stamped.
      await sleep(50);
      const ages: number[] = [];
      socket.on('message', () => ages.push(performance.now() - stamps.receivedAt()));
      for (let i = 0; i < 3; i++) from.send(Buffer.from(`d${i}`), socket.address().port, host);
      holdLoop(HELD_MS);
      assert.ok(await waitUntil(() => ages.length === 3, 2000));
      socket.close();
      if (from !== sender) from.close();
      for (const age of ages) assert.ok(age >= HELD_MS && age < HELD_MS + 1000, `age ${age} ms`);
    });
  }

  test('a datagram is timed between its send and its handler, on performance.now()’s scale', async () => {
    const socket = await boundSocket();
    const { stamps } = DatagramStamps.open(socket);
    await sleep(50);
    const sentAt: number[] = [];
    const bounds: [number, number][] = [];
    socket.on('message', (m: Buffer) => {
      const handled = performance.now();
      bounds.push([stamps.receivedAt() - sentAt[Number(m.toString())], handled - stamps.receivedAt()]);
    });
    for (let i = 0; i < 200; i++) {
      sentAt.push(performance.now());
      sender.send(Buffer.from(String(i)), socket.address().port, HOST);
      if (i % 20 === 0) await sleep(1);
    }
    assert.ok(await waitUntil(() => bounds.length === 200, 2000));
    socket.close();
    // Within the few µs the two clocks' origins are known to: never before the send, never after the handler.
    for (const [afterSend, beforeHandler] of bounds) {
      assert.ok(afterSend > -0.02, `received ${afterSend} ms after its send`);
      assert.ok(beforeHandler > -0.02, `received ${beforeHandler} ms before its handler`);
    }
  });

  test('the event loop clock times a datagram when JavaScript has it', () => {
    const before = performance.now();
    const at = DatagramStamps.off().receivedAt();
    assert.ok(at >= before && at <= performance.now());
    assert.equal(DatagramStamps.off().kernel, false);
  });

  for (const clock of ['kernel', 'event_loop'] as const) {
    test(`through sipspan with the ${clock} clock, a request's proxy time ${clock === 'kernel' ? 'includes' : 'leaves out'} the wait`, async () => {
      const upstream = await CountingPeer.start({ tcp: false });
      const proxy = await startProxy({
        routes: [
          { name: 'held', upstream: `udp://${HOST}:${upstream.port}`, record_route: false, tcp: false },
        ],
        receiveClock: clock,
      });
      const forwarded = collect<ForwardedEvent>(channels.messageForwarded);
      try {
        assert.equal((proxy.app.describe().receive_clock as { udp: string }).udp, clock);
        await sleep(50);
        const request = sipRequest({
          method: 'OPTIONS',
          viaPort: sender.address().port,
          branch: `z9hG4bK-held-${clock}`,
          callId: `held-${clock}`,
        });
        sender.send(request, proxy.ports[0]!, HOST);
        holdLoop(HELD_MS);
        assert.ok(await waitUntil(() => upstream.udpCount === 1 && forwarded.count() === 1, 2000));
        const seconds = forwarded.items[0]!.proxySeconds;
        if (clock === 'kernel') assert.ok(seconds >= HELD_MS / 1000, `proxy time ${seconds} s`);
        else assert.ok(seconds < HELD_MS / 2000, `proxy time ${seconds} s`);
      } finally {
        forwarded.stop();
        await proxy.stop();
        await upstream.close();
      }
    });
  }
});
