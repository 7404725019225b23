/**
 * Network fuzzing of a running sipspan (`bin/sipspan run` as a child, so a
 * crash is an exit we can see): seeded mutations of the RFC 4475 / RFC 5118
 * corpus and of well-formed call messages, sent over UDP datagrams and TCP
 * streams (split at random offsets), from the callers' side and from the
 * upstream's own address; the upstream answers what reaches it with valid or
 * mutated responses, so the response path is fuzzed too.
 *
 *   fuzzer ──udp/tcp (mutated requests and responses)──▶ child sipspan ──▶ fuzz upstream
 *                                                              ◀── valid / mutated answers ──┘
 *
 * Watched: the child's exit, stack traces on its stderr (SIPSPAN_DEBUG=1 makes
 * the engine print an error it caught), every stdout line (valid JSON, one
 * line, bounded), RSS, and that a plain OPTIONS still goes through at the end.
 *
 * Used by test/reliability/network-fuzz.test.ts (short) and scripts/fuzz-network.ts (long).
 */
import { createHash } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCorpus } from '../../support/corpus.ts';
import { closePeer } from '../../support/raw-peers.ts';
import { freePort } from '../../support/sipp.ts';
import {
  ChildSipspan,
  getJson,
  HOST,
  MiniUac,
  mulberry32,
  responseTo,
  sipRequest,
  writeConfig,
} from './harness.ts';

export type Rnd = () => number;

const INTERESTING_BYTES = [
  0x00, 0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x3b, 0x2c, 0x3c, 0x3e, 0x22, 0x5c, 0x25, 0x80, 0xc3, 0xff, 0x7f,
];
const INTERESTING_NUMBERS = [
  '0',
  '-1',
  '1',
  '255',
  '65535',
  '65536',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '4294967301',
  '99999999999999999999999',
  '1e3',
  '0x10',
  '',
];
const HEADER_NAMES = [
  'Via',
  'v',
  'Content-Length',
  'l',
  'CSeq',
  'Call-ID',
  'i',
  'From',
  'f',
  'To',
  't',
  'Max-Forwards',
  'Route',
  'Record-Route',
  'traceparent',
  'tracestate',
  'X-Trace-Id',
  'X-Traceparent',
  'Contact',
  'Proxy-Require',
  'Session-ID',
];
const METHODS = [
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'OPTIONS',
  'REGISTER',
  'invite',
  'NOTIFY',
  'X',
  'I\u00c9NVITE',
  'FOO-BAR.BAZ!',
  '',
];

function pick<T>(rnd: Rnd, a: readonly T[]): T {
  return a[Math.floor(rnd() * a.length)];
}

function int(rnd: Rnd, n: number): number {
  return Math.floor(rnd() * n);
}

/** Line boundaries of a buffer (offsets after each LF). */
function lineStarts(b: Buffer): number[] {
  const out = [0];
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0a && i + 1 < b.length) out.push(i + 1);
  return out;
}

/** One mutation of `b` (never more than 256 KiB out). */
export function mutateOnce(rnd: Rnd, b: Buffer, other: Buffer): Buffer {
  if (b.length === 0) return Buffer.from(pick(rnd, METHODS));
  switch (int(rnd, 17)) {
    case 0: {
      const out = Buffer.from(b);
      for (let n = 1 + int(rnd, 8); n > 0; n--) out[int(rnd, out.length)] ^= 1 << int(rnd, 8);
      return out;
    }
    case 1: {
      const out = Buffer.from(b);
      for (let n = 1 + int(rnd, 4); n > 0; n--) out[int(rnd, out.length)] = pick(rnd, INTERESTING_BYTES);
      return out;
    }
    case 2: {
      const at = int(rnd, b.length + 1);
      const ins = Buffer.alloc(1 + int(rnd, 16));
      for (let i = 0; i < ins.length; i++)
        ins[i] = rnd() < 0.5 ? pick(rnd, INTERESTING_BYTES) : int(rnd, 256);
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
    case 3: {
      const at = int(rnd, b.length);
      return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(rnd, 64)))]);
    }
    case 4: {
      // Repeat one line many times (header-count limit, duplicate singleton headers).
      const starts = lineStarts(b);
      const i = 1 + int(rnd, Math.max(1, starts.length - 2));
      const s = starts[Math.min(i, starts.length - 1)];
      const e = i + 1 < starts.length ? starts[i + 1] : b.length;
      const line = b.subarray(s, e);
      const times = rnd() < 0.3 ? 300 : 1 + int(rnd, 5);
      return Buffer.concat([b.subarray(0, s), ...Array.from({ length: times }, () => line), b.subarray(s)]);
    }
    case 5: {
      // Swap two lines.
      const starts = lineStarts(b);
      if (starts.length < 3) return b;
      const i = int(rnd, starts.length - 1);
      const j = int(rnd, starts.length - 1);
      const [a, c] = i < j ? [i, j] : [j, i];
      if (a === c) return b;
      const seg = (k: number) => b.subarray(starts[k], k + 1 < starts.length ? starts[k + 1] : b.length);
      return Buffer.concat([
        b.subarray(0, starts[a]),
        seg(c),
        b.subarray(starts[a + 1], starts[c]),
        seg(a),
        b.subarray(c + 1 < starts.length ? starts[c + 1] : b.length),
      ]);
    }
    case 6: {
      // Replace a run of digits with an interesting number.
      const text = b.toString('latin1');
      const runs = [...text.matchAll(/\d+/g)];
      if (runs.length === 0) return b;
      const m = pick(rnd, runs);
      return Buffer.concat([
        b.subarray(0, m.index),
        Buffer.from(pick(rnd, INTERESTING_NUMBERS), 'latin1'),
        b.subarray(m.index + m[0].length),
      ]);
    }
    case 7:
      return b.subarray(0, int(rnd, b.length));
    case 8:
      return Buffer.concat([b.subarray(0, int(rnd, b.length)), other.subarray(int(rnd, other.length))]);
    case 9: {
      const text = b.toString('latin1');
      const v = pick(rnd, INTERESTING_NUMBERS);
      const replaced = text.replace(/(\r?\n(?:Content-Length|l)\s*:)[^\r\n]*/i, `$1 ${v}`);
      return Buffer.from(
        replaced === text ? text.replace('\r\n\r\n', `\r\nContent-Length: ${v}\r\n\r\n`) : replaced,
        'latin1',
      );
    }
    case 10: {
      // A long value in a (possibly trace) header.
      const at = b.indexOf('\r\n');
      if (at === -1) return b;
      const len = pick(rnd, [70, 257, 600, 5000, 20_000, 70_000]);
      const line = Buffer.from(`\r\n${pick(rnd, HEADER_NAMES)}: ${'a'.repeat(len)}`, 'latin1');
      return Buffer.concat([b.subarray(0, at), line, b.subarray(at)]);
    }
    case 11: {
      // Method or status code replaced.
      const sp = b.indexOf(0x20);
      if (sp === -1) return b;
      if (b.toString('latin1', 0, 4) === 'SIP/') {
        const code = pick(rnd, [
          '000',
          '099',
          '700',
          '999',
          '1000',
          '4294967301',
          '20',
          'abc',
          '２００',
          '200',
        ]);
        const end = b.indexOf(0x20, sp + 1);
        return Buffer.concat([
          b.subarray(0, sp + 1),
          Buffer.from(code, 'utf8'),
          b.subarray(end === -1 ? sp + 1 : end),
        ]);
      }
      return Buffer.concat([Buffer.from(pick(rnd, METHODS), 'utf8'), b.subarray(sp)]);
    }
    case 12: {
      // Hostile trace context.
      const at = b.indexOf('\r\n');
      if (at === -1) return b;
      const v = pick(rnd, [
        '00-deadbeefdeadbeefdeadbeefdeadbeef-badc0ffee0ddf00d-01',
        '00-00000000000000000000000000000000-0000000000000000-01',
        'ff-deadbeefdeadbeefdeadbeefdeadbeef-badc0ffee0ddf00d-01',
        '00-DEADBEEFDEADBEEFDEADBEEFDEADBEEF-BADC0FFEE0DDF00D-01',
        '00-deadbeef-badc0ffee0ddf00d-01, 00-x-y-z',
        `k=${'v'.repeat(600)}`,
        '\u2028\u2029"}{\\',
      ]);
      const line = Buffer.from(
        `\r\n${pick(rnd, ['traceparent', 'tracestate', 'X-Trace-Id', 'X-Traceparent'])}: ${v}`,
        'utf8',
      );
      return Buffer.concat([b.subarray(0, at), line, b.subarray(at)]);
    }
    case 13: {
      // Line ends: CRLF → LF, or a bare CR.
      const text = b.toString('latin1');
      return Buffer.from(rnd() < 0.5 ? text.replace(/\r\n/g, '\n') : text.replace('\r\n', '\r'), 'latin1');
    }
    case 14: {
      // Fold a line (LWS continuation).
      const starts = lineStarts(b);
      const s = starts[int(rnd, starts.length)];
      return Buffer.concat([b.subarray(0, s), Buffer.from(' \r\n ', 'latin1'), b.subarray(s)]);
    }
    case 15: {
      // Quotes, angle brackets, escapes in a value.
      const at = b.indexOf(0x3a, int(rnd, b.length));
      if (at === -1) return b;
      const junk = pick(rnd, [
        '"',
        '<',
        '>',
        '\\',
        '%00',
        '%',
        ';',
        ',',
        ';branch=',
        ';tag=',
        '[',
        ']',
        '[::1',
        '@',
        'sip:',
        '\u00e9',
        '\ud83d\ude00',
      ]);
      return Buffer.concat([b.subarray(0, at + 1), Buffer.from(junk, 'utf8'), b.subarray(at + 1)]);
    }
    default:
      return Buffer.from(b);
  }
}

/** 1–4 stacked mutations, capped at 256 KiB. */
export function mutate(rnd: Rnd, seeds: readonly Buffer[]): Buffer {
  let b = pick(rnd, seeds);
  for (let n = 1 + int(rnd, 4); n > 0; n--) {
    b = mutateOnce(rnd, b, pick(rnd, seeds));
    if (b.length > 262_144) b = b.subarray(0, 262_144);
  }
  return b;
}

/** Well-formed messages toward a proxy listening on proxyPort, plus the whole torture corpus. */
export function seedMessages(proxyPort: number, clientPort: number): Buffer[] {
  const seeds: Buffer[] = loadCorpus().map((c) => c.wire);
  const sdp =
    'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';
  const route = `Route: <sip:${HOST}:${proxyPort};lr>`;
  seeds.push(
    sipRequest({
      viaPort: clientPort,
      branch: 'z9hG4bK-s1',
      callId: 'seed-1@x',
      body: sdp,
      extra: ['Content-Type: application/sdp', 'Session-ID: ab30317f1a784dc48ff824d0d3715d86'],
    }),
    sipRequest({
      method: 'ACK',
      viaPort: clientPort,
      branch: 'z9hG4bK-s2',
      callId: 'seed-1@x',
      toTag: 't',
      extra: [route],
    }),
    sipRequest({
      method: 'BYE',
      viaPort: clientPort,
      branch: 'z9hG4bK-s3',
      callId: 'seed-1@x',
      cseq: 2,
      toTag: 't',
      extra: [route],
    }),
    sipRequest({ method: 'CANCEL', viaPort: clientPort, branch: 'z9hG4bK-s1', callId: 'seed-1@x' }),
    sipRequest({
      method: 'REGISTER',
      viaPort: clientPort,
      branch: 'z9hG4bK-s4',
      callId: 'seed-2@x',
      extra: [
        'Contact: <sip:a@127.0.0.1>;expires=60',
        'Authorization: Digest username="a", realm="r", nonce="n", uri="sip:r", response="0"',
      ],
    }),
    sipRequest({
      method: 'OPTIONS',
      viaPort: clientPort,
      branch: 'z9hG4bK-s5',
      callId: 'seed-3@x',
      extra: ['traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'tracestate: a=1'],
    }),
    sipRequest({
      viaPort: clientPort,
      branch: 'z9hG4bK-s6',
      callId: 'seed-4@x',
      body: `${sdp}${'a=x\r\n'.repeat(300)}`,
      extra: ['Content-Type: application/sdp'],
    }),
    sipRequest({
      method: 'INVITE',
      viaPort: clientPort,
      branch: 'z9hG4bK-s7',
      callId: 'seed-5@x',
      toTag: 'tt',
      extra: [route, 'Proxy-Require: foo'],
    }),
  );
  // Responses whose top Via is the proxy's: they go through the response path.
  const ownVia = `Via: SIP/2.0/UDP ${HOST}:${proxyPort};branch=z9hG4bK-sS0123456789ab01234567`;
  for (const status of ['100 Trying', '180 Ringing', '200 OK', '486 Busy Here', '603 Decline']) {
    seeds.push(
      Buffer.from(
        `SIP/2.0 ${status}\r\n${ownVia}\r\nVia: SIP/2.0/UDP ${HOST}:${clientPort};branch=z9hG4bK-s1;rport=${clientPort};received=${HOST}\r\nFrom: <sip:caller@x>;tag=ft1\r\nTo: <sip:service@x>;tag=t\r\nCall-ID: seed-1@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
        'latin1',
      ),
    );
  }
  return seeds;
}

export interface FuzzOptions {
  count: number;
  seed: number;
  ratePerSecond: number;
  /** Fraction of messages sent over UDP (the rest over TCP). */
  udpShare?: number;
  /** Longest stdout line accepted, bytes. */
  maxLogLineBytes?: number;
  /** Limits for the child's config (smaller values exercise more limits). */
  limits?: Record<string, unknown>;
  /** On a crash: find the message that causes it, shrink it, write it here. */
  crashDir?: string | null;
  progress?: (sent: number, rssKb: number) => void;
}

export interface FuzzResult {
  sentUdp: number;
  sentTcp: number;
  tcpConnections: number;
  upstreamReceived: number;
  upstreamAnswersMutated: number;
  exited: { code: number | null; signal: string | null } | null;
  /** Stack traces or error lines the child wrote to stderr. */
  stderr: string;
  logLines: number;
  badLogLines: string[];
  longestLogLine: number;
  rssStartKb: number;
  rssMaxKb: number;
  rssEndKb: number;
  fdStart: number;
  fdEnd: number;
  transactionsAtEnd: number;
  healthyAfter: boolean;
  durationSeconds: number;
  crashFiles: string[];
}

/** The fuzz upstream: answers what reaches it (valid or mutated), on UDP and TCP, counting. */
class FuzzUpstream {
  received = 0;
  mutated = 0;
  private udp: UdpSocket | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;
  private readonly rnd: Rnd;
  private seeds: Buffer[] = [];

  constructor(seed: number) {
    this.rnd = mulberry32(seed ^ 0x5eed);
  }

  async start(port: number, seeds: Buffer[]): Promise<void> {
    this.seeds = seeds;
    this.port = port;
    const udp = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    udp.on('error', () => {});
    udp.on('message', (b: Buffer, r: RemoteInfo) =>
      this.answer(b, (out) => udp.send(out, r.port, r.address)),
    );
    await new Promise<void>((res) => udp.bind(port, HOST, () => res()));
    this.udp = udp;
    const server = createServer((s) => {
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => this.sockets.delete(s));
      let pending = '';
      s.on('data', (d: Buffer) => {
        pending += d.toString('latin1');
        if (pending.length > 1_000_000) pending = '';
        for (let i = pending.indexOf('\r\n\r\n'); i !== -1; i = pending.indexOf('\r\n\r\n')) {
          const head = pending.slice(0, i + 4);
          const cl = Number(/\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec(head)?.[1] ?? '0');
          if (pending.length < i + 4 + cl) break;
          const msg = Buffer.from(pending.slice(0, i + 4 + cl), 'latin1');
          pending = pending.slice(i + 4 + cl);
          this.answer(msg, (out) => {
            if (!s.destroyed) s.write(out);
          });
        }
      });
    });
    server.on('error', () => {});
    await new Promise<void>((res) => server.listen(port, HOST, () => res()));
    this.server = server;
  }

  /** Sends from the upstream's own address: the proxy sees these as coming from upstream. */
  sendUdp(b: Buffer, port: number): void {
    this.udp?.send(b, port, HOST);
  }

  private answer(b: Buffer, send: (out: Buffer) => void): void {
    this.received++;
    if (b.toString('latin1', 0, 4) === 'SIP/' || b.toString('latin1', 0, 4) === 'ACK ') return;
    if (b.indexOf('\r\n\r\n') === -1) return;
    const r = this.rnd();
    if (r < 0.2) return;
    const ok = responseTo(b, r < 0.35 ? 486 : 200, 'X');
    if (r < 0.6) {
      send(ok);
      return;
    }
    this.mutated++;
    send(mutate(this.rnd, [ok, ...this.seeds.slice(0, 3)]));
  }

  async close(): Promise<void> {
    const { udp, server } = this;
    this.udp = null;
    this.server = null;
    await closePeer(this.sockets, udp, server);
  }
}

export interface FuzzTarget {
  child: ChildSipspan;
  proxyPort: number;
  upstreamPort: number;
  adminPort: number;
  dir: string;
}

/** A child sipspan for fuzzing: one route on UDP and TCP, short timers, debug stack traces on stderr. */
export async function startFuzzTarget(
  limits: Record<string, unknown> = {},
  upstreamPort?: number,
): Promise<FuzzTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-fuzz-'));
  const proxyPort = await freePort();
  const up = upstreamPort ?? (await freePort());
  const adminPort = await freePort();
  const file = await writeConfig(dir, {
    node: 'fuzz',
    admin: `${HOST}:${adminPort}`,
    routes: [
      {
        name: 'fuzz',
        listen: [`udp://${HOST}:${proxyPort}`, `tcp://${HOST}:${proxyPort}`],
        upstream: `udp://${HOST}:${up}`,
        trust_trace_headers: false,
      },
    ],
    timers: { t1_ms: 20, invite_provisional_ms: 2000, call_idle_ms: 5000 },
    limits: { max_transactions: 20_000, max_calls: 20_000, tcp_read_message_ms: 2000, ...limits },
  });
  const child = await ChildSipspan.spawn(file, { keepLines: 2000, env: { SIPSPAN_DEBUG: '1' } });
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline && child.exit === null) {
    if (await adminUp(adminPort)) break;
    await sleep(50);
  }
  return { child, proxyPort, upstreamPort: up, adminPort, dir };
}

async function adminUp(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://${HOST}:${port}/healthz`, { signal: AbortSignal.timeout(300) });
    return r.status === 200;
  } catch {
    return false;
  }
}

/** What in stderr counts as a problem: stack frames, "Error", "Unhandled", "uncaught". */
export function stderrProblems(stderr: string): string {
  return /(\n\s+at |Error|Unhandled|uncaught|FATAL)/i.test(stderr) ? stderr : '';
}

/** Check one stdout line: valid JSON object on one line, bounded. Returns a problem or null. */
export function checkLogLine(line: string, maxBytes: number): string | null {
  if (line === '') return null;
  if (Buffer.byteLength(line, 'utf8') > maxBytes)
    return `line of ${Buffer.byteLength(line)} bytes > ${maxBytes}`;
  if (line.includes('\r')) return 'line holds a CR';
  try {
    const v = JSON.parse(line);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object';
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  return null;
}

/** Send one message over a fresh connection and UDP to a fresh target; true when the target exits or logs a stack. */
async function crashes(msg: Buffer, limits: Record<string, unknown>): Promise<boolean> {
  const up = new FuzzUpstream(1);
  const upPort = await freePort();
  const target = await startFuzzTarget(limits, upPort);
  await up.start(upPort, [msg]);
  try {
    const c = createSocket('udp4');
    c.on('error', () => {});
    await new Promise<void>((r) => c.bind(0, HOST, () => r()));
    c.send(msg, target.proxyPort, HOST);
    up.sendUdp(msg, target.proxyPort);
    const s = connect({ host: HOST, port: target.proxyPort });
    s.on('error', () => {});
    s.write(msg);
    await sleep(400);
    s.destroy();
    c.close();
    return target.child.exit !== null || stderrProblems(target.child.stderr) !== '';
  } finally {
    await target.child.stop(1000);
    await up.close();
    rmSync(target.dir, { recursive: true, force: true });
  }
}

/** Delta debugging over bytes: the smallest message (by removing chunks) that still crashes. */
async function minimise(msg: Buffer, limits: Record<string, unknown>, budget = 60): Promise<Buffer> {
  let cur = msg;
  let n = 2;
  while (cur.length >= 2 && budget > 0) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i < cur.length && budget > 0; i += chunk) {
      const candidate = Buffer.concat([cur.subarray(0, i), cur.subarray(i + chunk)]);
      budget--;
      if (candidate.length > 0 && (await crashes(candidate, limits))) {
        cur = candidate;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  return cur;
}

/** Run the fuzz campaign against a fresh child sipspan. */
export async function runNetworkFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const rnd = mulberry32(opts.seed);
  const maxLine = opts.maxLogLineBytes ?? 16_384;
  const udpShare = opts.udpShare ?? 0.6;
  const upPort = await freePort();
  const target = await startFuzzTarget(opts.limits ?? {}, upPort);
  const { child, proxyPort } = target;
  const client = createSocket({ type: 'udp4', sendBufferSize: 4 * 1024 * 1024 });
  client.on('error', () => {});
  client.on('message', () => {});
  await new Promise<void>((r) => client.bind(0, HOST, () => r()));
  const clientPort = client.address().port;
  const seeds = seedMessages(proxyPort, clientPort);
  const upstream = new FuzzUpstream(opts.seed);
  await upstream.start(upPort, seeds);

  const badLogLines: string[] = [];
  let longest = 0;
  child.onLine = (line) => {
    longest = Math.max(longest, Buffer.byteLength(line, 'utf8'));
    const p = checkLogLine(line, maxLine);
    if (p !== null && badLogLines.length < 20) badLogLines.push(`${p}: ${line.slice(0, 300)}`);
  };

  const recent: Buffer[] = [];
  const tcp: Socket[] = [];
  let tcpConnections = 0;
  const openTcp = (): Socket => {
    tcpConnections++;
    const s = connect({ host: HOST, port: proxyPort });
    s.on('error', () => {});
    s.on('data', () => {});
    return s;
  };
  for (let i = 0; i < 4; i++) tcp.push(openTcp());
  await sleep(100);
  const rssStart = child.rssKb();
  const fdStart = child.fdCount();
  let rssMax = rssStart;
  let sentUdp = 0;
  let sentTcp = 0;
  const started = performance.now();
  let i = 0;
  while (i < opts.count && child.exit === null) {
    const due = Math.min(
      opts.count,
      Math.floor(((performance.now() - started) / 1000) * opts.ratePerSecond) + 1,
    );
    while (i < due && child.exit === null) {
      const msg = mutate(rnd, seeds);
      recent.push(msg);
      if (recent.length > 300) recent.shift();
      const r = rnd();
      if (r < udpShare) {
        if (msg.length <= 65_000) {
          if (rnd() < 0.25) upstream.sendUdp(msg, proxyPort);
          else client.send(msg, proxyPort, HOST);
        }
        sentUdp++;
      } else {
        const k = int(rnd, tcp.length);
        if (tcp[k].destroyed || tcp[k].readableEnded) {
          tcp[k].destroy();
          tcp[k] = openTcp();
        }
        // Split at random offsets: the framer must not care where the stream is cut.
        const cut = int(rnd, msg.length + 1);
        tcp[k].write(msg.subarray(0, cut));
        if (cut < msg.length) tcp[k].write(msg.subarray(cut));
        sentTcp++;
      }
      i++;
    }
    if (i % 500 < 50) {
      const rss = child.rssKb();
      rssMax = Math.max(rssMax, rss);
      opts.progress?.(i, rss);
    }
    await sleep(5);
  }
  await sleep(500);
  rssMax = Math.max(rssMax, child.rssKb());

  // Still forwarding: a plain OPTIONS through the proxy gets its answer.
  let healthy = false;
  if (child.exit === null) {
    const uac = await MiniUac.open();
    const res = await uac.transact(
      sipRequest({
        method: 'OPTIONS',
        viaPort: uac.port,
        branch: 'z9hG4bK-after-fuzz',
        callId: 'after-fuzz@x',
      }),
      proxyPort,
      { callId: 'after-fuzz@x', method: 'OPTIONS', retransmitMs: 100, deadlineMs: 3000 },
    );
    await uac.close();
    healthy = res !== null && (res.status === 200 || res.status === 486);
  }
  const status = await getJson(`http://${HOST}:${target.adminPort}/api/status`);
  const result: FuzzResult = {
    sentUdp,
    sentTcp,
    tcpConnections,
    upstreamReceived: upstream.received,
    upstreamAnswersMutated: upstream.mutated,
    exited: child.exit,
    stderr: stderrProblems(child.stderr),
    logLines: child.stdoutLineCount,
    badLogLines,
    longestLogLine: longest,
    rssStartKb: rssStart,
    rssMaxKb: rssMax,
    rssEndKb: child.rssKb(),
    fdStart,
    fdEnd: child.fdCount(),
    transactionsAtEnd: Number(status?.transactions ?? -1),
    healthyAfter: healthy,
    durationSeconds: (performance.now() - started) / 1000,
    crashFiles: [],
  };
  for (const s of tcp) s.destroy();
  await new Promise<void>((r) => client.close(() => r()));
  await child.stop(3000);
  await upstream.close();
  rmSync(target.dir, { recursive: true, force: true });

  if ((result.exited !== null || result.stderr !== '') && opts.crashDir) {
    // Find which of the last messages crashes a fresh process on its own, then shrink it.
    mkdirSync(opts.crashDir, { recursive: true });
    for (let k = recent.length - 1; k >= 0 && result.crashFiles.length < 3; k--) {
      if (!(await crashes(recent[k], opts.limits ?? {}))) continue;
      const small = await minimise(recent[k], opts.limits ?? {});
      const name = `crash-${createHash('sha256').update(small).digest('hex').slice(0, 12)}.bin`;
      writeFileSync(join(opts.crashDir, name), small);
      result.crashFiles.push(name);
    }
  }
  return result;
}

/** Replay stored crash inputs against a fresh child: true when none crashes it. */
export async function replayCrashes(
  files: Buffer[],
  limits: Record<string, unknown> = {},
): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const f of files) out.push(!(await crashes(f, limits)));
  return out;
}
