import type { Buffer } from 'node:buffer';
import type { ScanResult } from '../wire/scan.ts';
import type { ScanCode } from '../wire/scan-codes.ts';
import type { Flow } from './flow.ts';
import type { UnsentMessage } from './tcp-connection.ts';

/**
 * The seam between transport and proxy: transport hands over framed messages
 * and reports what it had to do on its own. Implemented by the proxy; the
 * transport layer imports nothing above it.
 */
export interface InboundHandler {
  /**
   * A framed message (its code may be a scan error). `receivedAt` is performance.now() at arrival.
   * `datagram`: a UDP datagram's bytes when they could not be scanned into a message (a keepalive,
   * garbage); otherwise null, and the message's buf[start, end) holds them.
   */
  onMessage(
    routeIndex: number,
    flow: Flow,
    result: ScanResult,
    datagram: Buffer | null,
    receivedAt: number,
  ): void;
  /**
   * The datagrams of one batched read (one wake-up of a native UDP socket) are handed over between
   * these two calls: what the handler defers to the end of the event-loop turn may go at the end
   * of the batch instead.
   */
  onBatchStart(): void;
  onBatchEnd(): void;
  /** A TCP stream could not be framed any more and was closed. */
  onStreamBroken(routeIndex: number, flow: Flow, code: ScanCode): void;
  /** A limit of the transport was hit (`tcp_max_connections`, `tcp_read_message_ms`, ...). */
  onLimit(routeIndex: number, limit: string): void;
  /**
   * An outbound connection to `address`:`port` failed: `connect` when it was
   * never established (refused, unreachable, backing off), `reset` when the
   * peer broke it. `unsent` holds the messages that never left, with their tags.
   */
  onConnectionFailed(
    routeIndex: number,
    kind: 'connect' | 'reset',
    address: string,
    port: number,
    unsent: UnsentMessage[],
  ): void;
}
