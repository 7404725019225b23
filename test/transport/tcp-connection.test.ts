/**
 * A TCP connection's write queue, over real sockets on loopback: what it queues is the message as
 * it was written, in bytes of its own.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { TcpConnection } from '../../src/transport/tcp-connection.ts';
import { WriteBudget } from '../../src/transport/write-budget.ts';
import { DEFAULT_STREAM_LIMITS } from '../../src/wire/stream-framer.ts';
import { QUIET_HANDLER } from '../support/quiet-handler.ts';
import { waitUntil } from '../support/raw-peers.ts';

const HOST = '127.0.0.1';

const TIMEOUTS = {
  firstByteMs: 60_000,
  readMessageMs: 60_000,
  idleMs: 60_000,
  writeQueueBytes: 64 << 20,
  writeStallMs: 60_000,
};

/** A server whose first connection is paused (it reads nothing until resumed), and what it got. */
async function pausedPeer(): Promise<{
  server: Server;
  port: number;
  peer: Promise<Socket>;
  received: Buffer[];
}> {
  const received: Buffer[] = [];
  let accept: (s: Socket) => void = () => {};
  const peer = new Promise<Socket>((resolve) => {
    accept = resolve;
  });
  const server = createServer((s) => {
    s.pause();
    s.on('data', (d) => received.push(d));
    accept(s);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, peer, received };
}

async function connected(port: number, outbound: boolean): Promise<TcpConnection> {
  const socket = connect(port, HOST);
  const conn = new TcpConnection(
    1,
    socket,
    0,
    outbound,
    HOST,
    port,
    QUIET_HANDLER,
    DEFAULT_STREAM_LIMITS,
    TIMEOUTS,
    new WriteBudget(1 << 30),
  );
  if (!outbound) await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return conn;
}

describe('TCP connection', () => {
  for (const when of ['behind others in the queue', 'before the connection is established'] as const) {
    test(`a message queued ${when} leaves as it was written, whatever becomes of the buffer it was read from`, async () => {
      const { server, port, peer, received } = await pausedPeer();
      const conn = await connected(port, when === 'before the connection is established');
      try {
        // The kernel's buffers take a few MB: 16 MB leaves most of it in the queue.
        const filler = Buffer.alloc(16 << 20, 0x2e);
        const read = Buffer.from('INVITE sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n');
        const original = Buffer.from(read);
        if (when === 'behind others in the queue') {
          assert.equal(conn.write([filler]), true);
          assert.ok(conn.queuedBytes > 0, 'the filler waits in the queue');
        }
        // A message as a forwarded one is: chunks that are views of the buffer it was read into.
        assert.equal(
          conn.write([read.subarray(0, 10), Buffer.from('X-Added: 1\r\n'), read.subarray(10)]),
          true,
        );
        read.fill(0x21); // that buffer's bytes are written again (a later read into the same arena)
        if (when === 'before the connection is established') assert.equal(conn.write([filler]), true);
        const expected = Buffer.concat([
          original.subarray(0, 10),
          Buffer.from('X-Added: 1\r\n'),
          original.subarray(10),
        ]);
        (await peer).resume();
        const total = filler.length + expected.length;
        assert.ok(await waitUntil(() => received.reduce((n, b) => n + b.length, 0) >= total, 10_000));
        const all = Buffer.concat(received);
        const at = when === 'behind others in the queue' ? filler.length : 0;
        assert.ok(
          all.subarray(at, at + expected.length).equals(expected),
          all.subarray(at, at + expected.length).toString('latin1'),
        );
      } finally {
        conn.close();
        server.close();
      }
    });
  }
});
