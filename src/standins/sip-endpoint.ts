import { Buffer } from 'node:buffer';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { connect, createServer, type Server, type Socket as TcpSocket } from 'node:net';
import type { Endpoint } from '../config/endpoint.ts';
import { advertisedAddress } from '../transport/interface-address.ts';
import { frameDatagram } from '../wire/frame-datagram.ts';
import { HeaderId } from '../wire/header-names.ts';
import { readCSeq } from '../wire/read-cseq.ts';
import { readTag } from '../wire/read-name-addr.ts';
import { readVia } from '../wire/read-via.ts';
import { ScanCode } from '../wire/scan-codes.ts';
import type { SipMessage } from '../wire/sip-message.ts';
import { FrameKind, StreamFramer } from '../wire/stream-framer.ts';
import { hostPort } from './sip-text.ts';

/** Where a stand-in received a message from, and how to answer on the same path. */
export interface Peer {
  transport: 'udp' | 'tcp';
  address: string;
  port: number;
  socket: TcpSocket | null;
}

/** A parsed view of a message for the stand-ins (they are test peers: clarity over speed). */
export interface Parsed {
  msg: SipMessage;
  method: string;
  status: number;
  callId: string;
  cseq: number;
  cseqMethod: string;
  fromTag: string | null;
  toTag: string | null;
  branch: string | null;
  /** Raw lines of a header by id, in order. */
  lines(id: HeaderId): string[];
  value(id: HeaderId): string | null;
  header(name: string): string | null;
  body: Buffer;
}

export function parse(buf: Buffer): Parsed | null {
  const r = frameDatagram(buf);
  if (r.code !== ScanCode.OK || r.message === null) return null;
  return describe(r.message);
}

export function describe(msg: SipMessage): Parsed | null {
  const buf = msg.buf;
  const cseqI = msg.fieldIndex(HeaderId.CSEQ);
  const cs = cseqI === -1 ? null : readCSeq(buf, msg.fieldValueStart(cseqI), msg.fieldValueEnd(cseqI));
  const cid = msg.value(HeaderId.CALL_ID);
  if (cs === null || cid === null || !msg.has(HeaderId.VIA)) return null;
  const viaI = msg.fieldIndex(HeaderId.VIA);
  const via = readVia(buf, msg.fieldValueStart(viaI), msg.fieldValueEnd(viaI));
  const fromI = msg.fieldIndex(HeaderId.FROM);
  const toI = msg.fieldIndex(HeaderId.TO);
  return {
    msg,
    method: msg.isRequest ? msg.method : cs.method,
    status: msg.isRequest ? 0 : msg.statusCode,
    callId: cid,
    cseq: cs.seq,
    cseqMethod: cs.method,
    fromTag: fromI === -1 ? null : readTag(buf, msg.fieldValueStart(fromI), msg.fieldValueEnd(fromI)),
    toTag: toI === -1 ? null : readTag(buf, msg.fieldValueStart(toI), msg.fieldValueEnd(toI)),
    branch: via?.branch ?? null,
    lines(id: HeaderId): string[] {
      const out: string[] = [];
      for (let i = 0; i < msg.fieldCount; i++) {
        if (msg.fieldId(i) === id)
          out.push(trimEol(buf.toString('latin1', msg.fieldLineStart(i), msg.fieldLineEnd(i))));
      }
      return out;
    },
    value(id: HeaderId): string | null {
      return msg.value(id);
    },
    header(name: string): string | null {
      const i = msg.findByName(name.toLowerCase());
      return i === -1 ? null : buf.toString('latin1', msg.fieldValueStart(i), msg.fieldValueEnd(i));
    },
    body: buf.subarray(msg.bodyStart, msg.end),
  };
}

function trimEol(s: string): string {
  return s.replace(/\r?\n$/, '');
}

export type MessageHandler = (p: Parsed, peer: Peer, raw: Buffer) => void;

/**
 * The sockets of a stand-in: UDP and/or TCP on one address, both delivering
 * parsed messages to one handler and able to send to a peer.
 */
export class SipEndpoint {
  readonly host: string;
  /** What SIP text names for this endpoint: the host, or for a wildcard bind an address peers can reach. */
  readonly advertisedHost: string;
  port: number;
  private udp: Socket | null = null;
  private tcpServer: Server | null = null;
  private readonly tcpPeers = new Map<string, TcpSocket>();
  private handler: MessageHandler = () => {};
  /** Every message received, raw (for tests that compare bytes); off unless asked for. */
  readonly received: Buffer[] | null;

  constructor(host: string, port: number, keepReceived = false) {
    this.host = host;
    this.advertisedHost = advertisedAddress(host);
    this.port = port;
    this.received = keepReceived ? [] : null;
  }

  /** host:port as Via sent-by and URIs name this endpoint. */
  get sentBy(): string {
    return hostPort(this.advertisedHost, this.port);
  }

  /**
   * A Contact for `user` here. Over TCP it says so: a URI with no transport parameter means UDP to the
   * next hop (RFC 3263 §4.1), and the far side may have no UDP to send on.
   */
  contact(user: string, transport: 'udp' | 'tcp'): string {
    return `<sip:${user}@${this.sentBy}${transport === 'tcp' ? ';transport=tcp' : ''}>`;
  }

  onMessage(h: MessageHandler): void {
    this.handler = h;
  }

  async start(transports: readonly ('udp' | 'tcp')[] = ['udp', 'tcp']): Promise<void> {
    if (transports.includes('udp')) {
      const udp = createSocket({ type: this.host.includes(':') ? 'udp6' : 'udp4' });
      udp.on('message', (buf: Buffer, r: RemoteInfo) =>
        this.deliver(buf, { transport: 'udp', address: r.address, port: r.port, socket: null }),
      );
      udp.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(this.port, this.host, () => {
          udp.off('error', reject);
          this.port = udp.address().port;
          resolve();
        });
      });
      this.udp = udp;
    }
    if (transports.includes('tcp')) {
      const server = createServer((s) => this.adopt(s));
      server.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port, this.host, () => {
          server.off('error', reject);
          // Port 0 with TCP alone: the port is the server's (with UDP too, the same number, bound first).
          const a = server.address();
          if (typeof a === 'object' && a !== null) this.port = a.port;
          resolve();
        });
      });
      this.tcpServer = server;
    }
  }

  private adopt(s: TcpSocket): void {
    const key = `${s.remoteAddress}|${s.remotePort}`;
    this.tcpPeers.set(key, s);
    const framer = new StreamFramer();
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => {
      framer.push(chunk);
      for (let k = framer.next(); k !== FrameKind.NEED_MORE; k = framer.next()) {
        if (k === FrameKind.MESSAGE && framer.result?.message) {
          const m = framer.result.message;
          this.deliver(m.buf.subarray(m.start, m.end), {
            transport: 'tcp',
            address: s.remoteAddress ?? '',
            port: s.remotePort ?? 0,
            socket: s,
          });
        } else if (k === FrameKind.BROKEN) s.destroy();
      }
    });
    s.on('error', () => {});
    s.on('close', () => this.tcpPeers.delete(key));
  }

  private deliver(buf: Buffer, peer: Peer): void {
    this.received?.push(Buffer.from(buf));
    const p = parse(buf);
    if (p !== null) this.handler(p, peer, buf);
  }

  send(data: string | Buffer, peer: Peer): void {
    const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (peer.transport === 'tcp') {
      let s = peer.socket;
      if (s === null || s.destroyed) s = this.tcpPeers.get(`${peer.address}|${peer.port}`) ?? null;
      if (s === null || s.destroyed) {
        s = this.connect(peer.address, peer.port);
      }
      s.write(buf);
      return;
    }
    this.udp?.send(buf, peer.port, peer.address);
  }

  sendTo(
    data: string | Buffer,
    target: Endpoint | { transport: 'udp' | 'tcp'; host: string; port: number },
  ): void {
    this.send(data, { transport: target.transport, address: target.host, port: target.port, socket: null });
  }

  private connect(address: string, port: number): TcpSocket {
    const s: TcpSocket = connect({ host: address, port });
    this.adopt(s);
    this.tcpPeers.set(`${address}|${port}`, s);
    return s;
  }

  async stop(): Promise<void> {
    for (const s of this.tcpPeers.values()) s.destroy();
    await new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r()));
    await new Promise<void>((r) => (this.tcpServer ? this.tcpServer.close(() => r()) : r()));
  }
}
