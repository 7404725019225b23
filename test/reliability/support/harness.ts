/**
 * Shared pieces of the reliability tests: a seeded PRNG, request and response
 * builders that produce exact bytes, peers that count instead of storing (a
 * flood must not measure the test's own memory), channel collectors, an
 * in-process sipspan on free loopback ports, and a child `bin/sipspan run`
 * whose exit and output are observable.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import type { Channel } from 'node:diagnostics_channel';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type SinkFactory, Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { channels } from '../../../src/observe/channels.ts';
import type { LimitEvent } from '../../../src/observe/records.ts';
import type { LookupFn } from '../../../src/proxy/resolver.ts';
import { closePeer } from '../../support/raw-peers.ts';
import { freePort } from '../../support/sipp.ts';

export const HOST = '127.0.0.1';
export const REPO = resolve(import.meta.dirname, '..', '..', '..');
export const SIPSPAN_BIN = join(REPO, 'bin', 'sipspan');

// ───────────────────────────── randomness ─────────────────────────────

/** mulberry32: a small seeded PRNG, so every run of a fuzz or flood test sends the same bytes. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ───────────────────────────── messages ─────────────────────────────

export interface RequestSpec {
  method?: string;
  uri?: string;
  /** Transport of the sender's Via. */
  transport?: 'UDP' | 'TCP';
  viaHost?: string;
  viaPort: number;
  branch: string;
  callId: string;
  cseq?: number;
  fromTag?: string;
  toTag?: string | null;
  /** Extra header lines (without CRLF). */
  extra?: string[];
  body?: string;
}

/** A request as exact bytes (latin1), with a correct Content-Length. */
export function sipRequest(s: RequestSpec): Buffer {
  const method = s.method ?? 'INVITE';
  const body = s.body ?? '';
  const lines = [
    `${method} ${s.uri ?? 'sip:service@example.invalid'} SIP/2.0`,
    `Via: SIP/2.0/${s.transport ?? 'UDP'} ${s.viaHost ?? HOST}:${s.viaPort};branch=${s.branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:caller@example.invalid>;tag=${s.fromTag ?? 'ft1'}`,
    `To: <sip:service@example.invalid>${s.toTag ? `;tag=${s.toTag}` : ''}`,
    `Call-ID: ${s.callId}`,
    `CSeq: ${s.cseq ?? 1} ${method}`,
    ...(s.extra ?? []),
    `Content-Length: ${Buffer.byteLength(body, 'latin1')}`,
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
}

/** The To tag of a message (a response's: the answering side's), or undefined. */
export function toTagOf(message: Buffer): string | undefined {
  return /\r\n(?:to|t)\s*:[^\r\n]*;\s*tag=([^;\s\r\n>]+)/i.exec(message.toString('latin1'))?.[1];
}

/** Every Via line of a request (raw, without CRLF), in order. */
export function viaLines(request: Buffer): string[] {
  const head = request.toString('latin1', 0, request.indexOf('\r\n\r\n'));
  return head.split('\r\n').filter((l) => /^(via|v)\s*:/i.test(l));
}

/**
 * A response to a request as a UAS builds it (RFC 3261 §8.2.6.2): every Via,
 * From, To (tag added), Call-ID and CSeq copied.
 */
export function responseTo(request: Buffer, status: number, reason = 'OK', extra: string[] = []): Buffer {
  const head = request.toString('latin1', 0, request.indexOf('\r\n\r\n'));
  const lines = head.split('\r\n').slice(1);
  const pick = (re: RegExp) => lines.filter((l) => re.test(l));
  const to = pick(/^(to|t)\s*:/i)[0] ?? 'To: <sip:x@invalid>';
  const out = [
    `SIP/2.0 ${status} ${reason}`,
    ...pick(/^(via|v)\s*:/i),
    ...pick(/^(from|f)\s*:/i),
    status > 100 && !/;\s*tag=/i.test(to) ? `${to};tag=uas1` : to,
    ...pick(/^(call-id|i)\s*:/i),
    ...pick(/^cseq\s*:/i),
    ...extra,
    'Content-Length: 0',
  ];
  return Buffer.from(`${out.join('\r\n')}\r\n\r\n`, 'latin1');
}

// ───────────────────────────── peers ─────────────────────────────

/**
 * A UDP and TCP peer on one port that counts what arrives and stores nothing
 * unless asked (`keep`): the silent upstream of a flood. `onMessage` may answer.
 */
export class CountingPeer {
  port = 0;
  udpCount = 0;
  tcpBytes = 0;
  accepted = 0;
  readonly kept: Buffer[] = [];
  keep = 0;
  onDatagram: ((buf: Buffer, rinfo: RemoteInfo) => void) | null = null;
  private udp: UdpSocket | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  static async start(opts: { port?: number; tcp?: boolean } = {}): Promise<CountingPeer> {
    const p = new CountingPeer();
    const port = opts.port ?? (await freePort());
    const udp = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    udp.on('error', () => {});
    udp.on('message', (b: Buffer, r: RemoteInfo) => {
      p.udpCount++;
      if (p.kept.length < p.keep) p.kept.push(b);
      if (p.onDatagram !== null) p.onDatagram(b, r);
    });
    await new Promise<void>((res, rej) => {
      udp.once('error', rej);
      udp.bind(port, HOST, () => {
        udp.off('error', rej);
        res();
      });
    });
    p.udp = udp;
    p.port = port;
    if (opts.tcp !== false) {
      const server = createServer((s) => {
        p.accepted++;
        p.sockets.add(s);
        s.on('data', (c: Buffer) => {
          p.tcpBytes += c.length;
        });
        s.on('error', () => {});
        s.on('close', () => p.sockets.delete(s));
      });
      server.on('error', () => {});
      await new Promise<void>((res) => server.listen(port, HOST, () => res()));
      p.server = server;
    }
    return p;
  }

  send(buf: Buffer, port: number, address = HOST): void {
    this.udp?.send(buf, port, address);
  }

  async close(): Promise<void> {
    const { udp, server } = this;
    this.udp = null;
    this.server = null;
    await closePeer(this.sockets, udp, server);
  }
}

/** A TCP listener that accepts and immediately resets every connection (RST on connect). */
export async function startResettingServer(
  port: number,
): Promise<{ accepted(): number; close(): Promise<void> }> {
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    s.on('error', () => {});
    s.resetAndDestroy();
  });
  server.on('error', () => {});
  await new Promise<void>((res) => server.listen(port, HOST, () => res()));
  return {
    accepted: () => accepted,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Open a TCP connection and wait for it (or fail within timeoutMs). */
export function tcpConnect(port: number, host = HOST, timeoutMs = 2000): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      rej(new Error(`connect ${host}:${port} timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.setNoDelay(true);
      res(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      s.destroy();
      rej(e);
    });
  });
}

// ───────────────────────────── channels ─────────────────────────────

/** Everything published on a channel until stop(); bounded by `max` (later events only counted). */
export function collect<T>(ch: Channel, max = 1_000_000): { items: T[]; count(): number; stop(): void } {
  const items: T[] = [];
  let n = 0;
  const fn = (m: unknown) => {
    n++;
    if (items.length < max) items.push(m as T);
  };
  ch.subscribe(fn);
  return { items, count: () => n, stop: () => ch.unsubscribe(fn) };
}

/** Counts of `sipspan:limit:hit` by limit name. */
export function countLimits(): { counts: Map<string, number>; get(name: string): number; stop(): void } {
  const counts = new Map<string, number>();
  const fn = (m: unknown) => {
    const l = (m as LimitEvent).limit;
    counts.set(l, (counts.get(l) ?? 0) + 1);
  };
  channels.limitHit.subscribe(fn);
  return { counts, get: (n) => counts.get(n) ?? 0, stop: () => channels.limitHit.unsubscribe(fn) };
}

// ───────────────────────────── sipspan ─────────────────────────────

export interface RouteSpec {
  name: string;
  upstream: string;
  udp?: boolean;
  tcp?: boolean;
  trust_trace_headers?: boolean;
  record_route?: boolean;
  /** Give the route its own /metrics listener (a free port). */
  metrics?: boolean;
}

export interface StartedProxy {
  app: Sipspan;
  /** Listening port of each route (UDP and TCP share it). */
  ports: number[];
  stop(): Promise<void>;
}

/** sipspan in this process, every route on one free port for UDP and TCP. */
export async function startProxy(opts: {
  routes: RouteSpec[];
  limits?: Record<string, unknown>;
  timers?: Record<string, unknown>;
  tracing?: Record<string, unknown>;
  logs?: Record<string, unknown>;
  receiveClock?: 'kernel' | 'event_loop';
  udpIo?: 'batched' | 'dgram';
  sinks?: SinkFactory;
  lookup?: LookupFn;
}): Promise<StartedProxy> {
  const ports: number[] = [];
  const routes = [];
  for (const r of opts.routes) {
    const port = await freePort();
    ports.push(port);
    const listen: string[] = [];
    if (r.udp !== false) listen.push(`udp://${HOST}:${port}`);
    if (r.tcp !== false) listen.push(`tcp://${HOST}:${port}`);
    routes.push({
      name: r.name,
      listen,
      upstream: r.upstream,
      ...(r.trust_trace_headers === undefined ? {} : { trust_trace_headers: r.trust_trace_headers }),
      ...(r.record_route === undefined ? {} : { record_route: r.record_route }),
      ...(r.metrics ? { metrics: `${HOST}:${await freePort()}` } : {}),
    });
  }
  const config = buildConfig({
    node: 'reliability',
    admin: `${HOST}:0`,
    routes,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.timers ? { timers: opts.timers } : {}),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
    ...(opts.logs ? { logs: opts.logs } : {}),
    ...(opts.receiveClock ? { receive_clock: opts.receiveClock } : {}),
    ...(opts.udpIo ? { udp_io: opts.udpIo } : {}),
  });
  const app = await Sipspan.start(config, {
    ...(opts.sinks ? { sinks: opts.sinks } : {}),
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
  });
  return { app, ports, stop: () => app.stop(300) };
}

// ───────────────────────────── a child sipspan ─────────────────────────────

/** Children still running: killed when this process exits, so a failed test never leaves one behind. */
const LIVE_CHILDREN = new Set<ChildSipspan>();
process.once('exit', () => {
  for (const c of LIVE_CHILDREN) c.proc.kill('SIGKILL');
});

/** `bin/sipspan run --config FILE` as a child: exit, stdout lines and stderr are observable. */
export class ChildSipspan {
  readonly proc: ChildProcess;
  readonly stdoutLines: string[] = [];
  /** Lines counted beyond the kept ones. */
  stdoutLineCount = 0;
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private partial = '';
  private readonly keepLines: number;

  private constructor(proc: ChildProcess, keepLines: number) {
    this.proc = proc;
    this.keepLines = keepLines;
    proc.stdout?.on('data', (d: Buffer) => this.onStdout(d.toString('utf8')));
    proc.stderr?.on('data', (d: Buffer) => {
      if (this.stderr.length < 200_000) this.stderr += d.toString('utf8');
    });
    proc.once('exit', (code, signal) => {
      this.exit = { code, signal };
      LIVE_CHILDREN.delete(this);
    });
    LIVE_CHILDREN.add(this);
  }

  /** Lines checked as they come (so a long run keeps no lines but still checks every one). */
  onLine: ((line: string) => void) | null = null;

  private onStdout(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.stdoutLineCount++;
      if (this.onLine !== null) this.onLine(line);
      if (this.stdoutLines.length < this.keepLines) this.stdoutLines.push(line);
    }
  }

  /** Text after the last newline (a line still being written, or a line cut short by a crash). */
  get unterminated(): string {
    return this.partial;
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  static async spawn(configFile: string, opts: { keepLines?: number; env?: NodeJS.ProcessEnv } = {}) {
    const proc = spawn(SIPSPAN_BIN, ['run', '--config', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(opts.env ?? {}) },
    });
    return new ChildSipspan(proc, opts.keepLines ?? 100_000);
  }

  /** Resident set size in KiB from /proc (Linux), or -1 once exited. */
  rssKb(): number {
    return procRssKb(this.pid);
  }

  /** Open file descriptors, or -1. */
  fdCount(): number {
    return procFdCount(this.pid);
  }

  async waitExit(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.exit === null && performance.now() < deadline) await sleep(10);
    return this.exit !== null;
  }

  /** SIGTERM, then SIGKILL after graceMs. Always resolves once the process is gone. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exit !== null) return;
    this.proc.kill('SIGTERM');
    if (!(await this.waitExit(graceMs))) {
      this.proc.kill('SIGKILL');
      await this.waitExit(5000);
    }
  }
}

export function procRssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m === null ? -1 : Number(m[1]);
  } catch {
    return -1;
  }
}

export function procFdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Write a YAML (JSON is YAML) config for a child sipspan. */
export async function writeConfig(dir: string, config: Record<string, unknown>): Promise<string> {
  const file = join(dir, 'sipspan.yaml');
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

/** GET a JSON document from the admin listener; null when it does not answer. */
export async function getJson(url: string, timeoutMs = 1000): Promise<Record<string, unknown> | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return (await res.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** True when an optional module (a sink being built alongside) exists in the checkout. */
export function hasModule(relativeToRepo: string): boolean {
  return existsSync(join(REPO, relativeToRepo));
}

// ───────────────────────────── statistics ─────────────────────────────

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export function heapUsedMb(): number {
  return process.memoryUsage().heapUsed / (1024 * 1024);
}

/**
 * A full GC, so heap figures compare live data rather than garbage. `node --test`
 * runs each file without --expose-gc; V8 lets the flag be turned on at run time
 * and the function be fetched from a fresh context.
 */
export function gc(): void {
  if (fullGc === null) {
    setFlagsFromString('--expose-gc');
    fullGc = runInNewContext('gc') as () => void;
  }
  fullGc();
}
let fullGc: (() => void) | null = null;

/**
 * Call `send(i)` for i in 0..count-1 at `ratePerSecond`, in 5 ms ticks. Bounded
 * by count; resolves when the last one is sent. Pacing matters on loopback: a
 * sender that outruns the receiver fills its socket buffer and the kernel drops
 * datagrams (RcvbufErrors), which would be the test's loss, not the proxy's.
 */
export async function paced(
  count: number,
  ratePerSecond: number,
  send: (i: number) => void,
): Promise<number> {
  const started = performance.now();
  let i = 0;
  while (i < count) {
    const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * ratePerSecond) + 1);
    while (i < due) send(i++);
    if (i < count) await sleep(5);
  }
  return (performance.now() - started) / 1000;
}

// ───────────────────────────── a small UAC ─────────────────────────────

/** A dialog a MiniUac set up. */
export interface UacDialog {
  port: number;
  callId: string;
  fromTag: string;
  toTag: string;
  /** Final status of the INVITE, 0 when none came. */
  status: number;
  /** performance.now() of the final response, -1 when none. */
  at: number;
  n: number;
}

/** A response as a UAC sees it. */
export interface UacResponse {
  status: number;
  bytes: Buffer;
  at: number;
}

/**
 * A UDP UAC with timers given in milliseconds (so RFC timeouts scale down with
 * the proxy's T1): retransmits a request every `retransmitMs` until a response
 * (an INVITE stops at a provisional one, RFC 3261 §17.1.1.2), waits for the
 * final one up to `deadlineMs`. Every wait is bounded.
 */
export class MiniUac {
  readonly socket: UdpSocket;
  port = 0;
  private readonly waiters = new Map<string, (r: UacResponse) => void>();
  /** Every response received, by `callId|cseq method`. */
  readonly responses = new Map<string, UacResponse[]>();
  private seq = 0;

  private constructor() {
    this.socket = createSocket('udp4');
    this.socket.on('error', () => {});
    this.socket.on('message', (b: Buffer) => this.onMessage(b));
  }

  static async open(): Promise<MiniUac> {
    const u = new MiniUac();
    await new Promise<void>((r) => u.socket.bind(0, HOST, () => r()));
    u.port = u.socket.address().port;
    return u;
  }

  private onMessage(b: Buffer): void {
    const text = b.toString('latin1', 0, Math.min(b.length, 2048));
    const m = /^SIP\/2\.0 (\d{3})/.exec(text);
    if (m === null) return;
    const callId = /\r\n(?:call-id|i)\s*:\s*([^\r\n]+)/i.exec(text)?.[1]?.trim() ?? '';
    const cseq = /\r\ncseq\s*:\s*\d+\s+([^\r\n\s]+)/i.exec(text)?.[1] ?? '';
    const key = `${callId}|${cseq}`;
    const r: UacResponse = { status: Number(m[1]), bytes: b, at: performance.now() };
    const list = this.responses.get(key) ?? [];
    list.push(r);
    this.responses.set(key, list);
    this.waiters.get(key)?.(r);
  }

  send(bytes: Buffer, port: number): void {
    this.socket.send(bytes, port, HOST);
  }

  /**
   * Send a request and retransmit it until answered. Resolves with the final
   * response, or null when `deadlineMs` passes first.
   */
  async transact(
    request: Buffer,
    port: number,
    opts: { callId: string; method: string; retransmitMs: number; deadlineMs: number },
  ): Promise<UacResponse | null> {
    const key = `${opts.callId}|${opts.method}`;
    let final: UacResponse | null = null;
    let provisional = false;
    this.waiters.set(key, (r) => {
      if (r.status >= 200) final = r;
      else provisional = true;
    });
    const deadline = performance.now() + opts.deadlineMs;
    let next = performance.now() + opts.retransmitMs;
    this.send(request, port);
    try {
      while (final === null && performance.now() < deadline) {
        await sleep(5);
        if (performance.now() >= next && !(provisional && opts.method === 'INVITE')) {
          this.send(request, port);
          next = performance.now() + opts.retransmitMs;
        }
      }
    } finally {
      this.waiters.delete(key);
    }
    return final;
  }

  /**
   * INVITE (retransmitted until answered) and, on a 2xx, its ACK. With
   * record_route off, in-dialog requests go to the proxy, which sends them
   * upstream. Returns the final status (0 when none came before the deadline).
   */
  async establish(
    port: number,
    opts: { callId: string; retransmitMs: number; deadlineMs: number },
  ): Promise<UacDialog> {
    const n = ++this.seq;
    const dialog: UacDialog = {
      port,
      callId: opts.callId,
      fromTag: `f${n}`,
      toTag: '',
      status: 0,
      at: -1,
      n,
    };
    const invite = sipRequest({
      viaPort: this.port,
      branch: `z9hG4bK-mu${n}i`,
      callId: opts.callId,
      fromTag: dialog.fromTag,
    });
    const r = await this.transact(invite, port, { ...opts, method: 'INVITE' });
    if (r === null) return dialog;
    dialog.status = r.status;
    dialog.at = r.at;
    if (r.status >= 300) return dialog;
    dialog.toTag = toTagOf(r.bytes) ?? 'x';
    this.send(
      sipRequest({
        method: 'ACK',
        viaPort: this.port,
        branch: `z9hG4bK-mu${n}a`,
        callId: opts.callId,
        fromTag: dialog.fromTag,
        toTag: dialog.toTag,
      }),
      port,
    );
    return dialog;
  }

  /** BYE in the dialog, retransmitted until answered; its final status, or 0. */
  async hangUp(d: UacDialog, opts: { retransmitMs: number; deadlineMs: number }): Promise<number> {
    const bye = sipRequest({
      method: 'BYE',
      viaPort: this.port,
      branch: `z9hG4bK-mu${d.n}b`,
      callId: d.callId,
      cseq: 2,
      fromTag: d.fromTag,
      toTag: d.toTag,
    });
    const r = await this.transact(bye, d.port, { callId: d.callId, method: 'BYE', ...opts });
    return r?.status ?? 0;
  }

  /** A whole call: establish, hold, hang up. */
  async call(
    port: number,
    opts: { callId: string; retransmitMs: number; deadlineMs: number; holdMs?: number },
  ): Promise<{ invite: number; bye: number; answeredAt: number }> {
    const d = await this.establish(port, opts);
    if (d.status < 200 || d.status >= 300) return { invite: d.status, bye: 0, answeredAt: d.at };
    if (opts.holdMs) await sleep(opts.holdMs);
    const bye = await this.hangUp(d, opts);
    return { invite: d.status, bye, answeredAt: d.at };
  }

  close(): Promise<void> {
    return new Promise((r) => {
      try {
        this.socket.close(() => r());
      } catch {
        r();
      }
    });
  }
}
