import type { Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { nativeModule } from './native-module.ts';
import { socketFd } from './socket-fd.ts';

/**
 * When a UDP datagram's time starts.
 * - `kernel`: when the kernel received it (its SIOCGSTAMPNS stamp). The hop's time then
 *   includes the wake-up of the process and the wait behind datagrams read before it,
 *   as a capture on the interface sees it.
 * - `event_loop`: when JavaScript got it. Leaves those waits out.
 * TCP is always timed from the event loop: a stream has no per-message stamp.
 */
export type ReceiveClock = 'kernel' | 'event_loop';

interface KernelStamp {
  /** The last datagram's kernel stamp on CLOCK_MONOTONIC, ms; -1 when there is none to use. */
  stampMs(fd: number): number;
}

/**
 * performance.now() is CLOCK_MONOTONIC (libuv's uv_hrtime, as is process.hrtime) counted from
 * the process's time origin: this is that origin, in ms of CLOCK_MONOTONIC. Read once, from the
 * closest of a few back-to-back readings of the two.
 */
const MONOTONIC_ORIGIN_MS = monotonicOrigin();

function monotonicOrigin(): number {
  let origin = 0;
  let closest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 8; i++) {
    const before = performance.now();
    const monotonic = Number(process.hrtime.bigint()) / 1e6;
    const after = performance.now();
    if (after - before < closest) {
      closest = after - before;
      origin = monotonic - (before + after) / 2;
    }
  }
  return origin;
}

/** A time in ms on CLOCK_MONOTONIC (a kernel stamp, converted) on performance.now()'s scale. */
export function monotonicToNow(monotonicMs: number): number {
  return monotonicMs - MONOTONIC_ORIGIN_MS;
}

/**
 * Reads the kernel's receive stamps of one UDP socket. Made after the socket is bound;
 * `receivedAt()` is called in the socket's 'message' handler, for the datagram just handed out.
 */
export class DatagramStamps {
  /** -1 when stamps are not read: the clock is the event loop's. */
  private readonly fd: number;
  private readonly helper: KernelStamp | null;

  private constructor(fd: number, helper: KernelStamp | null) {
    this.fd = fd;
    this.helper = helper;
  }

  static off(): DatagramStamps {
    return new DatagramStamps(-1, null);
  }

  /** Turns stamping on for the socket (the kernel starts with the next datagrams), or says why not. */
  static open(socket: Socket): { stamps: DatagramStamps; problem: string | null } {
    const { module: native, problem } = nativeModule<KernelStamp>('kernel-stamp', 'native helper');
    if (native === null) return { stamps: DatagramStamps.off(), problem };
    const fd = socketFd(socket);
    if (fd < 0) return { stamps: DatagramStamps.off(), problem: 'no file descriptor on the socket' };
    native.stampMs(fd);
    return { stamps: new DatagramStamps(fd, native), problem: null };
  }

  get kernel(): boolean {
    return this.fd >= 0;
  }

  /**
   * When the kernel received the datagram being handled, on performance.now()'s scale; now when
   * unknown (the event-loop clock, no stamp). One reading of the clocks, in the helper: with an age
   * subtracted from a performance.now() read apart, a collection between the two moved arrivals
   * earlier by its pause, a response before its request had left (2 of 40,000 transactions at
   * 1000 calls/s had a negative upstream RTT).
   */
  receivedAt(): number {
    if (this.fd >= 0) {
      const at = (this.helper as KernelStamp).stampMs(this.fd);
      if (at >= 0) return monotonicToNow(at);
    }
    return performance.now();
  }
}
