import { Buffer } from 'node:buffer';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { frameDatagramAt } from '../wire/frame-datagram.ts';
import { INDEX_STRIDE } from '../wire/header-index.ts';
import { ScanCode } from '../wire/scan-codes.ts';
import { SipMessage } from '../wire/sip-message.ts';
import { DEFAULT_STREAM_LIMITS, type StreamFramerLimits } from '../wire/stream-framer.ts';
import { BatchedUdpSocket, batchedUdpProblem, META, type UdpIo, udpError } from './batched-udp.ts';
import type { Flow } from './flow.ts';
import type { InboundHandler } from './inbound-handler.ts';
import { ipFamily } from './ip-family.ts';
import { DatagramStamps, monotonicToNow, type ReceiveClock } from './receive-clock.ts';
import { socketFd } from './socket-fd.ts';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * dgram resolves the address of every send, even an IP literal, through
 * dns.lookup, which answers a literal on the next tick: one deferral and its
 * closure per message, and the datagram leaves after whatever else is queued.
 * The engine only ever sends to literals (names are resolved before, by the
 * resolver), so a literal is answered at once and the send happens in the
 * handler that forwards it. A name, should one reach here, still goes to DNS.
 */
function lookupLiteral(address: string, family: number | LookupOneOptions, callback: LookupCallback): void {
  const f = ipFamily(address);
  if (f !== 0) callback(null, address, f);
  else dnsLookup(address, family as LookupOneOptions, callback);
}

/** The socket buffers asked for when the configuration does not say (limits.udp_socket_buffer_bytes). */
export const DEFAULT_UDP_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Linux reports a socket buffer at twice the size it granted, the double being its own bookkeeping
 * (socket(7), SO_RCVBUF): halved, the figure compares with what was asked.
 */
const REPORTED_PER_GRANTED = process.platform === 'linux' ? 2 : 1;

/** What the kernel granted a socket's buffers, in the unit they were asked in. */
export interface SocketBuffers {
  receiveBytes: number;
  sendBytes: number;
}

/**
 * A UDP socket of a route: receives datagrams and sends from the same address,
 * so peers see replies come from the address they sent to (a stateless proxy
 * has no other identity). Read in batches by the native socket (`batched`), or
 * one datagram per callback by node:dgram (`dgram`, and where the native module
 * is not built): the handler sees the same calls either way.
 */
export class UdpListener {
  readonly routeIndex: number;
  readonly host: string;
  port: number;
  readonly family: 4 | 6;
  /** node:dgram's socket; null once bound `batched`. */
  socket: Socket | null = null;
  /** The native socket, once bound `batched`. */
  private batched: BatchedUdpSocket | null = null;
  private readonly handler: InboundHandler;
  private readonly limits: StreamFramerLimits;
  private readonly reusePort: boolean;
  private readonly bufferBytes: number;
  private readonly io: UdpIo;
  /**
   * The flow and the message of the datagram being handled, rewritten for each one:
   * a datagram is handled to its end before the next is handed over, so nothing is
   * allocated for them per message. The handler must copy the flow it keeps
   * (a send waiting for a name lookup does) and keep nothing of the message.
   */
  private readonly flow: Flow;
  private readonly message = new SipMessage(Buffer.alloc(0), 0, 0, true, 32);
  /** The kernel's receive stamps, once bound with the `kernel` clock. */
  private stamps = DatagramStamps.off();
  /** Why the `kernel` clock was asked for and not given; null when it was (or was not asked for). */
  clockProblem: string | null = null;
  /** What the kernel granted the socket's buffers, read once bound (null: not known). */
  buffers: SocketBuffers | null = null;
  /** Why `batched` was asked for and not given; null when it was (or was not asked for). */
  ioProblem: string | null = null;

  constructor(
    routeIndex: number,
    host: string,
    port: number,
    family: 4 | 6,
    handler: InboundHandler,
    limits: StreamFramerLimits = DEFAULT_STREAM_LIMITS,
    reusePort = false,
    bufferBytes = DEFAULT_UDP_BUFFER_BYTES,
    io: UdpIo = 'dgram',
  ) {
    this.routeIndex = routeIndex;
    this.reusePort = reusePort;
    this.bufferBytes = bufferBytes;
    this.io = io;
    this.host = host;
    this.port = port;
    this.family = family;
    this.handler = handler;
    this.limits = limits;
    this.flow = {
      transport: 'udp',
      localAddress: host,
      localPort: port,
      remoteAddress: '',
      remotePort: 0,
      connection: null,
    };
  }

  /** How the socket is read, once bound: `batched` unless it fell back (`ioProblem` says why). */
  get ioMode(): UdpIo {
    return this.batched !== null ? 'batched' : 'dgram';
  }

  /** The socket's file descriptor once bound, or -1. */
  get fd(): number {
    if (this.batched !== null) return this.batched.fd;
    return this.socket === null ? -1 : socketFd(this.socket);
  }

  bind(clock: ReceiveClock = 'event_loop'): Promise<void> {
    if (this.io === 'batched') {
      this.ioProblem = batchedUdpProblem();
      if (this.ioProblem === null) return this.bindBatched(clock);
    }
    return this.bindDgram(clock);
  }

  private bindBatched(clock: ReceiveClock): Promise<void> {
    try {
      const socket = BatchedUdpSocket.open(
        this.family,
        this.host,
        this.port,
        { reusePort: this.reusePort, bufferBytes: this.bufferBytes, stamps: clock === 'kernel' },
        this.onBatch,
        this,
      );
      this.batched = socket;
      this.port = socket.port;
      this.buffers = {
        receiveBytes: socket.receiveBufferBytes / REPORTED_PER_GRANTED,
        sendBytes: socket.sendBufferBytes / REPORTED_PER_GRANTED,
      };
      if (clock === 'kernel' && !socket.stamps) this.clockProblem = 'SO_TIMESTAMPNS refused by the kernel';
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private bindDgram(clock: ReceiveClock): Promise<void> {
    const socket = createSocket({
      type: this.family === 6 ? 'udp6' : 'udp4',
      reuseAddr: this.reusePort,
      // One process per core on Linux: the kernel spreads datagrams over the sockets by source 4-tuple.
      reusePort: this.reusePort,
      ipv6Only: this.family === 6,
      recvBufferSize: this.bufferBytes,
      sendBufferSize: this.bufferBytes,
      lookup: lookupLiteral,
    });
    this.socket = socket;
    socket.on('message', (buf: Buffer, rinfo: RemoteInfo) =>
      this.onDatagram(buf, 0, buf.length, rinfo.address, rinfo.port, this.stamps.receivedAt(), null, 0),
    );
    // ICMP port unreachable and friends surface as 'error' on a connected or sending socket: never fatal.
    socket.on('error', () => {});
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.bind(this.port, this.host, () => {
        socket.off('error', onError);
        this.port = socket.address().port;
        try {
          this.buffers = {
            receiveBytes: socket.getRecvBufferSize() / REPORTED_PER_GRANTED,
            sendBytes: socket.getSendBufferSize() / REPORTED_PER_GRANTED,
          };
        } catch {
          // A getsockopt that fails leaves the sizes unknown: nothing to report, and no reason to stop.
        }
        if (clock === 'kernel') {
          const { stamps, problem } = DatagramStamps.open(socket);
          this.stamps = stamps;
          this.clockProblem = problem;
        }
        resolve();
      });
    });
  }

  /**
   * A batch from the native socket (`this` is the listener: no closure per socket). A handler that
   * throws does not cost the datagrams after it: the error is thrown again on the next tick, as
   * node:dgram's callback would have thrown it.
   */
  private onBatch(batch: Buffer, count: number): void {
    const socket = this.batched as BatchedUdpSocket;
    const meta = socket.meta;
    const index = socket.index;
    this.handler.onBatchStart();
    for (let i = 0; i < count; i++) {
      const m = i * META;
      const offset = meta[m];
      const stamp = meta[m + 4];
      try {
        this.onDatagram(
          batch,
          offset,
          offset + meta[m + 1],
          socket.sourceHost(i),
          meta[m + 2],
          stamp >= 0 ? monotonicToNow(stamp) : performance.now(),
          index,
          i * INDEX_STRIDE,
        );
      } catch (err) {
        process.nextTick(rethrow, err);
      }
    }
    this.handler.onBatchEnd();
  }

  /**
   * The datagram buf[start, end): a batch's datagrams are read where they lie in its buffer, with
   * the header index the native socket made of them (at index[indexAt]), when it made one.
   */
  private onDatagram(
    buf: Buffer,
    start: number,
    end: number,
    address: string,
    port: number,
    now: number,
    index: Int32Array | null,
    indexAt: number,
  ): void {
    const flow = this.flow;
    flow.localPort = this.port;
    flow.remoteAddress = address;
    flow.remotePort = port;
    if (end - start > this.limits.maxMessageBytes) {
      this.handler.onLimit(this.routeIndex, 'max_message_bytes');
      this.handler.onMessage(
        this.routeIndex,
        flow,
        { code: ScanCode.MESSAGE_TOO_LARGE, message: null, at: 0 },
        buf.subarray(start, end),
        now,
      );
      return;
    }
    const result = frameDatagramAt(buf, start, end, this.limits, this.message, index, indexAt);
    // The bytes alone only when no message could be made of them (a keepalive, garbage).
    const datagram = result.message === null ? buf.subarray(start, end) : null;
    this.handler.onMessage(this.routeIndex, flow, result, datagram, now);
  }

  /** Send one message as chunks (one sendmsg with an iovec). Errors are reported to `onError`, never thrown. */
  send(chunks: Buffer[], port: number, address: string, onError: (err: Error | null) => void): void {
    if (this.batched !== null) {
      const result = this.batched.send(chunks, port, address);
      // Reported after the caller's turn, as node:dgram reports a send's outcome.
      if (result < 0) process.nextTick(onError, udpError(result, 'send', address, port));
      return;
    }
    if (this.socket === null) {
      process.nextTick(onError, udpError(-constants.errno.EBADF, 'send', address, port));
      return;
    }
    try {
      this.socket.send(chunks, port, address, onError);
    } catch (err) {
      // dgram throws synchronously on a closed socket or a bad address; the caller's count still sees it.
      onError(err as Error);
    }
  }

  close(): Promise<void> {
    if (this.batched !== null) {
      this.batched.close();
      return Promise.resolve();
    }
    const socket = this.socket;
    if (socket === null) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

function rethrow(err: unknown): never {
  throw err;
}
