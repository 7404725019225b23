import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { chunksLength } from '../wire/edit-list.ts';
import { FrameKind, StreamFramer, type StreamFramerLimits } from '../wire/stream-framer.ts';
import type { Flow } from './flow.ts';
import type { InboundHandler } from './inbound-handler.ts';
import type { WriteBudget } from './write-budget.ts';

const CRLF = Buffer.from('\r\n');

export interface TcpTimeouts {
  firstByteMs: number;
  readMessageMs: number;
  idleMs: number;
  writeQueueBytes: number;
  /** A write queue that has not moved a byte into the kernel for this long: the peer stopped reading. */
  writeStallMs: number;
}

/**
 * One TCP connection, inbound or outbound, with its framer and deadlines.
 *
 *   accepted/connected ──first byte──▶ reading ──message complete──▶ idle ─┐
 *        │ first_byte_ms                 │ read_message_ms              │  │ idle_ms
 *        └──────────────▶ closed ◀──────┴───────────────────────────────┘◀─┘
 *                           ▲
 *                           └── write_stall_ms: bytes queued, none taken by the kernel
 *
 * One coarse timer (the pool's sweeper) checks the deadlines: no timer per
 * connection or per message.
 */
/** A message queued on a connection that failed before it was sent, with the tag its sender gave it. */
export interface UnsentMessage {
  chunks: Buffer[];
  tag: unknown;
}

export class TcpConnection {
  readonly id: number;
  readonly socket: Socket;
  readonly framer: StreamFramer;
  readonly flow: Flow;
  readonly routeIndex: number;
  readonly outbound: boolean;
  /** `address|port` of the far end, the key of the connection table. */
  readonly key: string;
  private readonly handler: InboundHandler;
  private readonly timeouts: TcpTimeouts;
  connected: boolean;
  closed = false;
  private openedAt: number;
  private lastActivity: number;
  /** When the message now being read began, or -1 between messages. */
  private messageStartedAt = -1;
  private gotFirstByte = false;
  /** Messages written while an outbound connection is still connecting, with their senders' tags. */
  private pendingWrites: Buffer[][] | null = null;
  private pendingTags: unknown[] | null = null;
  private pendingBytes = 0;
  private readonly budget: WriteBudget;
  /** Bytes the kernel had taken at the last sweep that found a queue, and since when none more. */
  private drainedBytes = 0;
  private stalledSince = -1;
  /** The socket error that closed the connection (`ECONNREFUSED`, `ECONNRESET`, ...), or null. */
  errorCode: string | null = null;
  /** Whether the far end ever sent a byte: an outbound peer that did is healthy. */
  get heardFrom(): boolean {
    return this.gotFirstByte;
  }
  onClose: ((conn: TcpConnection) => void) | null = null;

  constructor(
    id: number,
    socket: Socket,
    routeIndex: number,
    outbound: boolean,
    remoteAddress: string,
    remotePort: number,
    handler: InboundHandler,
    limits: StreamFramerLimits,
    timeouts: TcpTimeouts,
    budget: WriteBudget,
  ) {
    this.id = id;
    this.socket = socket;
    this.routeIndex = routeIndex;
    this.outbound = outbound;
    this.handler = handler;
    this.timeouts = timeouts;
    this.budget = budget;
    this.framer = new StreamFramer(limits);
    this.connected = !outbound;
    this.key = `${remoteAddress}|${remotePort}`;
    this.flow = {
      transport: 'tcp',
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      remoteAddress,
      remotePort,
      connection: this,
    };
    const now = performance.now();
    this.openedAt = now;
    this.lastActivity = now;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.errorCode = err.code ?? 'EIO';
      this.close();
    });
    socket.on('close', () => this.close());
    if (outbound) {
      this.pendingWrites = [];
      this.pendingTags = [];
      socket.once('connect', () => this.onConnect());
    }
  }

  private onConnect(): void {
    this.connected = true;
    this.flow.localAddress = this.socket.localAddress ?? '';
    this.flow.localPort = this.socket.localPort ?? 0;
    const queued = this.pendingWrites;
    this.pendingWrites = null;
    this.pendingTags = null;
    this.pendingBytes = 0;
    if (queued !== null) for (const chunks of queued) this.write(chunks);
  }

  /**
   * The messages that never left because the connection failed before it was
   * established (none once connected), with their tags: their senders know the
   * requests were not sent, and can answer them, rather than wait for a timeout.
   */
  takeUnsent(): UnsentMessage[] {
    const tags = this.pendingTags;
    const writes = this.pendingWrites;
    this.pendingTags = null;
    this.pendingWrites = null;
    if (tags === null || writes === null) return [];
    const out: UnsentMessage[] = [];
    for (let i = 0; i < writes.length; i++) out.push({ chunks: writes[i], tag: tags[i] });
    return out;
  }

  private onData(chunk: Buffer): void {
    const now = performance.now();
    this.lastActivity = now;
    this.gotFirstByte = true;
    const framer = this.framer;
    framer.push(chunk);
    let framed = false;
    for (let k = framer.next(); k !== FrameKind.NEED_MORE; k = framer.next()) {
      if (k === FrameKind.MESSAGE) {
        framed = true;
        this.handler.onMessage(this.routeIndex, this.flow, framer.result!, null, now);
      } else if (k === FrameKind.PING) {
        // RFC 5626 §3.5.1: answer a CRLFCRLF ping with a CRLF pong.
        if (this.connected) this.socket.write(CRLF);
      } else {
        this.handler.onStreamBroken(this.routeIndex, this.flow, framer.brokenCode);
        this.close();
        return;
      }
    }
    // The read deadline runs per message: bytes left over after a complete
    // message start the next one now, so a busy stream that never pauses on a
    // message boundary is not mistaken for a slow one.
    if (framer.bufferedBytes === 0) this.messageStartedAt = -1;
    else if (framed || this.messageStartedAt === -1) this.messageStartedAt = now;
  }

  /**
   * Queue a message (as chunks) on the connection. Returns false when it was
   * refused: the connection is closed, or its write queue is over its bound
   * (reported as the `tcp_write_queue` limit). `tag` comes back from
   * takeUnsent when the connection fails before the message left.
   */
  write(chunks: Buffer[], source: TcpConnection | null = null, tag: unknown = null): boolean {
    if (this.closed) return false;
    const budget = this.budget;
    if (budget.exhausted) {
      this.handler.onLimit(this.routeIndex, 'tcp_write_queue_total');
      return false;
    }
    if (!this.connected) {
      const n = chunksLength(chunks);
      if (this.pendingBytes + n > this.timeouts.writeQueueBytes) {
        this.handler.onLimit(this.routeIndex, 'tcp_write_queue');
        return false;
      }
      this.pendingBytes += n;
      budget.queuedBytes += n;
      this.pendingWrites!.push([ownBytes(chunks, n)]);
      this.pendingTags!.push(tag);
      return true;
    }
    if (this.socket.writableLength > this.timeouts.writeQueueBytes) {
      this.handler.onLimit(this.routeIndex, 'tcp_write_queue');
      return false;
    }
    this.lastActivity = performance.now();
    const queuedBefore = this.socket.writableLength;
    if (queuedBefore > 0) {
      // Behind others, the message waits in the queue: in bytes of its own (see ownBytes).
      this.socket.write(ownBytes(chunks, chunksLength(chunks)));
    } else if (chunks.length === 1) this.socket.write(chunks[0]);
    else {
      // One syscall for the whole message (writev) instead of one per chunk.
      this.socket.cork();
      for (let i = 0; i < chunks.length; i++) this.socket.write(chunks[i]);
      this.socket.uncork();
    }
    budget.queuedBytes += this.socket.writableLength - queuedBefore;
    // Backpressure: while this side's kernel and user buffers are full, stop reading
    // the connection that feeds it, so memory stays bounded by the write queue.
    if (source !== null && this.socket.writableNeedDrain && !source.socket.isPaused()) {
      source.socket.pause();
      this.socket.once('drain', () => source.socket.resume());
    }
    return true;
  }

  /** Check the deadlines (called by the coarse sweeper); returns the limit that closed it, or null. */
  checkDeadlines(now: number): string | null {
    if (this.closed) return null;
    const t = this.timeouts;
    let hit: string | null = null;
    if (!this.gotFirstByte && !this.outbound && now - this.openedAt > t.firstByteMs) hit = 'tcp_first_byte';
    else if (this.messageStartedAt !== -1 && now - this.messageStartedAt > t.readMessageMs)
      hit = 'tcp_read_message';
    else if (now - this.lastActivity > t.idleMs) hit = 'tcp_idle';
    else if (this.writeStalled(now)) hit = 'tcp_write_stall';
    if (hit !== null) this.close();
    return hit;
  }

  /** What waits in this connection's write queue (or for it to connect). */
  get queuedBytes(): number {
    return this.connected ? this.socket.writableLength : this.pendingBytes;
  }

  /**
   * True once bytes have waited in the write queue for writeStallMs while the kernel took none of
   * them (its send buffer full: the peer stopped reading). Checked by the sweeper, so it closes
   * within one sweep after the deadline; nothing is done per write.
   */
  private writeStalled(now: number): boolean {
    const queued = this.socket.writableLength;
    if (!this.connected || queued === 0) {
      this.stalledSince = -1;
      return false;
    }
    const drained = this.socket.bytesWritten - queued;
    if (this.stalledSince === -1 || drained !== this.drainedBytes) {
      this.drainedBytes = drained;
      this.stalledSince = now;
      return false;
    }
    return now - this.stalledSince > this.timeouts.writeStallMs;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.framer.reset();
    this.socket.destroy();
    // The close handler takes what never left (takeUnsent) before the queue goes.
    if (this.onClose !== null) this.onClose(this);
    this.pendingWrites = null;
    this.pendingTags = null;
  }
}

/**
 * A message's chunks copied into one Buffer of its own, for a queue. Chunks are views of the buffer
 * the message was read into, and a view keeps all of that buffer alive: a UDP arena
 * (native/udp-io.c) holds the datagrams of many wake-ups. Queued as views, messages sent on to a
 * slow connection one in a hundred would each keep an arena, and the queue's bound in bytes would
 * not bound its memory.
 */
function ownBytes(chunks: readonly Buffer[], length: number): Buffer {
  return Buffer.concat(chunks, length);
}
