import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { frameDatagram } from '../wire/frame-datagram.ts';
import { ScanCode } from '../wire/scan-codes.ts';
import { SipMessage } from '../wire/sip-message.ts';
import { DEFAULT_STREAM_LIMITS, type StreamFramerLimits } from '../wire/stream-framer.ts';
import type { Flow } from './flow.ts';
import type { InboundHandler } from './inbound-handler.ts';
import { DatagramStamps, type ReceiveClock } from './receive-clock.ts';

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
  const f = isIP(address);
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
 * has no other identity).
 */
export class UdpListener {
  readonly routeIndex: number;
  readonly host: string;
  port: number;
  readonly family: 4 | 6;
  readonly socket: Socket;
  private readonly handler: InboundHandler;
  private readonly limits: StreamFramerLimits;
  /**
   * The flow and the message of the datagram being handled, rewritten for each one:
   * a datagram is handled to its end before the next is read, so nothing is
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

  constructor(
    routeIndex: number,
    host: string,
    port: number,
    family: 4 | 6,
    handler: InboundHandler,
    limits: StreamFramerLimits = DEFAULT_STREAM_LIMITS,
    reusePort = false,
    bufferBytes = DEFAULT_UDP_BUFFER_BYTES,
  ) {
    this.routeIndex = routeIndex;
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
    this.socket = createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      reuseAddr: reusePort,
      // One process per core on Linux: the kernel spreads datagrams over the sockets by source 4-tuple.
      reusePort,
      ipv6Only: family === 6,
      recvBufferSize: bufferBytes,
      sendBufferSize: bufferBytes,
      lookup: lookupLiteral,
    });
    this.socket.on('message', (buf: Buffer, rinfo: RemoteInfo) => this.onDatagram(buf, rinfo));
    // ICMP port unreachable and friends surface as 'error' on a connected or sending socket: never fatal.
    this.socket.on('error', () => {});
  }

  bind(clock: ReceiveClock = 'event_loop'): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.socket.once('error', onError);
      this.socket.bind(this.port, this.host, () => {
        this.socket.off('error', onError);
        this.port = this.socket.address().port;
        try {
          this.buffers = {
            receiveBytes: this.socket.getRecvBufferSize() / REPORTED_PER_GRANTED,
            sendBytes: this.socket.getSendBufferSize() / REPORTED_PER_GRANTED,
          };
        } catch {
          // A getsockopt that fails leaves the sizes unknown: nothing to report, and no reason to stop.
        }
        if (clock === 'kernel') {
          const { stamps, problem } = DatagramStamps.open(this.socket);
          this.stamps = stamps;
          this.clockProblem = problem;
        }
        resolve();
      });
    });
  }

  private onDatagram(buf: Buffer, rinfo: RemoteInfo): void {
    const now = this.stamps.receivedAt();
    const flow = this.flow;
    flow.localPort = this.port;
    flow.remoteAddress = rinfo.address;
    flow.remotePort = rinfo.port;
    if (buf.length > this.limits.maxMessageBytes) {
      this.handler.onLimit(this.routeIndex, 'max_message_bytes');
      this.handler.onMessage(
        this.routeIndex,
        flow,
        { code: ScanCode.MESSAGE_TOO_LARGE, message: null, at: 0 },
        buf,
        now,
      );
      return;
    }
    this.handler.onMessage(this.routeIndex, flow, frameDatagram(buf, this.limits, this.message), buf, now);
  }

  /** Send one message as chunks (one sendmsg with an iovec). Errors are reported to `onError`, never thrown. */
  send(chunks: Buffer[], port: number, address: string, onError: (err: Error | null) => void): void {
    try {
      this.socket.send(chunks, port, address, onError);
    } catch (err) {
      // dgram throws synchronously on a closed socket or a bad address; the caller's count still sees it.
      onError(err as Error);
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
