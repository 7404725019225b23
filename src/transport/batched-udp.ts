import { Buffer } from 'node:buffer';
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { IS_TOKEN } from '../wire/chars.ts';
import { INDEX_STRIDE } from '../wire/header-index.ts';
import { KNOWN_HEADER_NAMES } from '../wire/header-names.ts';
import { type NativeModule, nativeModule } from './native-module.ts';

/**
 * How a route's UDP sockets are read and written.
 * - `batched`: the native socket of native/udp-io.c, up to 64 datagrams per wake-up and one
 *   call into JavaScript for them (built at install into build/; without it, `dgram`, said at start).
 * - `dgram`: node:dgram, one callback per datagram.
 */
export type UdpIo = 'batched' | 'dgram';

interface UdpIoNative {
  open(
    family: 4 | 6,
    host: string,
    port: number,
    reusePort: boolean,
    bufferBytes: number,
    stamps: boolean,
    onBatch: OnBatch,
    receiver: unknown,
  ): unknown[];
  send(handle: unknown, chunks: Buffer[], port: number, address: string): number;
  close(handle: unknown): void;
  configureIndex(isToken: Uint8Array, names: string[], ids: number[]): boolean;
  index(buf: Buffer, start: number, end: number, out: Int32Array): number;
  indexStride: number;
}

/** Whether the native header index was given the scanner's tables (once, at the module's load). */
let indexConfigured: boolean | null = null;

/** The native module (native/udp-io.c, built at install into build/), or why it is not there. */
function udpIo(): NativeModule<UdpIoNative> {
  const loaded = nativeModule<UdpIoNative>('udp-io', 'native UDP module');
  if (indexConfigured === null && loaded.module !== null) indexConfigured = configureIndex(loaded.module);
  return loaded;
}

/**
 * Give native/header-index.h the scanner's byte classes and header names, so the two agree by
 * construction. A build whose layout differs from src/wire/header-index.ts (a stale build/) is not
 * used: every datagram is then scanned in JavaScript.
 */
function configureIndex(io: UdpIoNative): boolean {
  if (io.indexStride !== INDEX_STRIDE || typeof io.configureIndex !== 'function') return false;
  return io.configureIndex(
    IS_TOKEN,
    KNOWN_HEADER_NAMES.map(([name]) => name),
    KNOWN_HEADER_NAMES.map(([, id]) => id),
  );
}

/**
 * The native header index of buf[start, end) into out (INDEX_STRIDE int32s), as a batch's index
 * holds it: its number of fields, or -1. Null without the native module. For tests, which hold it
 * to the scanner.
 */
export function nativeHeaderIndex():
  | ((buf: Buffer, start: number, end: number, out: Int32Array) => number)
  | null {
  const io = udpIo().module;
  if (io === null || indexConfigured !== true) return null;
  return (buf, start, end, out) => io.index(buf, start, end, out);
}

/** Why `batched` cannot be had here, or null when it can. */
export function batchedUdpProblem(): string | null {
  return udpIo().problem;
}

/** Numbers per datagram in the batch's metadata (native/udp-io.c: META). */
export const META = 5;
/** Bytes per datagram in the address text area (native/udp-io.c: ADDR_TEXT). */
const ADDR_TEXT = 64;
/** Chunks one send takes (native/udp-io.c: MAX_CHUNKS): longer lists are joined first. */
const MAX_CHUNKS = 64;

/** An errno from the native side as node:dgram words it: `code`, `errno`, `syscall`, and where. */
export function udpError(
  negErrno: number,
  syscall: string,
  address: string,
  port: number,
): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(negErrno);
  } catch {
    code = `E${-negErrno}`;
  }
  const err = new Error(`${syscall} ${code} ${address}:${port}`) as NodeJS.ErrnoException & {
    address: string;
    port: number;
  };
  err.code = code;
  err.errno = negErrno;
  err.syscall = syscall;
  err.address = address;
  err.port = port;
  return err;
}

/**
 * The receiving side of a batched socket: called once per batch, with the datagrams' bytes in one
 * Buffer and their offsets, lengths, sources and stamps in `meta` (see `BatchedUdpSocket`).
 */
export type OnBatch = (batch: Buffer, count: number) => void;

/**
 * A bound UDP socket of native/udp-io.c. The metadata of a batch, per datagram i at i·META:
 * offset and length in the batch's Buffer, source port, the length of the source's address text
 * at i·64 in `addressText` (0: the same host as the datagram before, on this socket), and the
 * kernel's receive stamp in ms on CLOCK_MONOTONIC (-1: none).
 */
export class BatchedUdpSocket {
  readonly port: number;
  readonly fd: number;
  readonly receiveBufferBytes: number;
  readonly sendBufferBytes: number;
  /** The kernel stamps each datagram (asked for and granted). */
  readonly stamps: boolean;
  readonly meta: Float64Array;
  /** The header index of each datagram of the batch, at i·INDEX_STRIDE (src/wire/header-index.ts); null when not made. */
  readonly index: Int32Array | null;
  private readonly addressText: Buffer;
  private readonly handle: unknown;
  private readonly io: UdpIoNative;
  private closed = false;
  /** The source host of the datagram read last: its text is rebuilt only when it changes. */
  private lastHost = '';

  private constructor(io: UdpIoNative, opened: unknown[]) {
    this.io = io;
    this.handle = opened[0];
    this.meta = opened[1] as Float64Array;
    this.addressText = opened[2] as Buffer;
    this.port = opened[3] as number;
    this.receiveBufferBytes = opened[4] as number;
    this.sendBufferBytes = opened[5] as number;
    this.stamps = opened[6] as boolean;
    this.fd = opened[7] as number;
    this.index = indexConfigured === true ? (opened[8] as Int32Array) : null;
  }

  /** Bind and start reading; rejects as node:dgram's bind does (`code` EADDRINUSE, ...). */
  static open(
    family: 4 | 6,
    host: string,
    port: number,
    options: { reusePort: boolean; bufferBytes: number; stamps: boolean },
    onBatch: OnBatch,
    receiver: unknown,
  ): BatchedUdpSocket {
    const { module: io, problem } = udpIo();
    if (io === null) throw new Error(problem);
    const opened = io.open(
      family,
      host,
      port,
      options.reusePort,
      Math.min(options.bufferBytes, 0x7fffffff),
      options.stamps,
      onBatch,
      receiver,
    );
    if (typeof opened[0] === 'number') throw udpError(opened[0], opened[1] as string, host, port);
    return new BatchedUdpSocket(io, opened);
  }

  /** The source host of datagram i of the batch being delivered. */
  sourceHost(i: number): string {
    const length = this.meta[i * META + 3];
    if (length > 0)
      this.lastHost = this.addressText.toString('latin1', i * ADDR_TEXT, i * ADDR_TEXT + length);
    return this.lastHost;
  }

  /** One datagram of chunks; 0, or the negative errno the kernel gave. */
  send(chunks: Buffer[], port: number, address: string): number {
    if (this.closed) return -constants.errno.EBADF;
    return this.io.send(
      this.handle,
      chunks.length > MAX_CHUNKS ? [Buffer.concat(chunks)] : chunks,
      port,
      address,
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.io.close(this.handle);
  }
}
