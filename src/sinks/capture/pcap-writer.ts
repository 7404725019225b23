import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * Classic libpcap files of captured SIP messages, for Wireshark, tshark and
 * sngrep. One Ethernet frame per message (a TCP message over 65000 bytes is
 * cut into segments) with synthesised IPv4 or IPv6 and UDP or TCP headers;
 * checksums are computed so no tool flags the frames.
 *
 *   file:   global header (24 bytes, magic a1b2c3d4 little-endian, µs, LINKTYPE_ETHERNET)
 *   record: ts_sec ts_usec incl_len orig_len (16 bytes) ─ Ethernet (14) ─ IPv4 (20) │ IPv6 (40) ─ UDP (8) │ TCP (20) ─ SIP bytes
 *
 * TCP has no handshake in the file: each direction of a flow gets a sequence
 * number derived from its addresses, advanced by every segment's length, and
 * every segment acknowledges what the other direction has sent so far.
 */
export interface PcapPacket {
  /** Wall time, epoch milliseconds (fractions kept to the microsecond). */
  timeMs: number;
  transport: 'udp' | 'tcp';
  /** `address:port` (IPv6 with or without brackets; a host name gets a stable stand-in address). */
  source: string;
  destination: string;
  payload: Buffer;
}

const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262_144;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const TCP_SEGMENT_BYTES = 65_000;
const TCP_FLAGS_PSH_ACK = 0x18;

interface Address {
  ip: Buffer;
  port: number;
}

/** Splits `host:port` as the proxy writes it (`::1:5060` for IPv6, no brackets) or `[::1]:5060`. */
export function parseAddress(text: string): Address {
  let host = text;
  let port = 0;
  const colon = text.lastIndexOf(':');
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    host = text.slice(1, close === -1 ? text.length : close);
    if (close !== -1 && text[close + 1] === ':') port = Number(text.slice(close + 2));
  } else if (colon !== -1) {
    host = text.slice(0, colon);
    port = Number(text.slice(colon + 1));
  }
  const zone = host.indexOf('%');
  if (zone !== -1) host = host.slice(0, zone);
  if (!Number.isInteger(port) || port < 0 || port > 65535) port = 0;
  if (host.toLowerCase().startsWith('::ffff:') && isIPv4(host.slice(7))) host = host.slice(7);
  if (isIPv4(host)) return { ip: Buffer.from(host.split('.').map(Number)), port };
  if (isIPv6(host)) return { ip: ipv6Bytes(host), port };
  // Not an address (a name that was never resolved): a stable stand-in in 198.18.0.0/15 (RFC 2544 benchmarking).
  const h = createHash('sha1').update(host).digest();
  return { ip: Buffer.from([198, 18 + (h[0] & 1), h[1], h[2] | 1]), port };
}

function ipv6Bytes(host: string): Buffer {
  const out = Buffer.alloc(16);
  let text = host;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    // An embedded IPv4 address in the last 32 bits (RFC 4291 §2.2 form 3).
    const v4 = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    text = `${text.slice(0, lastColon + 1)}0`;
  }
  const [left, right] = text.includes('::') ? text.split('::') : [text, null];
  const words = (s: string) => (s === '' ? [] : s.split(':').map((w) => Number.parseInt(w, 16)));
  let groups: number[];
  if (right === null) groups = words(left);
  else {
    const l = words(left);
    const r = words(right);
    groups = [...l, ...new Array(8 - l.length - r.length).fill(0), ...r];
  }
  if (tail.length === 2) groups.splice(groups.length - 1, 1, ...tail);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i] ?? 0, i * 2);
  return out;
}

function v4Mapped(ip: Buffer): Buffer {
  if (ip.length === 16) return ip;
  const out = Buffer.alloc(16);
  out[10] = 0xff;
  out[11] = 0xff;
  ip.copy(out, 12);
  return out;
}

/** RFC 1071 ones' complement sum, continued from `sum`. */
function onesSum(buf: Buffer, start: number, end: number, sum: number): number {
  let s = sum;
  let i = start;
  for (; i + 1 < end; i += 2) s += (buf[i] << 8) | buf[i + 1];
  if (i < end) s += buf[i] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function finish(sum: number): number {
  const c = ~sum & 0xffff;
  return c === 0 ? 0xffff : c;
}

/** A locally administered MAC address derived from the IP, so each host keeps one. */
function macOf(ip: Buffer): Buffer {
  const h = createHash('sha1').update(ip).digest();
  return Buffer.from([0x02, h[0], h[1], h[2], h[3], h[4]]);
}

/** The transport-layer checksum over the RFC 768 / RFC 793 / RFC 8200 §8.1 pseudo-header and the segment. */
function transportChecksum(src: Buffer, dst: Buffer, proto: number, segment: Buffer): number {
  const pseudo = Buffer.alloc(src.length === 4 ? 12 : 40);
  if (src.length === 4) {
    src.copy(pseudo, 0);
    dst.copy(pseudo, 4);
    pseudo[9] = proto;
    pseudo.writeUInt16BE(segment.length, 10);
  } else {
    src.copy(pseudo, 0);
    dst.copy(pseudo, 16);
    pseudo.writeUInt32BE(segment.length, 32);
    pseudo[39] = proto;
  }
  return finish(onesSum(segment, 0, segment.length, onesSum(pseudo, 0, pseudo.length, 0)));
}

function ipHeader(src: Buffer, dst: Buffer, proto: number, payloadLength: number, id: number): Buffer {
  if (src.length === 4) {
    const h = Buffer.alloc(20);
    h[0] = 0x45;
    h.writeUInt16BE(20 + payloadLength, 2);
    h.writeUInt16BE(id & 0xffff, 4);
    h.writeUInt16BE(0x4000, 6); // don't fragment
    h[8] = 64;
    h[9] = proto;
    src.copy(h, 12);
    dst.copy(h, 16);
    h.writeUInt16BE(finish(onesSum(h, 0, 20, 0)) & 0xffff, 10);
    return h;
  }
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payloadLength, 4);
  h[6] = proto;
  h[7] = 64;
  src.copy(h, 8);
  dst.copy(h, 24);
  return h;
}

function udpSegment(src: Address, dst: Address, payload: Buffer): Buffer {
  const seg = Buffer.alloc(8 + payload.length);
  seg.writeUInt16BE(src.port, 0);
  seg.writeUInt16BE(dst.port, 2);
  seg.writeUInt16BE(Math.min(seg.length, 0xffff), 4);
  payload.copy(seg, 8);
  seg.writeUInt16BE(transportChecksum(src.ip, dst.ip, PROTO_UDP, seg), 6);
  return seg;
}

function tcpSegment(src: Address, dst: Address, seq: number, ack: number, payload: Buffer): Buffer {
  const seg = Buffer.alloc(20 + payload.length);
  seg.writeUInt16BE(src.port, 0);
  seg.writeUInt16BE(dst.port, 2);
  seg.writeUInt32BE(seq >>> 0, 4);
  seg.writeUInt32BE(ack >>> 0, 8);
  seg[12] = 5 << 4;
  seg[13] = TCP_FLAGS_PSH_ACK;
  seg.writeUInt16BE(0xffff, 14);
  payload.copy(seg, 20);
  seg.writeUInt16BE(transportChecksum(src.ip, dst.ip, PROTO_TCP, seg), 16);
  return seg;
}

function initialSequence(key: string): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0);
}

/** The whole file for these packets, in the order given (callers sort by time). */
export function writePcap(packets: readonly PcapPacket[]): Buffer {
  const chunks: Buffer[] = [];
  const global = Buffer.alloc(24);
  global.writeUInt32LE(0xa1b2c3d4, 0);
  global.writeUInt16LE(2, 4);
  global.writeUInt16LE(4, 6);
  global.writeUInt32LE(SNAPLEN, 16);
  global.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  chunks.push(global);
  const nextSeq = new Map<string, number>();
  const seqOf = (key: string) => {
    let s = nextSeq.get(key);
    if (s === undefined) {
      s = initialSequence(key);
      nextSeq.set(key, s);
    }
    return s;
  };
  let ipId = 1;
  for (const p of packets) {
    const src = parseAddress(p.source);
    const dst = parseAddress(p.destination);
    if (src.ip.length !== dst.ip.length) {
      src.ip = v4Mapped(src.ip);
      dst.ip = v4Mapped(dst.ip);
    }
    const segments: Buffer[] = [];
    if (p.transport === 'udp') segments.push(udpSegment(src, dst, p.payload));
    else {
      const fwd = `${p.source}>${p.destination}`;
      const rev = `${p.destination}>${p.source}`;
      for (let off = 0; off < p.payload.length || off === 0; off += TCP_SEGMENT_BYTES) {
        const part = p.payload.subarray(off, off + TCP_SEGMENT_BYTES);
        const seq = seqOf(fwd);
        segments.push(tcpSegment(src, dst, seq, seqOf(rev), part));
        nextSeq.set(fwd, (seq + part.length) >>> 0);
        if (part.length === 0) break;
      }
    }
    const ethertype = src.ip.length === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6;
    const proto = p.transport === 'udp' ? PROTO_UDP : PROTO_TCP;
    const seconds = Math.floor(p.timeMs / 1000);
    const micros = Math.min(999_999, Math.round((p.timeMs - seconds * 1000) * 1000));
    for (const seg of segments) {
      const eth = Buffer.alloc(14);
      macOf(dst.ip).copy(eth, 0);
      macOf(src.ip).copy(eth, 6);
      eth.writeUInt16BE(ethertype, 12);
      const ip = ipHeader(src.ip, dst.ip, proto, seg.length, ipId++);
      const length = eth.length + ip.length + seg.length;
      const rec = Buffer.alloc(16);
      rec.writeUInt32LE(seconds >>> 0, 0);
      rec.writeUInt32LE(micros, 4);
      rec.writeUInt32LE(length, 8);
      rec.writeUInt32LE(length, 12);
      chunks.push(rec, eth, ip, seg);
    }
  }
  return Buffer.concat(chunks);
}
