import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { StreamFramerLimits } from '../wire/stream-framer.ts';
import type { InboundHandler } from './inbound-handler.ts';
import { TcpConnection, type TcpTimeouts } from './tcp-connection.ts';
import { WriteBudget } from './write-budget.ts';

export interface TcpLimits extends TcpTimeouts {
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Every connection's write queue together. */
  writeQueueTotalBytes: number;
}

/** Reconnect backoff toward a peer whose connections fail: 100 ms, doubling, at most 2 s. */
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2000;
/** A peer that has not failed for this long starts again from the first step. */
const BACKOFF_FORGET_MS = 4 * BACKOFF_MAX_MS;

interface Backoff {
  /** No new connection to the peer before this time (performance.now()). */
  until: number;
  delayMs: number;
}

interface TcpListenerEntry {
  routeIndex: number;
  host: string;
  port: number;
  server: Server;
}

/**
 * Every TCP connection of the process, inbound and outbound, in one table keyed
 * by the far end's `address|port`: a response goes back on the connection its
 * request came on, and requests toward a peer reuse an open connection to it
 * whichever side opened it.
 */
export class TcpTransport {
  private readonly handler: InboundHandler;
  private readonly framerLimits: StreamFramerLimits;
  private readonly limits: TcpLimits;
  private readonly listeners: TcpListenerEntry[] = [];
  private readonly connections = new Map<string, TcpConnection>();
  private readonly perIp = new Map<string, number>();
  /** Peers whose last outbound connection failed, keyed like connections; swept, bounded. */
  private readonly backoff = new Map<string, Backoff>();
  private nextId = 1;
  readonly writeBudget: WriteBudget;
  /** SO_REUSEPORT on listeners: one process per core shares a port. */
  reusePort = false;
  /** Set by the heap guard: refuse new inbound connections. */
  acceptingPaused = false;

  constructor(handler: InboundHandler, framerLimits: StreamFramerLimits, limits: TcpLimits) {
    this.handler = handler;
    this.framerLimits = framerLimits;
    this.limits = limits;
    this.writeBudget = new WriteBudget(limits.writeQueueTotalBytes);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  countForRoute(routeIndex: number): number {
    let n = 0;
    for (const c of this.connections.values()) if (c.routeIndex === routeIndex) n++;
    return n;
  }

  listen(routeIndex: number, host: string, port: number): Promise<number> {
    const server = createServer({ noDelay: true, pauseOnConnect: false }, (socket) =>
      this.onAccept(routeIndex, socket),
    );
    server.on('error', () => {});
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(
        { host, port, ipv6Only: host.includes(':'), backlog: 1024, reusePort: this.reusePort },
        () => {
          server.off('error', onError);
          const bound = server.address();
          const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
          this.listeners.push({ routeIndex, host, port: boundPort, server });
          resolve(boundPort);
        },
      );
    });
  }

  private onAccept(routeIndex: number, socket: Socket): void {
    const address = socket.remoteAddress ?? '';
    const port = socket.remotePort ?? 0;
    if (this.acceptingPaused) {
      this.handler.onLimit(routeIndex, 'heap_hard_limit');
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.limits.maxConnections) {
      this.handler.onLimit(routeIndex, 'tcp_max_connections');
      socket.destroy();
      return;
    }
    const fromIp = this.perIp.get(address) ?? 0;
    if (fromIp >= this.limits.maxConnectionsPerIp) {
      this.handler.onLimit(routeIndex, 'tcp_max_connections_per_ip');
      socket.destroy();
      return;
    }
    this.register(
      new TcpConnection(
        this.nextId++,
        socket,
        routeIndex,
        false,
        address,
        port,
        this.handler,
        this.framerLimits,
        this.limits,
        this.writeBudget,
      ),
    );
  }

  /** An open connection to address:port, or null. */
  find(address: string, port: number): TcpConnection | null {
    const c = this.connections.get(`${address}|${port}`);
    return c === undefined || c.closed ? null : c;
  }

  /**
   * An open connection to address:port, or a new outbound one (messages queue
   * until it connects). Null when none may be opened: the connection limit,
   * or the peer's last connection failed and its backoff has not run out.
   * The caller counts a null as a send failure and ends the request at once.
   */
  /**
   * The peer's connections failed lately (its backoff is still remembered, BACKOFF_FORGET_MS after
   * the last failure) and none is open now: a new one would most likely fail too.
   */
  failedRecently(address: string, port: number): boolean {
    if (this.backoff.size === 0 || this.find(address, port) !== null) return false;
    const b = this.backoff.get(`${address}|${port}`);
    return b !== undefined && performance.now() - b.until <= BACKOFF_FORGET_MS;
  }

  obtain(routeIndex: number, address: string, port: number): TcpConnection | null {
    const found = this.find(address, port);
    if (found !== null) return found;
    if (this.connections.size >= this.limits.maxConnections) {
      this.handler.onLimit(routeIndex, 'tcp_max_connections');
      return null;
    }
    if (this.backoff.size > 0) {
      const b = this.backoff.get(`${address}|${port}`);
      if (b !== undefined && performance.now() < b.until) return null;
    }
    const socket = connect({ host: address, port, noDelay: true });
    const conn = new TcpConnection(
      this.nextId++,
      socket,
      routeIndex,
      true,
      address,
      port,
      this.handler,
      this.framerLimits,
      this.limits,
      this.writeBudget,
    );
    this.register(conn);
    return conn;
  }

  private register(conn: TcpConnection): void {
    const ip = conn.flow.remoteAddress;
    this.connections.set(conn.key, conn);
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    conn.onClose = (c) => this.unregister(c);
  }

  private unregister(conn: TcpConnection): void {
    if (this.connections.get(conn.key) === conn) this.connections.delete(conn.key);
    const ip = conn.flow.remoteAddress;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
    if (conn.outbound) this.onOutboundClosed(conn);
  }

  /**
   * An outbound connection that ended in an error makes its peer back off,
   * so a refusing or resetting upstream costs one attempt per step instead of
   * one per request; one the peer answered on clears the backoff.
   */
  private onOutboundClosed(conn: TcpConnection): void {
    if (conn.errorCode === null) {
      if (conn.heardFrom) this.backoff.delete(conn.key);
      return;
    }
    const now = performance.now();
    const prev = this.backoff.get(conn.key);
    const delayMs =
      prev === undefined || now - prev.until > BACKOFF_FORGET_MS
        ? BACKOFF_FIRST_MS
        : Math.min(prev.delayMs * 2, BACKOFF_MAX_MS);
    if (prev === undefined && this.backoff.size >= this.limits.maxConnections) {
      // Bounded like the connection table: forget the oldest peer.
      const oldest = this.backoff.keys().next();
      if (!oldest.done) this.backoff.delete(oldest.value);
    }
    this.backoff.set(conn.key, { until: now + delayMs, delayMs });
    const kind = conn.connected ? 'reset' : 'connect';
    this.handler.onConnectionFailed(
      conn.routeIndex,
      kind,
      conn.flow.remoteAddress,
      conn.flow.remotePort,
      conn.takeUnsent(),
    );
  }

  /** Enforce the deadlines and count what the write queues hold; called by the proxy's coarse sweeper. */
  sweep(now: number): void {
    let queued = 0;
    for (const conn of this.connections.values()) {
      const hit = conn.checkDeadlines(now);
      if (hit !== null) this.handler.onLimit(conn.routeIndex, hit);
      else queued += conn.queuedBytes;
    }
    this.writeBudget.queuedBytes = queued;
    for (const [key, b] of this.backoff) if (now - b.until > BACKOFF_FORGET_MS) this.backoff.delete(key);
  }

  /** Stop accepting; existing connections stay until closeAll. */
  async stopListening(): Promise<void> {
    for (const l of this.listeners) l.server.close();
  }

  closeAll(): void {
    for (const conn of [...this.connections.values()]) conn.close();
  }
}
