import type { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { HttpListener, sendJson, sendText } from './admin/http-listener.ts';
import { formatEndpoint, formatHostPort } from './config/endpoint.ts';
import { type HeapGuardLimits, resolveHeapGuardLimits, v8HeapLimitMb } from './config/heap-limits.ts';
import type { Config } from './config/schema.ts';
import { type HeapGuardLevel, heapGuardLevel, LiveHeap } from './heap-guard.ts';
import { channels } from './observe/channels.ts';
import { LegCorrelator } from './observe/leg-correlator.ts';
import { Observer } from './observe/observer.ts';
import type { ProcessStateEvent } from './observe/records.ts';
import { type Sampler, samplerFromEnv } from './observe/sampler.ts';
import { ProxyEngine } from './proxy/proxy-engine.ts';
import { type LookupFn, Resolver } from './proxy/resolver.ts';
import { RouteRuntime } from './proxy/route-runtime.ts';
import type { Sink } from './sinks/sink.ts';
import type { UdpIo } from './transport/batched-udp.ts';
import type { Flow } from './transport/flow.ts';
import type { InboundHandler } from './transport/inbound-handler.ts';
import type { ReceiveClock } from './transport/receive-clock.ts';
import type { UnsentMessage } from './transport/tcp-connection.ts';
import { TcpTransport } from './transport/tcp-transport.ts';
import { UdpListener } from './transport/udp-listener.ts';
import { HEADER_ID_COUNT } from './wire/header-names.ts';
import type { ScanResult } from './wire/scan.ts';
import type { ScanCode } from './wire/scan-codes.ts';
import { DEFAULT_STREAM_LIMITS, type StreamFramerLimits } from './wire/stream-framer.ts';

/** Starts sinks against a running instance; given by the caller so tests and the demo choose theirs. */
export type SinkFactory = (app: Sipspan) => Promise<Sink[]> | Sink[];

export interface StartOptions {
  sinks?: SinkFactory;
  sampler?: Sampler;
  /** Open sockets with SO_REUSEPORT (one process per core). */
  reusePort?: boolean;
  env?: NodeJS.ProcessEnv;
  /** How host names are looked up: node:dns's lookup unless given (a host's own resolution; tests that time it). */
  lookup?: LookupFn;
}

const SWEEP_INTERVAL_MS = 250;
const HEAP_CHECK_INTERVAL_MS = 1000;
const RESOLVE_INTERVAL_MS = 30_000;
const BUILT_IN_TRACE_HEADERS = new Set(['traceparent', 'tracestate', 'x-trace-id']);

/**
 * The composition root: builds routes, transports, the proxy engine, the
 * observing tables, the admin listener and the sinks, and stops them in order.
 */
export class Sipspan {
  readonly config: Config;
  /** The configuration as it applies now: the start one with what reloads changed while running. */
  private effective: Config;
  readonly routes: RouteRuntime[] = [];
  readonly observer: Observer;
  readonly engine: ProxyEngine;
  readonly tcp: TcpTransport;
  readonly resolver: Resolver;
  readonly admin: HttpListener;
  /** Each route's /metrics listener (index = route index; null when the route has none). */
  readonly routeHttp: (HttpListener | null)[] = [];
  sinks: Sink[] = [];
  readonly startedAt = Date.now();
  private sweepTimer: NodeJS.Timeout | null = null;
  private resolveTimer: NodeJS.Timeout | null = null;
  private lastHeapCheck = 0;
  private heapState: HeapGuardLevel = 'ok';
  readonly heapLimits: HeapGuardLimits;
  private readonly liveHeap = new LiveHeap();
  private bound = false;
  draining = false;
  private stopping: Promise<void> | null = null;

  private constructor(config: Config, opts: StartOptions) {
    this.config = config;
    this.effective = config;
    const limits = config.limits;
    this.resolver = new Resolver({
      maxWaiting: limits.max_pending_lookups,
      ...(opts.lookup === undefined ? {} : { lookup: opts.lookup }),
    });
    this.heapLimits = resolveHeapGuardLimits(limits, v8HeapLimitMb());
    const framerLimits: StreamFramerLimits = {
      ...DEFAULT_STREAM_LIMITS,
      maxMessageBytes: limits.max_message_bytes,
      maxHeaderFields: limits.max_header_fields,
      maxFieldBytes: limits.max_field_bytes,
    };
    const tracing = config.tracing;
    this.observer = new Observer(
      {
        maxTransactions: limits.max_transactions,
        maxCalls: limits.max_calls,
        t1Ms: config.timers.t1_ms,
        inviteProvisionalMs: config.timers.invite_provisional_ms,
        callIdleMs: config.timers.call_idle_ms,
        sampler: opts.sampler ?? samplerFromEnv(opts.env ?? process.env),
        logSampleRatio: config.logs.sample_ratio,
        // A leg joins a call on another route of this process: with fewer than two such routes no
        // leg can be matched, and the keys of every initial INVITE would be read and kept for nothing.
        correlator:
          config.routes.filter((r) => r.b2bua_correlation).length >= 2
            ? new LegCorrelator(tracing.correlation_window_ms, Math.min(limits.max_calls, 100_000))
            : null,
      },
      config.routes.length,
    );
    const custom = [tracing.traceparent_header, tracing.tracestate_header, tracing.trace_id_header]
      .map((n) => n.toLowerCase())
      .filter((n) => !BUILT_IN_TRACE_HEADERS.has(n));
    const routes = this.routes;
    // The transports need the handler before the engine exists: hand them one bound later.
    const handler = new LateHandler();
    this.tcp = new TcpTransport(handler, framerLimits, {
      maxConnections: limits.tcp_max_connections,
      maxConnectionsPerIp: limits.tcp_max_connections_per_ip,
      firstByteMs: limits.tcp_first_byte_ms,
      readMessageMs: limits.tcp_read_message_ms,
      idleMs: limits.tcp_idle_ms,
      writeQueueBytes: limits.tcp_write_queue_bytes,
      writeQueueTotalBytes: limits.tcp_write_queue_total_bytes,
      writeStallMs: limits.tcp_write_stall_ms,
    });
    this.tcp.reusePort = opts.reusePort ?? false;
    config.routes.forEach((rc, index) => {
      let udp4: UdpListener | null = null;
      let udp6: UdpListener | null = null;
      for (const l of rc.listen) {
        if (l.transport !== 'udp') continue;
        const family = l.host.includes(':') ? 6 : 4;
        const listener = new UdpListener(
          index,
          l.host,
          l.port,
          family,
          handler,
          framerLimits,
          opts.reusePort ?? false,
          limits.udp_socket_buffer_bytes,
          config.udp_io,
        );
        if (family === 6 && udp6 === null) udp6 = listener;
        else if (family === 4 && udp4 === null) udp4 = listener;
      }
      const route = new RouteRuntime(index, rc, udp4, udp6);
      if (opts.reusePort === true && rc.advertise === undefined) {
        // Processes sharing a port: each also binds a port of its own and names it in its Via, so the
        // responses to the requests it forwarded come back to it (the kernel spreads datagrams on a
        // shared port by source address, and every response from a peer has the same one).
        const own = (l: UdpListener | null) =>
          l === null
            ? null
            : new UdpListener(
                index,
                l.host,
                0,
                l.family,
                handler,
                framerLimits,
                false,
                limits.udp_socket_buffer_bytes,
                config.udp_io,
              );
        route.ownUdp4 = own(udp4);
        route.ownUdp6 = own(udp6);
      }
      routes.push(route);
    });
    this.engine = new ProxyEngine(routes, this.observer, this.tcp, this.resolver, {
      traceHeaders: {
        traceparent: tracing.traceparent_header,
        tracestate: tracing.tracestate_header,
        traceId: tracing.trace_id_header,
        custom,
        correlation: tracing.correlation_headers,
      },
      shedding: false,
    });
    handler.target = this.engine;
    this.admin = new HttpListener(config.admin.host, config.admin.port);
    void HEADER_ID_COUNT;
  }

  static async start(config: Config, opts: StartOptions = {}): Promise<Sipspan> {
    const app = new Sipspan(config, opts);
    publishState({
      state: 'starting',
      detail: { node: config.node, routes: config.routes.map((r) => r.name) },
    });
    try {
      await app.bindListeners();
      app.installAdminRoutes();
      for (let i = 0; i < config.routes.length; i++) {
        const m = config.routes[i].metrics;
        app.routeHttp.push(m === undefined ? null : new HttpListener(m.host, m.port));
      }
      app.sinks = opts.sinks === undefined ? [] : await opts.sinks(app);
      await app.admin.listen();
      for (const h of app.routeHttp) if (h !== null) await h.listen();
    } catch (err) {
      // Whatever started must stop, or a half-started process would live on with nothing serving it.
      for (const sink of [...app.sinks].reverse()) await sink.shutdown().catch(() => {});
      await app.closeSockets();
      throw err;
    }
    app.sweepTimer = setInterval(() => app.sweep(), SWEEP_INTERVAL_MS);
    app.sweepTimer.unref();
    app.liveHeap.start();
    app.checkHeap();
    app.resolveTimer = setInterval(() => void app.resolveUpstreams(), RESOLVE_INTERVAL_MS);
    app.resolveTimer.unref();
    const buffers = app.udpBuffers;
    if (buffers?.capped) {
      // A burst or a collector pause longer than the buffer holds is lost in the kernel, before sipspan
      // sees it (counted in sipspan_udp_receive_drops_total): said once, where the operator looks first.
      publishState({
        state: 'udp-buffers-capped',
        detail: {
          ...buffers,
          hint: `the kernel granted less than limits.udp_socket_buffer_bytes: raise net.core.rmem_max and net.core.wmem_max to at least ${buffers.asked_bytes} (sysctl, on the host)`,
        },
      });
    }
    const io = app.udpIo;
    if (io.reason !== undefined) {
      // Forwarding works the same, at a higher CPU cost per message: said once, at start.
      publishState({
        state: 'udp-io-dgram',
        detail: {
          reason: io.reason,
          hint: 'udp_io is batched but UDP is read through node:dgram: run npm ci (or sh native/build.sh) where a C compiler and Node headers are installed',
        },
      });
    }
    const heap = app.heapLimits;
    if (heap.hardMb >= heap.v8HeapLimitMb) {
      // V8 aborts the process when the live heap reaches its limit: a guard set past it never acts.
      publishState({
        state: 'heap-guard-unreachable',
        detail: {
          ...app.heapLimitsDetail(),
          hint: `limits.heap_hard_limit_mb is at or above V8's heap limit (${heap.v8HeapLimitMb} MiB, from the memory limit of the container or --max-old-space-size): set it lower, or to auto`,
        },
      });
    }
    publishState({ state: 'ready', detail: app.describe() });
    return app;
  }

  private async bindListeners(): Promise<void> {
    for (const route of this.routes) {
      for (const l of route.udpSockets()) await l.bind(this.config.receive_clock);
      for (const l of route.config.listen) {
        if (l.transport === 'tcp') {
          const port = await this.tcp.listen(route.info.index, l.host, l.port);
          if (route.tcpPort === 0) route.tcpPort = port;
        }
      }
      route.finish();
    }
    this.bound = true;
    await this.resolveUpstreams();
  }

  /** Resolve every upstream name (compose service names); failures leave /readyz false and are retried. */
  async resolveUpstreams(): Promise<void> {
    await Promise.all(
      this.routes.map(async (route) => {
        try {
          const r = await this.resolver.resolve(route.upstream.host, true);
          route.upstreamResolved(r.address, r.family);
        } catch {
          this.observer.publishLimit(route.info, 'upstream_resolve');
        }
      }),
    );
  }

  get ready(): boolean {
    return this.bound && !this.draining && this.routes.every((r) => r.upstreamAddress !== '');
  }

  /**
   * A configuration read again (SIGHUP). What can change while running is
   * applied: `logs.level` (by the log sink) and `logs.sample_ratio`. Every
   * other difference is named as needing a restart and left as it was: routes,
   * listeners and limits belong to sockets and tables already in use.
   */
  reload(next: Config): { applied: string[]; needsRestart: string[] } {
    const changed = changedPaths(this.effective, next);
    const applied = changed.filter((p) => LIVE_SETTINGS.has(p));
    const needsRestart = changed.filter((p) => !LIVE_SETTINGS.has(p));
    this.effective = {
      ...this.effective,
      logs: { ...this.effective.logs, level: next.logs.level, sample_ratio: next.logs.sample_ratio },
    };
    this.observer.setLogSampleRatio(next.logs.sample_ratio);
    publishState({
      state: 'reloaded',
      detail: { applied, needs_restart: needsRestart, log_level: next.logs.level },
    });
    return { applied, needsRestart };
  }

  /** SIGHUP with no file to read again (a process started from flags): nothing changes, and it says why. */
  reloadIgnored(reason: string): void {
    publishState({ state: 'reload-ignored', detail: { reason } });
  }

  /** A configuration read again that is not valid: nothing changes; the problems are logged. */
  reloadFailed(problems: readonly { path: string; message: string }[]): void {
    publishState({ state: 'reload-failed', detail: { problems } });
  }

  describe(): Record<string, unknown> {
    return {
      node: this.config.node,
      admin: formatHostPort(this.admin.host, this.admin.port),
      routes: this.routes.map((r) => ({
        name: r.info.name,
        listen: r.config.listen.map(
          (l) =>
            `${l.transport}://${formatHostPort(l.host, l.transport === 'udp' ? r.udpPort || l.port : r.tcpPort || l.port)}`,
        ),
        upstream: formatEndpoint(r.upstream),
        upstream_address: r.upstreamAddress,
        advertised: r.advertisedHost,
        metrics: this.routeHttp[r.info.index]
          ? formatHostPort(this.routeHttp[r.info.index]!.host, this.routeHttp[r.info.index]!.port)
          : null,
      })),
      receive_clock: this.receiveClock,
      udp_io: this.udpIo,
      udp_buffers: this.udpBuffers,
      heap_limits: this.heapLimitsDetail(),
      // bin/sipspan chooses it: on one CPU, V8's collector runs on the event loop's thread only.
      gc: process.execArgv.includes('--single-threaded-gc') ? 'single_threaded' : 'parallel',
    };
  }

  /** The smallest UDP socket buffers the kernel granted, against what was asked; null when none is known. */
  get udpBuffers(): {
    asked_bytes: number;
    receive_bytes: number;
    send_bytes: number;
    capped: boolean;
  } | null {
    let receive = Number.POSITIVE_INFINITY;
    let send = Number.POSITIVE_INFINITY;
    for (const route of this.routes) {
      for (const l of route.udpSockets()) {
        if (l.buffers === null) continue;
        receive = Math.min(receive, l.buffers.receiveBytes);
        send = Math.min(send, l.buffers.sendBytes);
      }
    }
    if (receive === Number.POSITIVE_INFINITY) return null;
    const asked = this.config.limits.udp_socket_buffer_bytes;
    return {
      asked_bytes: asked,
      receive_bytes: receive,
      send_bytes: send,
      capped: receive < asked || send < asked,
    };
  }

  /** How UDP sockets are read, and why not as configured when they are not. */
  get udpIo(): { mode: UdpIo; reason?: string } {
    const reason = this.firstUdpProblem((l) => l.ioProblem);
    return reason === null ? { mode: this.config.udp_io } : { mode: 'dgram', reason };
  }

  /** The clock UDP datagrams are timed with, and why it is not the configured one when it is not. */
  get receiveClock(): { udp: ReceiveClock; reason?: string } {
    const reason = this.firstUdpProblem((l) => l.clockProblem);
    return reason === null ? { udp: this.config.receive_clock } : { udp: 'event_loop', reason };
  }

  /** The first UDP socket's reason for falling back from what was configured, or null when none fell back. */
  private firstUdpProblem(problemOf: (l: UdpListener) => string | null): string | null {
    for (const route of this.routes) {
      for (const l of route.udpSockets()) {
        const problem = problemOf(l);
        if (problem) return problem;
      }
    }
    return null;
  }

  private installAdminRoutes(): void {
    this.admin.handle('/healthz', (_req, res) => sendText(res, 200, 'ok\n'));
    this.admin.handle('/readyz', (_req, res) => {
      const ready = this.ready;
      sendJson(res, ready ? 200 : 503, {
        ready,
        draining: this.draining,
        routes: this.routes.map((r) => ({ name: r.info.name, upstream_resolved: r.upstreamAddress !== '' })),
      });
    });
    this.admin.handle('/api/status', (_req, res) =>
      sendJson(res, 200, {
        ...this.describe(),
        uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
        transactions: this.observer.openTransactionCount,
        ended_transactions: this.observer.endedTransactionCount,
        calls: this.observer.callCount,
        b2bua_legs_ambiguous: this.observer.ambiguousLegCount,
        tcp_connections: this.tcp.connectionCount,
        heap_guard: this.heapState,
        heap_live_mb: Math.round(this.liveHeap.mb),
      }),
    );
  }

  private sweep(): void {
    const now = performance.now();
    this.observer.sweep(now);
    this.tcp.sweep(now);
    if (now - this.lastHeapCheck >= HEAP_CHECK_INTERVAL_MS) {
      this.lastHeapCheck = now;
      this.checkHeap();
    }
  }

  /** Heap guard: soft limit stops new observation state, hard limit sheds new INVITEs and TCP accepts. */
  private checkHeap(): void {
    const liveMb = this.liveHeap.mb;
    const next = heapGuardLevel(this.heapState, liveMb, this.heapLimits);
    if (next === this.heapState) return;
    this.heapState = next;
    this.observer.acceptNew = next === 'ok';
    this.engine.shedding = next === 'hard';
    this.tcp.acceptingPaused = next === 'hard';
    publishState({
      state: next === 'ok' ? 'heap-ok' : next === 'soft' ? 'heap-soft' : 'heap-hard',
      detail: { heap_live_mb: Math.round(liveMb), ...this.heapLimitsDetail() },
    });
  }

  get heapGuardState(): HeapGuardLevel {
    return this.heapState;
  }

  /** The live heap as the guard judges it. */
  get heapLiveBytes(): number {
    return this.liveHeap.mb * 1024 * 1024;
  }

  private heapLimitsDetail(): { soft_mb: number; hard_mb: number; v8_heap_limit_mb: number } {
    const l = this.heapLimits;
    return { soft_mb: l.softMb, hard_mb: l.hardMb, v8_heap_limit_mb: l.v8HeapLimitMb };
  }

  /**
   * Graceful stop (SIGTERM): stop accepting TCP, shed new calls, wait for
   * pending transactions up to the drain deadline, end what is left, flush and
   * stop the sinks in reverse order, close every socket.
   */
  stop(deadlineMs = this.config.timers.drain_ms): Promise<void> {
    if (this.stopping === null) this.stopping = this.doStop(deadlineMs);
    return this.stopping;
  }

  private async doStop(deadlineMs: number): Promise<void> {
    const started = performance.now();
    this.draining = true;
    this.engine.shedding = true;
    publishState({ state: 'draining', detail: { pending: this.pendingTotal() } });
    await this.tcp.stopListening();
    while (this.pendingTotal() > 0 && performance.now() - started < deadlineMs * 0.6) {
      await new Promise((r) => setTimeout(r, 50));
    }
    this.observer.endAll(performance.now());
    const left = Math.max(100, deadlineMs - (performance.now() - started));
    for (const sink of [...this.sinks].reverse()) {
      try {
        await sink.flush(left);
        await sink.shutdown();
      } catch {
        // A sink that cannot flush must not keep the process from stopping.
      }
    }
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.liveHeap.stop();
    if (this.resolveTimer !== null) clearInterval(this.resolveTimer);
    // Name lookups still in flight find the engine stopped and send nothing on closed sockets.
    this.engine.stopped = true;
    publishState({ state: 'stopped', detail: {} });
    await this.closeSockets();
  }

  private pendingTotal(): number {
    let n = 0;
    for (const r of this.routes) n += this.observer.pendingTransactions(r.info.index);
    return n;
  }

  private async closeSockets(): Promise<void> {
    await this.tcp.stopListening();
    this.tcp.closeAll();
    for (const r of this.routes) {
      for (const l of r.udpSockets()) await l.close();
    }
    await this.admin.close().catch(() => {});
    for (const h of this.routeHttp) if (h !== null) await h.close().catch(() => {});
  }
}

/** Settings a reload applies while running (dotted paths as changedPaths names them). */
const LIVE_SETTINGS = new Set(['logs.level', 'logs.sample_ratio']);

/** Dotted paths (`routes[0].upstream.port`) where two parsed configurations differ. */
export function changedPaths(a: unknown, b: unknown, path = ''): string[] {
  if (Object.is(a, b)) return [];
  if (
    typeof a !== 'object' ||
    typeof b !== 'object' ||
    a === null ||
    b === null ||
    Array.isArray(a) !== Array.isArray(b)
  )
    return [path];
  if (Array.isArray(a) && Array.isArray(b) && a.length !== b.length) return [path];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const out: string[] = [];
  for (const k of keys) {
    const next = Array.isArray(a) ? `${path}[${k}]` : path === '' ? k : `${path}.${k}`;
    out.push(...changedPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], next));
  }
  return out;
}

/** An InboundHandler whose target is set once the engine exists; plain calls, nothing allocated per message. */
class LateHandler implements InboundHandler {
  target: InboundHandler | null = null;

  onMessage(
    routeIndex: number,
    flow: Flow,
    result: ScanResult,
    datagram: Buffer | null,
    receivedAt: number,
  ): void {
    this.target!.onMessage(routeIndex, flow, result, datagram, receivedAt);
  }

  onBatchStart(): void {
    this.target!.onBatchStart();
  }

  onBatchEnd(): void {
    this.target!.onBatchEnd();
  }

  onStreamBroken(routeIndex: number, flow: Flow, code: ScanCode): void {
    this.target!.onStreamBroken(routeIndex, flow, code);
  }

  onLimit(routeIndex: number, limit: string): void {
    this.target!.onLimit(routeIndex, limit);
  }

  onConnectionFailed(
    routeIndex: number,
    kind: 'connect' | 'reset',
    address: string,
    port: number,
    unsent: UnsentMessage[],
  ): void {
    this.target!.onConnectionFailed(routeIndex, kind, address, port, unsent);
  }
}

function publishState(e: ProcessStateEvent): void {
  if (channels.processState.hasSubscribers) channels.processState.publish(e);
}
