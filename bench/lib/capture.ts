/**
 * Added latency per hop, measured outside the box: a capture on the loopback
 * interface (dumpcap, from Debian's tshark / wireshark-common) while a fixed
 * rate runs, then every SIP message is found on the leg before and the leg
 * after each box and the two kernel timestamps are subtracted.
 *
 *   UAC ──leg 0── box 1 ──leg 1── box 2 ──leg 2── UAS
 *
 * A leg is named by the port of the node it leads to (box 1's listen port for
 * leg 0, ..., the UAS port for the last leg); a frame belongs to the last leg
 * whose port it carries (a UDP box sends from its listen port, so a frame on
 * leg 1 also carries box 1's port). On a leg, a frame toward that port travels
 * upstream. A message is keyed by Call-ID, CSeq, direction and its method (a
 * request) or status (a response); the first copy on each leg counts, so a
 * retransmission does not pair with the original.
 *
 * The parser here is independent of sipspan's own (the observer must not
 * measure itself with its own code): start line, Call-ID and CSeq by text.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, type Started, sleep, start, stop, waitFor } from './procs.ts';

export interface HopSamples {
  /** Residence times in µs, requests and responses. */
  requestUs: number[];
  responseUs: number[];
  /** The same times by message: "INVITE", "180 INVITE", "ACK", ... (status and CSeq method for responses). */
  byMessage: Map<string, number[]>;
  /**
   * The same times split by what the box was doing when the message arrived: `afterIdleUs` for a
   * message that found it idle for at least IDLE_US (nothing sent for that long, nothing waiting),
   * `inBurstUs` for the others. The first pays the box's wake-up and its cold caches; the others
   * wait behind the messages that arrived before them.
   */
  afterIdleUs: number[];
  inBurstUs: number[];
}

/** How long a box sends nothing before a message counts as waking it (SIPp's bursts are ~3.5 ms apart). */
export const IDLE_US = 1000;

export interface CaptureResult {
  hops: HopSamples[];
  packets: number;
  dropped: number;
  /** Messages seen on the first leg that were found on every leg. */
  matched: number;
  unmatched: number;
}

export function canCapture(): boolean {
  return hasCommand('dumpcap') && (process.getuid?.() === 0 || hasCommand('sudo'));
}

export interface Capture {
  finish(legPorts: number[]): Promise<CaptureResult>;
  abort(): Promise<void>;
}

/** Start capturing the given ports on lo; resolves once dumpcap is capturing. */
export async function startCapture(ports: number[], dir: string, core: string): Promise<Capture> {
  const file = join(dir, `capture-${Date.now()}.pcap`);
  const filter = ports.map((p) => `port ${p}`).join(' or ');
  // -P: classic pcap (one small parser); -B 256: a 256 MiB kernel buffer so 4000 calls/s × 7 messages × 2 legs do not drop.
  const cap: Started = start('dumpcap', ['-i', 'lo', '-f', filter, '-w', file, '-P', '-B', '256', '-q'], {
    core,
  });
  const up = await waitFor(() => cap.exited() || cap.output().includes('Capturing on'), 10_000);
  if (!up || cap.exited()) throw new Error(`dumpcap did not start: ${cap.output().slice(-400)}`);
  // dumpcap prints "Capturing on" before the ring is fully armed on some kernels.
  await sleep(200);
  return {
    async finish(legPorts: number[]): Promise<CaptureResult> {
      await sleep(300); // let the last responses of the run land
      await stop(cap, 'SIGINT', 5000);
      const m = /received\/dropped on interface [^:]*: (\d+)\/(\d+)/.exec(cap.output());
      const dropped = m === null ? 0 : Number(m[2]);
      let buf: Buffer;
      try {
        buf = readFileSync(file);
      } finally {
        rmSync(file, { force: true });
      }
      return { ...analyse(readPcap(buf), legPorts), dropped };
    },
    async abort(): Promise<void> {
      await stop(cap, 'SIGKILL', 100);
      rmSync(file, { force: true });
    },
  };
}

export interface SipFrame {
  /** Kernel timestamp, µs since the epoch. */
  tUs: number;
  src: number;
  dst: number;
  key: string;
}

/** Read a classic pcap file (Ethernet or Linux cooked link type; IPv4 and IPv6; UDP and TCP) into SIP messages. */
export function readPcap(buf: Buffer): SipFrame[] {
  const out: SipFrame[] = [];
  if (buf.length < 24) return out;
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nanos = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20);
  const streams = new Map<string, { next: number; pending: Buffer }>();
  let off = 24;
  while (off + 16 <= buf.length) {
    const tUs = u32(off) * 1_000_000 + (nanos ? Math.floor(u32(off + 4) / 1000) : u32(off + 4));
    const caplen = u32(off + 8);
    const pkt = buf.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    let l3: number;
    let etherType: number;
    if (linkType === 1) {
      etherType = pkt.readUInt16BE(12);
      l3 = 14;
    } else if (linkType === 113) {
      etherType = pkt.readUInt16BE(14);
      l3 = 16;
    } else continue;
    let proto: number;
    let l4: number;
    let end: number;
    if (etherType === 0x0800) {
      proto = pkt[l3 + 9];
      l4 = l3 + (pkt[l3] & 0x0f) * 4;
      end = Math.min(pkt.length, l3 + pkt.readUInt16BE(l3 + 2));
    } else if (etherType === 0x86dd) {
      proto = pkt[l3 + 6];
      l4 = l3 + 40;
      end = Math.min(pkt.length, l4 + pkt.readUInt16BE(l3 + 4));
    } else continue;
    const src = pkt.readUInt16BE(l4);
    const dst = pkt.readUInt16BE(l4 + 2);
    if (proto === 17) {
      const key = sipKey(pkt.subarray(l4 + 8, end));
      if (key !== null) out.push({ tUs, src, dst, key: key.key });
    } else if (proto === 6) {
      const seq = pkt.readUInt32BE(l4 + 4);
      const flags = pkt[l4 + 13];
      const payload = pkt.subarray(l4 + (pkt[l4 + 12] >> 4) * 4, end);
      const id = `${src}>${dst}`;
      let s = streams.get(id);
      if ((flags & 0x02) !== 0) {
        streams.set(id, { next: (seq + 1) >>> 0, pending: Buffer.alloc(0) });
        continue;
      }
      if (payload.length === 0) continue;
      if (s === undefined) {
        s = { next: seq, pending: Buffer.alloc(0) };
        streams.set(id, s);
      }
      if (seq !== s.next) {
        // A retransmitted segment (before next) is skipped; a gap (capture drop) restarts the stream here.
        if (((seq - s.next) | 0) < 0) continue;
        s.pending = Buffer.alloc(0);
      }
      s.next = (seq + payload.length) >>> 0;
      s.pending = s.pending.length === 0 ? Buffer.from(payload) : Buffer.concat([s.pending, payload]);
      // RFC 3261 §18.3: a stream is framed by Content-Length.
      for (;;) {
        let startAt = 0;
        while (startAt < s.pending.length && (s.pending[startAt] === 13 || s.pending[startAt] === 10))
          startAt++;
        const headEnd = s.pending.indexOf('\r\n\r\n', startAt, 'latin1');
        if (headEnd === -1) {
          s.pending = s.pending.subarray(startAt);
          break;
        }
        const k = sipKey(s.pending.subarray(startAt, headEnd + 4));
        const total = headEnd + 4 + (k?.contentLength ?? 0);
        if (total > s.pending.length) {
          s.pending = s.pending.subarray(startAt);
          break;
        }
        if (k !== null) out.push({ tUs, src, dst, key: k.key });
        s.pending = s.pending.subarray(total);
      }
    }
  }
  return out;
}

/** "Call-ID|CSeq|INVITE" or "Call-ID|CSeq|200" from a message's header section. */
export function sipKey(msg: Buffer): { key: string; contentLength: number } | null {
  let headEnd = msg.indexOf('\r\n\r\n', 0, 'latin1');
  if (headEnd === -1) headEnd = msg.length;
  const text = msg.toString('latin1', 0, headEnd);
  const lines = text.split('\r\n');
  const first = lines[0];
  let startToken: string;
  if (first.startsWith('SIP/2.0 ')) startToken = first.slice(8, 11);
  else {
    const sp = first.indexOf(' ');
    if (sp <= 0 || !first.endsWith('SIP/2.0')) return null;
    startToken = first.slice(0, sp);
  }
  let callId = '';
  let cseq = '';
  let contentLength = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'call-id' || name === 'i') callId = value;
    else if (name === 'cseq') cseq = value.replace(/\s+/g, ' ');
    else if (name === 'content-length' || name === 'l') contentLength = Number(value) || 0;
  }
  if (callId === '' || cseq === '') return null;
  return { key: `${callId}|${cseq}|${startToken}`, contentLength };
}

/** "INVITE" for a request, "200 BYE" for a response, from a key `dir|call-id|cseq|start token`. */
function messageKind(id: string, isResponse: boolean): string {
  const token = id.slice(id.lastIndexOf('|') + 1);
  if (!isResponse) return token;
  const cseq = id.slice(0, id.lastIndexOf('|'));
  return `${token} ${cseq.slice(cseq.lastIndexOf(' ') + 1)}`;
}

/** Pair each message's first appearance on consecutive legs: residence time per box. */
export function analyse(frames: SipFrame[], legPorts: number[]): Omit<CaptureResult, 'dropped'> {
  const legs = legPorts.length;
  const hops: HopSamples[] = [];
  for (let h = 0; h < legs - 1; h++)
    hops.push({ requestUs: [], responseUs: [], byMessage: new Map(), afterIdleUs: [], inBurstUs: [] });
  // Per hop, every timed message as (arrival, departure), for the idle / burst split.
  const passages: number[][] = hops.map(() => []);
  // key + direction → first time on each leg
  const seen = new Map<string, number[]>();
  for (const f of frames) {
    let leg = -1;
    for (let i = legs - 1; i >= 0; i--) {
      if (f.src === legPorts[i] || f.dst === legPorts[i]) {
        leg = i;
        break;
      }
    }
    if (leg === -1) continue;
    const up = f.dst === legPorts[leg];
    const id = `${up ? 'u' : 'd'}|${f.key}`;
    let times = seen.get(id);
    if (times === undefined) {
      times = new Array<number>(legs).fill(-1);
      seen.set(id, times);
    }
    if (times[leg] === -1) times[leg] = f.tUs;
  }
  let matched = 0;
  let unmatched = 0;
  for (const [id, times] of seen) {
    const up = id.charCodeAt(0) === 117; // 'u'
    const isResponse = /\|\d{3}$/.test(id);
    const kind = messageKind(id, isResponse);
    let complete = true;
    for (let h = 0; h < legs - 1; h++) {
      const inT = up ? times[h] : times[h + 1];
      const outT = up ? times[h + 1] : times[h];
      if (inT === -1 || outT === -1) {
        complete = false;
        continue;
      }
      const d = outT - inT;
      // Negative or beyond Timer B: a retransmission paired with something else, not a residence time.
      if (d < 0 || d > 32_000_000) continue;
      (isResponse ? hops[h].responseUs : hops[h].requestUs).push(d);
      const same = hops[h].byMessage.get(kind);
      if (same === undefined) hops[h].byMessage.set(kind, [d]);
      else same.push(d);
      passages[h].push(inT, outT);
    }
    if (complete) matched++;
    else unmatched++;
  }
  for (let h = 0; h < legs - 1; h++) splitByIdle(passages[h], hops[h]);
  return { hops, packets: frames.length, matched, unmatched };
}

/** Sort a hop's (arrival, departure) pairs by arrival and file each residence time as after idle or in a burst. */
function splitByIdle(flat: number[], hop: HopSamples): void {
  const order: number[] = [];
  for (let i = 0; i < flat.length; i += 2) order.push(i);
  order.sort((a, b) => flat[a] - flat[b]);
  // The box is busy until its last departure so far: a message arriving after that plus IDLE_US woke it.
  let busyUntil = Number.NEGATIVE_INFINITY;
  for (const i of order) {
    const inT = flat[i];
    const outT = flat[i + 1];
    (inT - busyUntil >= IDLE_US ? hop.afterIdleUs : hop.inBurstUs).push(outT - inT);
    if (outT > busyUntil) busyUntil = outT;
  }
}
