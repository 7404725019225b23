import type { Socket } from 'node:dgram';
import { createRequire } from 'node:module';
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
  ageMs(fd: number): number;
}

/** Ages past this are a clock step between the stamp and its reading, not a wait: ignored. */
const MAX_AGE_MS = 10_000;

let helper: KernelStamp | null | undefined;
let helperProblem = '';

/** The native helper (native/kernel-stamp.c, built at install into build/), once. */
function kernelStamp(): KernelStamp | null {
  if (helper !== undefined) return helper;
  try {
    // From src/transport/ and from dist/transport/ alike, build/ is two levels up.
    helper = createRequire(import.meta.url)('../../build/kernel-stamp.node') as KernelStamp;
  } catch (err) {
    helper = null;
    helperProblem = `native helper not built (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; npm ci builds it with a C compiler)`;
  }
  return helper;
}

/**
 * Reads the kernel's receive stamps of one UDP socket. Made after the socket is bound;
 * `ageMs()` is called in the socket's 'message' handler, for the datagram just handed out.
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
    const native = kernelStamp();
    if (native === null) return { stamps: DatagramStamps.off(), problem: helperProblem };
    const fd = socketFd(socket);
    if (fd < 0) return { stamps: DatagramStamps.off(), problem: 'no file descriptor on the socket' };
    native.ageMs(fd);
    return { stamps: new DatagramStamps(fd, native), problem: null };
  }

  get kernel(): boolean {
    return this.fd >= 0;
  }

  /** How long ago the kernel received the datagram being handled, in ms; 0 when unknown. */
  ageMs(): number {
    if (this.fd < 0) return 0;
    const age = (this.helper as KernelStamp).ageMs(this.fd);
    return age > 0 && age < MAX_AGE_MS ? age : 0;
  }
}
