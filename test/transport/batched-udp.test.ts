/**
 * The batched UDP socket (native/udp-io.c) under a route's listener, over real sockets on
 * loopback: what node:dgram gave the handler, it gives too (bytes, source, stamps, order), and
 * what node:dgram reported (a port in use, a send the kernel refuses) it reports the same way.
 */
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { channels } from '../../src/observe/channels.ts';
import type { ForwardedEvent } from '../../src/observe/records.ts';
import { batchedUdpProblem } from '../../src/transport/batched-udp.ts';
import type { Flow } from '../../src/transport/flow.ts';
import type { InboundHandler } from '../../src/transport/inbound-handler.ts';
import { UdpListener } from '../../src/transport/udp-listener.ts';
import type { ScanResult } from '../../src/wire/scan.ts';
import { CountingPeer, collect, HOST, sipRequest, startProxy } from '../reliability/support/harness.ts';
import { waitUntil } from '../support/raw-peers.ts';
import { freePort } from '../support/sipp.ts';

interface Received {
  bytes: Buffer;
  address: string;
  port: number;
  at: number;
  handledAt: number;
}

/** A handler that keeps a copy of every datagram and where it came from; `throwOn` makes one call throw. */
class Keeper implements InboundHandler {
  readonly received: Received[] = [];
  throwOn = -1;
  /** Batches begun and ended, and datagrams handed over outside one (there must be none). */
  batchStarts = 0;
  batchEnds = 0;
  outsideBatch = 0;
  onMessage(_route: number, flow: Flow, result: ScanResult, datagram: Buffer | null, at: number): void {
    if (this.batchStarts === this.batchEnds) this.outsideBatch++;
    // A datagram that makes a message lies in the batch's buffer: the message says where.
    const msg = result.message;
    const bytes = datagram ?? (msg === null ? Buffer.alloc(0) : msg.buf.subarray(msg.start, msg.end));
    this.received.push({
      bytes: Buffer.from(bytes),
      address: flow.remoteAddress,
      port: flow.remotePort,
      at,
      handledAt: performance.now(),
    });
    if (this.received.length - 1 === this.throwOn) throw new Error('handler failed on purpose');
  }
  onBatchStart(): void {
    this.batchStarts++;
  }
  onBatchEnd(): void {
    this.batchEnds++;
  }
  onStreamBroken(): void {}
  onLimit(): void {}
  onConnectionFailed(): void {}
}

async function dgramSocket(host = HOST): Promise<Socket> {
  const family = host.includes(':') ? 6 : 4;
  const socket = createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    lookup: (address, _options, cb) => cb(null, address, family),
  });
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, host, () => resolve()));
  return socket;
}

async function batchedListener(
  handler: InboundHandler,
  host = HOST,
  opts: { port?: number; reusePort?: boolean; clock?: 'kernel' | 'event_loop' } = {},
): Promise<UdpListener> {
  const listener = new UdpListener(
    0,
    host,
    opts.port ?? 0,
    host.includes(':') ? 6 : 4,
    handler,
    undefined,
    opts.reusePort ?? false,
    undefined,
    'batched',
  );
  await listener.bind(opts.clock ?? 'event_loop');
  return listener;
}

function holdLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('batched UDP socket', () => {
  test('the native module is built (npm ci builds it; without it UDP goes through node:dgram)', () => {
    assert.equal(batchedUdpProblem(), null);
  });

  for (const host of [HOST, '::1']) {
    test(`datagrams arrive byte for byte with their source, the empty and the largest too (${host})`, async () => {
      const keeper = new Keeper();
      const listener = await batchedListener(keeper, host);
      const sender = await dgramSocket(host);
      try {
        assert.equal(listener.ioMode, 'batched');
        const largest = host === HOST ? 65_507 : 65_527;
        const sent = [
          Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n\r\n'),
          Buffer.alloc(0),
          Buffer.alloc(largest, 0x41),
          Buffer.from([0, 255, 13, 10, 128]),
        ];
        for (const b of sent) sender.send(b, listener.port, host);
        assert.ok(await waitUntil(() => keeper.received.length === sent.length, 2000));
        const { address, port } = sender.address();
        for (let i = 0; i < sent.length; i++) {
          assert.ok(keeper.received[i].bytes.equals(sent[i]), `datagram ${i}`);
          assert.equal(keeper.received[i].address, address);
          assert.equal(keeper.received[i].port, port);
        }
      } finally {
        sender.close();
        await listener.close();
      }
    });
  }

  test('datagrams that pile up while the loop is held are all handed over, in order, timed from their arrival', async () => {
    const keeper = new Keeper();
    const listener = await batchedListener(keeper, HOST, { clock: 'kernel' });
    // Two sources, interleaved: the address text is sent only when the host changes.
    const a = await dgramSocket(HOST);
    const b = await dgramSocket(HOST);
    try {
      await sleep(50); // the kernel turns stamping on in deferred work
      const count = 300;
      const heldMs = 40;
      for (let i = 0; i < count; i++) (i % 2 === 0 ? a : b).send(Buffer.from(String(i)), listener.port, HOST);
      const sentBy = performance.now();
      holdLoop(heldMs);
      assert.ok(await waitUntil(() => keeper.received.length === count, 3000), `${keeper.received.length}`);
      for (let i = 0; i < count; i++) {
        const r = keeper.received[i];
        assert.equal(r.bytes.toString(), String(i));
        assert.equal(r.port, (i % 2 === 0 ? a : b).address().port);
        assert.equal(r.address, HOST);
        // Stamped when it arrived, before the loop was held, on performance.now()'s scale.
        assert.ok(r.at <= sentBy + 0.05, `datagram ${i} at ${r.at - sentBy} ms after the sends`);
        assert.ok(r.handledAt - r.at >= heldMs - 1, `datagram ${i} aged ${r.handledAt - r.at} ms`);
      }
      assert.equal(listener.clockProblem, null);
      // Every datagram was handed over inside a batch, and the 300 came in fewer batches than datagrams.
      assert.equal(keeper.outsideBatch, 0);
      assert.equal(keeper.batchStarts, keeper.batchEnds);
      assert.ok(keeper.batchStarts < count, `${keeper.batchStarts} batches`);
    } finally {
      a.close();
      b.close();
      await listener.close();
    }
  });

  test('bytes handed over are never written again: views kept across many wake-ups and arenas still hold their datagrams', async () => {
    // Batches fill an arena one after the other (native/udp-io.c): what a handler keeps of one
    // (a send waiting for a connection, a retransmission) must not change under later ones.
    const kept: { view: Buffer; copy: Buffer }[] = [];
    const keeper = new Keeper();
    const keep = keeper.onMessage.bind(keeper);
    keeper.onMessage = (route, flow, result, datagram, at) => {
      const msg = result.message;
      const view = datagram ?? (msg === null ? Buffer.alloc(0) : msg.buf.subarray(msg.start, msg.end));
      kept.push({ view, copy: Buffer.from(view) });
      keep(route, flow, result, datagram, at);
    };
    const listener = await batchedListener(keeper);
    const sender = await dgramSocket();
    try {
      // ~1.2 MB in 1200 datagrams, some in wake-ups of their own and some piled up (arenas of
      // 256 KiB). Each datagram's bytes are its own index, repeated.
      const sizes: number[] = [];
      for (let i = 0; i < 1200; i++) sizes.push(i === 300 ? 65_000 : 700 + ((i * 37) % 600));
      for (let i = 0; i < sizes.length; i++) {
        sender.send(Buffer.alloc(sizes[i], i % 251), listener.port, HOST);
        if (i % 50 === 0) await sleep(5);
      }
      assert.ok(await waitUntil(() => kept.length === sizes.length, 5000), `${kept.length}`);
      await sleep(20);
      const arenas = new Set(kept.map((k) => k.view.buffer));
      assert.ok(arenas.size >= 4, `${arenas.size} arenas`);
      for (let i = 0; i < kept.length; i++) {
        assert.equal(kept[i].view.length, sizes[i], `datagram ${i}`);
        assert.ok(kept[i].view.equals(kept[i].copy), `datagram ${i} changed after it was handed over`);
        assert.ok(kept[i].copy.equals(Buffer.alloc(sizes[i], i % 251)), `datagram ${i}`);
      }
    } finally {
      sender.close();
      await listener.close();
    }
  });

  test('a handler that throws costs no other datagram of its batch; the error is thrown on as node:dgram would', async () => {
    const keeper = new Keeper();
    keeper.throwOn = 2;
    const listener = await batchedListener(keeper);
    const sender = await dgramSocket();
    // node:test fails the test on an uncaught exception: catch this one alone.
    const installed = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const thrown: Error[] = [];
    process.on('uncaughtException', (err) => thrown.push(err));
    try {
      for (let i = 0; i < 10; i++) sender.send(Buffer.from(String(i)), listener.port, HOST);
      holdLoop(20); // all ten in one batch
      assert.ok(await waitUntil(() => keeper.received.length === 10 && thrown.length === 1, 2000));
      assert.equal(thrown[0].message, 'handler failed on purpose');
      assert.equal(keeper.batchStarts, keeper.batchEnds, 'the batch ends even when a handler threw');
      assert.deepEqual(
        keeper.received.map((r) => r.bytes.toString()),
        ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      );
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const l of installed) process.on('uncaughtException', l);
      sender.close();
      await listener.close();
    }
  });

  for (const host of [HOST, '::1']) {
    test(`a send gathers its chunks into one datagram, past 64 chunks too (${host})`, async () => {
      const listener = await batchedListener(new Keeper(), host);
      const peer = await dgramSocket(host);
      const got: { bytes: Buffer; rinfo: RemoteInfo }[] = [];
      peer.on('message', (bytes, rinfo) => got.push({ bytes, rinfo }));
      const errors: (Error | null)[] = [];
      try {
        const few = [Buffer.from('INVITE '), Buffer.from('sip:x '), Buffer.from('SIP/2.0\r\n')];
        const many = Array.from({ length: 100 }, (_, i) => Buffer.from(`${i};`));
        listener.send(few, peer.address().port, host, (err) => errors.push(err));
        listener.send(many, peer.address().port, host, (err) => errors.push(err));
        assert.ok(await waitUntil(() => got.length === 2, 2000));
        assert.equal(got[0].bytes.toString(), 'INVITE sip:x SIP/2.0\r\n');
        assert.ok(got[1].bytes.equals(Buffer.concat(many)));
        // Replies leave from the listening address and port.
        assert.equal(got[0].rinfo.port, listener.port);
        assert.equal(got[0].rinfo.address, host);
        await sleep(10);
        assert.deepEqual(errors, []);
      } finally {
        peer.close();
        await listener.close();
      }
    });
  }

  test('a send the kernel refuses, or one after close, is reported on the next tick, never thrown', async () => {
    const listener = await batchedListener(new Keeper());
    const errors: NodeJS.ErrnoException[] = [];
    const report = (err: Error | null) => {
      if (err !== null) errors.push(err);
    };
    listener.send([Buffer.alloc(70_000)], 5060, HOST, report);
    listener.send([Buffer.from('x')], 5060, 'not-an-address', report);
    assert.equal(errors.length, 0, 'reported after the caller’s turn');
    await listener.close();
    listener.send([Buffer.from('x')], 5060, HOST, report);
    await sleep(5);
    assert.deepEqual(
      errors.map((e) => [e.code, e.syscall]),
      [
        ['EMSGSIZE', 'send'],
        ['EINVAL', 'send'],
        ['EBADF', 'send'],
      ],
    );
    assert.match(errors[0].message, /^send EMSGSIZE 127\.0\.0\.1:5060$/);
  });

  test('a port in use is refused as node:dgram refuses it; with reusePort two sockets share it', async () => {
    const port = await freePort();
    const first = await batchedListener(new Keeper(), HOST, { port });
    await assert.rejects(batchedListener(new Keeper(), HOST, { port }), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EADDRINUSE');
      assert.equal(err.syscall, 'bind');
      assert.equal(err.message, `bind EADDRINUSE ${HOST}:${port}`);
      return true;
    });
    await first.close();
    const a = await batchedListener(new Keeper(), HOST, { port, reusePort: true });
    const b = await batchedListener(new Keeper(), HOST, { port, reusePort: true });
    assert.equal(a.port, port);
    assert.equal(b.port, port);
    await a.close();
    await b.close();
  });

  test('after close nothing more is handed over, and the port can be bound again', async () => {
    const keeper = new Keeper();
    const listener = await batchedListener(keeper);
    const port = listener.port;
    const sender = await dgramSocket();
    try {
      sender.send(Buffer.from('before'), port, HOST);
      assert.ok(await waitUntil(() => keeper.received.length === 1, 2000));
      await listener.close();
      sender.send(Buffer.from('after'), port, HOST);
      await sleep(50);
      assert.equal(keeper.received.length, 1);
      const again = await batchedListener(keeper, HOST, { port });
      sender.send(Buffer.from('again'), port, HOST);
      assert.ok(await waitUntil(() => keeper.received.length === 2, 2000));
      assert.equal(keeper.received[1].bytes.toString(), 'again');
      await again.close();
    } finally {
      sender.close();
    }
  });

  describe('through sipspan', () => {
    let upstream: CountingPeer;
    let caller: Socket;

    before(async () => {
      upstream = await CountingPeer.start({ tcp: false });
      upstream.keep = 10;
      caller = await dgramSocket();
    });

    after(async () => {
      caller.close();
      await upstream.close();
    });

    test('udp_io batched and dgram forward the same bytes, and /api/status says which ran', async () => {
      const forwarded: Buffer[] = [];
      for (const udpIo of ['batched', 'dgram'] as const) {
        const proxy = await startProxy({
          routes: [
            { name: 'io', upstream: `udp://${HOST}:${upstream.port}`, record_route: false, tcp: false },
          ],
          udpIo,
        });
        const events = collect<ForwardedEvent>(channels.messageForwarded);
        try {
          assert.deepEqual(proxy.app.describe().udp_io, { mode: udpIo });
          const before = upstream.kept.length;
          caller.send(
            sipRequest({
              method: 'OPTIONS',
              viaPort: caller.address().port,
              branch: 'z9hG4bK-io',
              callId: 'io-1',
            }),
            proxy.ports[0]!,
            HOST,
          );
          assert.ok(await waitUntil(() => upstream.kept.length === before + 1, 2000));
          assert.ok(await waitUntil(() => events.items.length === 1, 2000));
          // The proxy's own port (its Via) and the trace ids are the run's own: taken out, the two must be equal.
          const text = upstream.kept[before]
            .toString('latin1')
            .replaceAll(`:${proxy.ports[0]}`, ':PORT')
            .replace(/[0-9a-f]{32}/g, 'TRACE')
            .replace(/-[0-9a-f]{16}-/, '-SPAN-');
          forwarded.push(Buffer.from(text, 'latin1'));
        } finally {
          events.stop();
          await proxy.stop();
        }
      }
      assert.ok(forwarded[0].equals(forwarded[1]), `${forwarded[0]}\n---\n${forwarded[1]}`);
    });
  });
});
