/**
 * Raw SIP peers for integration tests: sockets that send exactly the bytes
 * they are given and record exactly the bytes they receive, with no SIP stack
 * in between (nothing from src/ is used here, so a bug in sipspan's parser
 * cannot hide itself in the test's view of the wire).
 *
 *   RawReceiver  UDP and TCP on one port; records every message (TCP framed by
 *                Content-Length); an optional handler answers (RawUas does).
 *   RawUdpClient one UDP socket: send, record datagrams.
 *   RawTcpClient one TCP connection: write, record framed messages, see close.
 *
 * Plus byte helpers: header fields of a message, and stripProxyChanges(), which
 * removes exactly the changes a transparent proxy is allowed to make to a request.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type RawTransport = 'udp' | 'tcp';

/** One message as a peer received it. */
export interface Arrival {
  transport: RawTransport;
  bytes: Buffer;
  address: string;
  port: number;
  /** The TCP connection it came on (answer on it), or null for UDP. */
  socket: Socket | null;
}

/** Poll `cond` until true or `timeoutMs` passed; true when it became true. Bounded, leaves no timer behind. */
export async function waitUntil(cond: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(stepMs);
  }
}

// ───────────────────────────── bytes ─────────────────────────────

const CRLF = Buffer.from('\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/** RFC 3261 §7.3.3 compact forms, to their long names (lowercase). */
const COMPACT: Readonly<Record<string, string>> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** One header field: its first line and every continuation line (folding), CRLFs included. */
export interface RawField {
  /** Lowercase long name (`v` → `via`). */
  name: string;
  start: number;
  end: number;
}

export interface RawHead {
  /** End of the start line, after its CRLF. */
  startLineEnd: number;
  fields: RawField[];
  /** Offset of the CRLF of the empty line closing the header section (buf.length when there is none). */
  headEnd: number;
  /** First byte of the body (buf.length when there is no empty line). */
  bodyStart: number;
}

/** Split a message (CRLF line ends) into start line, header fields and body. Bytes only, no decoding of values. */
export function parseHead(buf: Buffer): RawHead {
  const blank = buf.indexOf(CRLFCRLF);
  const headEnd = blank === -1 ? buf.length : blank + 2;
  const bodyStart = blank === -1 ? buf.length : blank + 4;
  const first = buf.indexOf(CRLF);
  const startLineEnd = first === -1 || first >= headEnd ? headEnd : first + 2;
  const fields: RawField[] = [];
  let p = startLineEnd;
  while (p < headEnd) {
    const nl = buf.indexOf(CRLF, p);
    const lineEnd = nl === -1 || nl >= headEnd ? headEnd : nl + 2;
    const c = buf[p];
    if ((c === 0x20 || c === 0x09) && fields.length > 0) {
      fields[fields.length - 1].end = lineEnd;
    } else {
      const colon = buf.indexOf(0x3a, p);
      const raw =
        colon === -1 || colon >= lineEnd
          ? ''
          : buf
              .toString('latin1', p, colon)
              .replace(/[ \t]+$/, '')
              .toLowerCase();
      fields.push({ name: COMPACT[raw] ?? raw, start: p, end: lineEnd });
    }
    p = lineEnd;
  }
  return { startLineEnd, fields, headEnd, bodyStart };
}

/** The value of a field (after the colon, surrounding whitespace trimmed, folding kept), latin1. */
export function fieldValue(buf: Buffer, f: RawField): string {
  const colon = buf.indexOf(0x3a, f.start);
  return buf.toString('latin1', colon + 1, f.end).trim();
}

/** Values of every field named `name` (long name, lowercase; compact forms match too). */
export function headerValues(buf: Buffer, name: string): string[] {
  return parseHead(buf)
    .fields.filter((f) => f.name === name)
    .map((f) => fieldValue(buf, f));
}

/** The raw bytes of every field named `name`, in order. */
export function fieldBytes(buf: Buffer, name: string): Buffer[] {
  return parseHead(buf)
    .fields.filter((f) => f.name === name)
    .map((f) => buf.subarray(f.start, f.end));
}

/** Status code of a response (`SIP/2.0 200 OK`), or -1 for a request or a malformed start line. */
export function statusOf(buf: Buffer): number {
  const m = /^SIP\/2\.0 (\d{3}) /.exec(buf.toString('latin1', 0, Math.min(buf.length, 16)));
  return m === null ? -1 : Number(m[1]);
}

/** The message without the fields `drop` selects. */
export function removeFields(buf: Buffer, drop: (f: RawField, bytes: Buffer) => boolean): Buffer {
  const head = parseHead(buf);
  const parts: Buffer[] = [buf.subarray(0, head.startLineEnd)];
  for (const f of head.fields) {
    const bytes = buf.subarray(f.start, f.end);
    if (!drop(f, bytes)) parts.push(bytes);
  }
  parts.push(buf.subarray(head.headEnd));
  return Buffer.concat(parts);
}

/** Insert bytes before the first field named `name` (or at the end of the header section). */
export function insertBeforeField(buf: Buffer, name: string, bytes: Buffer): Buffer {
  const head = parseHead(buf);
  const f = head.fields.find((x) => x.name === name);
  const at = f === undefined ? head.headEnd : f.start;
  return Buffer.concat([buf.subarray(0, at), bytes, buf.subarray(at)]);
}

/** Where two buffers first differ, with context, for assertion messages. */
export function describeDiff(got: Buffer, want: Buffer): string {
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  const from = Math.max(0, i - 60);
  const show = (b: Buffer) => JSON.stringify(b.toString('latin1', from, Math.min(b.length, i + 60)));
  return `first difference at byte ${i} (got ${got.length} bytes, want ${want.length})\n  got:  ${show(got)}\n  want: ${show(want)}`;
}

/** The Content-Length of a header section: null when absent, NaN when negative, non-numeric or repeated. */
export function contentLengthOf(buf: Buffer, head: RawHead = parseHead(buf)): number | null {
  const cl = head.fields.filter((f) => f.name === 'content-length');
  if (cl.length === 0) return null;
  if (cl.length > 1) return Number.NaN;
  const v = fieldValue(buf, cl[0]);
  return /^\d+$/.test(v) ? Number(v) : Number.NaN;
}

/**
 * Splits a TCP byte stream into messages by Content-Length (RFC 3261 §18.3),
 * skipping CRLFs between messages (§7.5, RFC 5626 keep-alives). Written apart
 * from sipspan's own framer on purpose.
 */
export class StreamSplitter {
  private buf = Buffer.alloc(0);
  /** Why the stream could not be framed any more, or null. */
  broken: string | null = null;

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (this.broken !== null) return out;
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    for (;;) {
      let p = 0;
      while (p + 1 < this.buf.length && this.buf[p] === 0x0d && this.buf[p + 1] === 0x0a) p += 2;
      if (p > 0) this.buf = this.buf.subarray(p);
      const blank = this.buf.indexOf(CRLFCRLF);
      if (blank === -1) break;
      const head = parseHead(this.buf.subarray(0, blank + 4));
      const cl = contentLengthOf(this.buf, head);
      if (cl === null || Number.isNaN(cl)) {
        this.broken = cl === null ? 'no Content-Length' : 'bad Content-Length';
        break;
      }
      const total = blank + 4 + cl;
      if (this.buf.length < total) break;
      out.push(Buffer.from(this.buf.subarray(0, total)));
      this.buf = this.buf.subarray(total);
    }
    return out;
  }

  get buffered(): number {
    return this.buf.length;
  }
}

// ───────────────────────────── what a proxy may change ─────────────────────────────

export interface ProxyIdentity {
  /** The proxy's address as it writes it in Via and Record-Route (`127.0.0.1`, `::1`). */
  host: string;
  /** Its listening port (Via sent-by and Record-Route). */
  port: number;
}

export interface StripOptions {
  proxy: ProxyIdentity;
  /** Where the request came from, as the proxy saw it (for received= and rport=). */
  source: { address: string; port: number };
  /** Whether the proxy may have added a Content-Length (relayed onto a stream without one). */
  mayAddContentLength: boolean;
}

export interface Stripped {
  /** The received message with every allowed change taken out: compare it to what was sent. */
  restored: Buffer;
  /** sipspan's Via lines found (and removed). */
  ownVias: number;
  /** Whether the first Via of the message was one of sipspan's (RFC 3261 §16.6 step 8: on top). */
  ownViaOnTop: boolean;
  /** Record-Route lines naming the proxy (removed). */
  recordRoutes: string[];
  /** Values of the trace lines removed. */
  traceparents: string[];
  traceIds: string[];
  tracestates: string[];
  /** Changes that were found but are not what the proxy may do. */
  problems: string[];
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sS<20 hex>` as sipspan writes it. */
export function ownViaPattern(proxy: ProxyIdentity): RegExp {
  const host = proxy.host.includes(':') ? `[${proxy.host}]` : proxy.host;
  return new RegExp(
    `^Via: SIP/2\\.0/(?:UDP|TCP) ${escapeRe(host)}:${proxy.port};branch=z9hG4bK-sS[0-9a-f]{20}\\r\\n$`,
  );
}

function ownRecordRoutePattern(proxy: ProxyIdentity): RegExp {
  const host = proxy.host.includes(':') ? `[${proxy.host}]` : proxy.host;
  return new RegExp(`^Record-Route: (<sip:${escapeRe(host)}:${proxy.port}(?:;transport=tcp)?;lr>)\\r\\n$`);
}

const TRACEPARENT_LINE = /^traceparent: (00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})\r\n$/;
const TRACE_ID_LINE = /^X-Trace-Id: ([0-9a-f]{32})\r\n$/;
const TRACESTATE_LINE = /^tracestate: ([^\r\n]*)\r\n$/;
const PARAM_BOUNDARY = new Set([0x3b, 0x2c, 0x0d, 0x20, 0x09]);

/** Remove one `needle` that ends at a parameter boundary (`;` `,` CR SP HT); returns null when there is none. */
function removeParam(field: Buffer, needle: string, replacement = ''): Buffer | null {
  const n = Buffer.from(needle, 'latin1');
  let at = field.indexOf(n);
  while (at !== -1) {
    const after = at + n.length;
    if (after < field.length && PARAM_BOUNDARY.has(field[after])) {
      return Buffer.concat([
        field.subarray(0, at),
        Buffer.from(replacement, 'latin1'),
        field.subarray(after),
      ]);
    }
    at = field.indexOf(n, at + 1);
  }
  return null;
}

/**
 * Take out of a forwarded request exactly what a transparent proxy may change
 * (RFC 3261 §16.6), and nothing else:
 *   - its own Via (`...;branch=z9hG4bK-sS...`) and Record-Route lines naming it,
 *   - the trace lines it writes (`traceparent`, `tracestate`, `X-Trace-Id`),
 *   - `;received=<source>` / `;rport=<source port>` (or `=<port>` after a bare
 *     `;rport`) in the sender's top Via (§18.2.1, RFC 3581),
 *   - Max-Forwards: the value back to the sent one when it is exactly one less,
 *     or a `Max-Forwards: 70` line it added when the request had none,
 *   - a `Content-Length:` line it added relaying a request without one onto TCP.
 * `sent` is the request as the sender put it on the wire (trace lines of the
 * sender already removed by the caller, when it sent any).
 */
export function stripProxyChanges(received: Buffer, sent: Buffer, opts: StripOptions): Stripped {
  const out: Stripped = {
    restored: received,
    ownVias: 0,
    ownViaOnTop: false,
    recordRoutes: [],
    traceparents: [],
    traceIds: [],
    tracestates: [],
    problems: [],
  };
  const viaRe = ownViaPattern(opts.proxy);
  const rrRe = ownRecordRoutePattern(opts.proxy);
  const head = parseHead(received);
  const sentHead = parseHead(sent);
  const sentMf = sentHead.fields.filter((f) => f.name === 'max-forwards');
  const sentHasCl = sentHead.fields.some((f) => f.name === 'content-length');
  const sentTopVia = sentHead.fields.find((f) => f.name === 'via');

  const kept: Buffer[] = [];
  let firstViaSeen = false;
  let senderViaDone = false;
  let addedMf = 0;
  let addedCl = 0;
  for (const f of head.fields) {
    let bytes = received.subarray(f.start, f.end);
    const line = bytes.toString('latin1');
    if (f.name === 'via' && viaRe.test(line)) {
      if (!firstViaSeen) out.ownViaOnTop = true;
      firstViaSeen = true;
      out.ownVias++;
      continue;
    }
    if (f.name === 'via') firstViaSeen = true;
    const rr = f.name === 'record-route' ? rrRe.exec(line) : null;
    if (rr !== null) {
      out.recordRoutes.push(rr[1]);
      continue;
    }
    let m = f.name === 'traceparent' ? TRACEPARENT_LINE.exec(line) : null;
    if (m !== null) {
      out.traceparents.push(m[1]);
      continue;
    }
    m = f.name === 'x-trace-id' ? TRACE_ID_LINE.exec(line) : null;
    if (m !== null) {
      out.traceIds.push(m[1]);
      continue;
    }
    m = f.name === 'tracestate' ? TRACESTATE_LINE.exec(line) : null;
    if (m !== null) {
      out.tracestates.push(m[1]);
      continue;
    }
    if (f.name === 'max-forwards') {
      if (sentMf.length === 0) {
        if (line === 'Max-Forwards: 70\r\n') {
          addedMf++;
          continue;
        }
        out.problems.push(`unexpected Max-Forwards line ${JSON.stringify(line)}`);
      } else if (sentMf.length === 1) {
        const original = sent.subarray(sentMf[0].start, sentMf[0].end);
        const o = /^([^:]*:[ \t]*)(\d+)([\s\S]*)$/.exec(original.toString('latin1'));
        if (o !== null) {
          const expected = `${o[1]}${Number(o[2]) - 1}${o[3]}`;
          if (line === expected) bytes = original;
          else out.problems.push(`Max-Forwards ${JSON.stringify(line)}, want ${JSON.stringify(expected)}`);
        }
      }
    }
    if (f.name === 'content-length' && !sentHasCl && opts.mayAddContentLength) {
      const cl = /^Content-Length: (\d+)\r\n$/.exec(line);
      if (cl !== null && Number(cl[1]) === received.length - head.bodyStart) {
        addedCl++;
        continue;
      }
    }
    if (f.name === 'via' && !senderViaDone) {
      // The sender's top Via: received= and rport= are the proxy's to add (§18.2.1, RFC 3581).
      senderViaDone = true;
      const sentBytes = sentTopVia === undefined ? null : sent.subarray(sentTopVia.start, sentTopVia.end);
      const addr = opts.source.address;
      let b: Buffer = bytes;
      b = removeParam(b, `;received=${addr}`) ?? removeParam(b, `;received=[${addr}]`) ?? b;
      const port = `;rport=${opts.source.port}`;
      const bare = sentBytes !== null && removeParam(b, port, ';rport')?.equals(sentBytes) === true;
      b = removeParam(b, port, bare ? ';rport' : '') ?? b;
      if (sentBytes !== null && b.equals(sentBytes)) bytes = sentBytes;
    }
    kept.push(bytes);
  }
  if (addedMf > 1) out.problems.push(`${addedMf} Max-Forwards lines added`);
  if (addedCl > 1) out.problems.push(`${addedCl} Content-Length lines added`);
  out.restored = Buffer.concat([
    received.subarray(0, head.startLineEnd),
    ...kept,
    received.subarray(head.headEnd),
  ]);
  return out;
}

/** A response with the proxy's own top Via line taken out (what a proxy must do, §16.7 step 3). */
export function withoutOwnVia(response: Buffer, proxy: ProxyIdentity): Buffer {
  const re = ownViaPattern(proxy);
  const head = parseHead(response);
  const top = head.fields.find((f) => f.name === 'via');
  if (top === undefined || !re.test(response.toString('latin1', top.start, top.end))) return response;
  return Buffer.concat([response.subarray(0, top.start), response.subarray(top.end)]);
}

// ───────────────────────────── sockets ─────────────────────────────

function udpType(host: string): 'udp4' | 'udp6' {
  return host.includes(':') ? 'udp6' : 'udp4';
}

/**
 * A peer listening on UDP and TCP on the same host:port that records every
 * message it gets. `onArrival` may answer (reply()).
 */
export class RawReceiver {
  readonly host: string;
  port = 0;
  readonly arrivals: Arrival[] = [];
  /** TCP streams that could not be framed (no or bad Content-Length). */
  readonly brokenStreams: string[] = [];
  /** TCP connections accepted so far. */
  accepted = 0;
  onArrival: ((a: Arrival) => void) | null = null;
  private udp: UdpSocket | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(host: string) {
    this.host = host;
  }

  /** Bind UDP and TCP on one free port of `host`. */
  static async start(host = '127.0.0.1'): Promise<RawReceiver> {
    const r = new RawReceiver(host);
    for (let attempt = 0; attempt < 20; attempt++) {
      const server = createServer((s) => r.adopt(s));
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, host, () => {
          server.off('error', reject);
          const a = server.address();
          resolve(typeof a === 'object' && a !== null ? a.port : 0);
        });
      });
      const udp = createSocket(udpType(host));
      const ok = await new Promise<boolean>((resolve) => {
        udp.once('error', () => resolve(false));
        udp.bind(port, host, () => resolve(true));
      });
      if (!ok) {
        udp.close();
        await new Promise<void>((res) => server.close(() => res()));
        continue;
      }
      udp.on('error', () => {});
      udp.on('message', (bytes: Buffer, rinfo: RemoteInfo) =>
        r.record({ transport: 'udp', bytes, address: rinfo.address, port: rinfo.port, socket: null }),
      );
      server.on('error', () => {});
      r.server = server;
      r.udp = udp;
      r.port = port;
      return r;
    }
    throw new Error(`no port free for both UDP and TCP on ${host}`);
  }

  private adopt(s: Socket): void {
    this.accepted++;
    this.sockets.add(s);
    const splitter = new StreamSplitter();
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => {
      for (const bytes of splitter.push(chunk)) {
        this.record({
          transport: 'tcp',
          bytes,
          address: s.remoteAddress ?? '',
          port: s.remotePort ?? 0,
          socket: s,
        });
      }
      if (splitter.broken !== null) {
        this.brokenStreams.push(splitter.broken);
        s.destroy();
      }
    });
    s.on('error', () => {});
    s.on('close', () => this.sockets.delete(s));
  }

  private record(a: Arrival): void {
    this.arrivals.push(a);
    if (this.onArrival !== null) this.onArrival(a);
  }

  /** Answer on the path a message came on: its TCP connection, or a datagram to its source. */
  reply(to: Arrival, bytes: Buffer): void {
    if (to.socket !== null) to.socket.write(bytes);
    else this.udp?.send(bytes, to.port, to.address);
  }

  clear(): void {
    this.arrivals.length = 0;
    this.brokenStreams.length = 0;
  }

  async close(): Promise<void> {
    const { udp, server } = this;
    this.udp = null;
    this.server = null;
    await closePeer(this.sockets, udp, server);
  }
}

/** Close what a UDP-and-TCP peer holds: its accepted connections, then its UDP socket and TCP server. */
export async function closePeer(
  sockets: Set<Socket>,
  udp: UdpSocket | null,
  server: Server | null,
): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  if (udp !== null) await new Promise<void>((r) => udp.close(() => r()));
  if (server !== null) await new Promise<void>((r) => server.close(() => r()));
}

/** One UDP socket on an ephemeral port: sends raw bytes, records every datagram it gets. */
export class RawUdpClient {
  readonly host: string;
  port = 0;
  readonly received: Buffer[] = [];
  private readonly socket: UdpSocket;

  private constructor(host: string) {
    this.host = host;
    this.socket = createSocket(udpType(host));
    this.socket.on('error', () => {});
    this.socket.on('message', (b: Buffer) => this.received.push(b));
  }

  static async open(host = '127.0.0.1'): Promise<RawUdpClient> {
    const c = new RawUdpClient(host);
    await new Promise<void>((resolve) => c.socket.bind(0, host, () => resolve()));
    c.port = c.socket.address().port;
    return c;
  }

  send(bytes: Buffer, port: number, address = this.host): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, port, address, (err) => (err ? reject(err) : resolve())),
    );
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

/** One TCP connection: writes raw bytes, records the messages it gets and whether the far end closed. */
export class RawTcpClient {
  readonly socket: Socket;
  readonly received: Buffer[] = [];
  /** Every byte received, unframed. */
  rawBytes = 0;
  closed = false;
  localPort = 0;
  private readonly splitter = new StreamSplitter();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.rawBytes += chunk.length;
      for (const m of this.splitter.push(chunk)) this.received.push(m);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static async connect(host: string, port: number, timeoutMs = 2000): Promise<RawTcpClient> {
    const socket = connect({ host, port });
    const c = new RawTcpClient(socket);
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
      socket.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ok) {
      socket.destroy();
      throw new Error(`cannot connect to ${host}:${port}`);
    }
    c.localPort = socket.localPort ?? 0;
    return c;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

// ───────────────────────────── a UAS ─────────────────────────────

/** One response the UAS sent, with the request it answers. */
export interface UasAnswer {
  request: Arrival;
  bytes: Buffer;
}

/**
 * A minimal UAS on a RawReceiver: answers INVITE with 100, 180 and 200 (To
 * tag, Contact, the Record-Route lines it received, an SDP answer), any other
 * request but ACK with 200. Via, From, To, Call-ID and CSeq are copied byte for
 * byte from the request (RFC 3261 §8.2.6.2). Every response sent is kept.
 */
export class RawUas {
  readonly receiver: RawReceiver;
  readonly sent: UasAnswer[] = [];
  readonly toTag: string;

  constructor(receiver: RawReceiver, toTag = 'uas7f3a9') {
    this.receiver = receiver;
    this.toTag = toTag;
    receiver.onArrival = (a) => this.answer(a);
  }

  get contact(): string {
    const r = this.receiver;
    const host = r.host.includes(':') ? `[${r.host}]` : r.host;
    return `sip:uas@${host}:${r.port}`;
  }

  private answer(a: Arrival): void {
    if (statusOf(a.bytes) !== -1) return;
    const method = a.bytes.toString('latin1', 0, a.bytes.indexOf(0x20));
    if (method === 'ACK') return;
    if (method === 'INVITE') {
      this.respond(a, '100 Trying', false);
      this.respond(a, '180 Ringing', true);
      this.respond(
        a,
        '200 OK',
        true,
        'v=0\r\no=uas 2 2 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n',
      );
      return;
    }
    this.respond(a, '200 OK', false);
  }

  private respond(a: Arrival, status: string, dialog: boolean, sdp = ''): void {
    const req = a.bytes;
    const head = parseHead(req);
    const parts: Buffer[] = [Buffer.from(`SIP/2.0 ${status}\r\n`, 'latin1')];
    for (const f of head.fields) {
      const bytes = req.subarray(f.start, f.end);
      if (f.name === 'to' && status !== '100 Trying' && !/;\s*tag=/i.test(fieldValue(req, f))) {
        parts.push(bytes.subarray(0, bytes.length - 2), Buffer.from(`;tag=${this.toTag}\r\n`, 'latin1'));
      } else if (['via', 'from', 'to', 'call-id', 'cseq'].includes(f.name)) {
        parts.push(bytes);
      } else if (f.name === 'record-route' && dialog) {
        parts.push(bytes);
      }
    }
    if (dialog) {
      const tcp = a.transport === 'tcp' ? ';transport=tcp' : '';
      parts.push(Buffer.from(`Contact: <${this.contact}${tcp}>\r\n`, 'latin1'));
    }
    if (sdp !== '') parts.push(Buffer.from('Content-Type: application/sdp\r\n', 'latin1'));
    parts.push(Buffer.from(`Content-Length: ${sdp.length}\r\n\r\n${sdp}`, 'latin1'));
    const bytes = Buffer.concat(parts);
    this.sent.push({ request: a, bytes });
    this.receiver.reply(a, bytes);
  }
}
