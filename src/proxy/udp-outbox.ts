import type { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { Direction, ObservedTransaction, RouteInfo } from '../observe/records.ts';
import type { UdpListener } from '../transport/udp-listener.ts';

/** A released slot's chunks: no array allocated per send. */
const NO_CHUNKS: Buffer[] = [];

/** A UDP datagram held for the end of the turn, with what its bookkeeping needs once it has left. */
export class HeldSend {
  socket: UdpListener | null = null;
  chunks: Buffer[] = NO_CHUNKS;
  port = 0;
  address = '';
  onError: (err: Error | null) => void = () => {};
  route: RouteInfo | null = null;
  isRequest = false;
  tx: ObservedTransaction | null = null;
  method = '';
  status = 0;
  direction: Direction = 'downstream';
  /** Requests: the upstream as the transaction names it. */
  upstream = '';
  receivedAt = 0;

  release(): void {
    this.socket = null;
    this.chunks = NO_CHUNKS;
    this.route = null;
    this.tx = null;
  }
}

/** The longest a send waits for the ones after it: a group's first leaves at most this late. */
const MAX_HOLD_MS = 0.05;

/**
 * The UDP sends of one event-loop turn after its first, held and sent back to back: in the check
 * phase, or sooner when the oldest has waited MAX_HOLD_MS.
 *
 * A UDP send on loopback wakes its receiver, and an idle receiver is woken with an
 * inter-processor interrupt that the sender pays inside `sendmsg` (on a virtual machine, several
 * µs). A turn reads every datagram the socket holds (up to 64 per wake-up; node:dgram, 32); sent one by one
 * as each is handled, ~30 µs apart, each could find the peer asleep again. Sent in groups, the
 * group wakes it once. The turn's first send leaves at once, so that a lone message waits for
 * nothing; a held one waits at most MAX_HOLD_MS for the ones handled after it. Measured in
 * bench/README.md ("Sends of a turn, in groups").
 *
 * Datagrams read in one batch (`udp_io: batched`: one wake-up, one `recvmmsg`) are a turn of
 * their own: what they held leaves when the batch has been handled (`batchEnd`), with no
 * setImmediate per wake-up, which at low rates, where each datagram is a wake-up of its own,
 * was one more entry into JavaScript per message.
 *
 * Sends are timed when they leave: the bookkeeping (`onSent`) runs after each with that time, so
 * sipspan's proxy time and the upstream RTT hold the wait here.
 */
export class UdpOutbox {
  private readonly held: HeldSend[] = [];
  private count = 0;
  /** True from the turn's first send until the check phase or the end of the batch. */
  private busyTurn = false;
  /** True while a batch of reads is handled: its end, not the check phase, ends the turn. */
  private inBatch = false;
  /** When the oldest send held now was held. */
  private heldSince = 0;
  private readonly onSent: (send: HeldSend, at: number) => void;
  private readonly maxHoldMs: number;
  private readonly flushAtCheck = () => this.flush();

  constructor(onSent: (send: HeldSend, at: number) => void, maxHoldMs = MAX_HOLD_MS) {
    this.onSent = onSent;
    this.maxHoldMs = maxHoldMs;
  }

  get size(): number {
    return this.count;
  }

  /**
   * Null when this send goes now (the turn's first: the turn is marked, its flush scheduled);
   * otherwise the slot to fill, sent in the check phase.
   */
  slot(): HeldSend | null {
    if (!this.busyTurn) {
      this.busyTurn = true;
      if (!this.inBatch) setImmediate(this.flushAtCheck);
      return null;
    }
    if (this.count === 0) this.heldSince = performance.now();
    else if (performance.now() - this.heldSince >= this.maxHoldMs) {
      // A long turn (a burst, cold caches) sends in groups: what is held leaves now, this one with it.
      this.sendHeld();
      return null;
    }
    if (this.count === this.held.length) this.held.push(new HeldSend());
    return this.held[this.count++];
  }

  /** A batch of reads begins: the sends it makes are a turn that ends with it. */
  batchStart(): void {
    this.inBatch = true;
  }

  /** The batch has been handled: what it held leaves now. */
  batchEnd(): void {
    this.inBatch = false;
    if (this.busyTurn) this.flush();
  }

  /** Send everything held, oldest first, and end the turn (the check phase or a batch's end). */
  flush(): void {
    this.busyTurn = false;
    this.sendHeld();
  }

  private sendHeld(): void {
    const held = this.held;
    // `onSent` is bookkeeping only: a send from it would take a slot while this loop walks them.
    for (let i = 0; i < this.count; i++) {
      const send = held[i];
      const at = performance.now(); // before the send, as for a direct one (ProxyEngine.sendRequestTo)
      (send.socket as UdpListener).send(send.chunks, send.port, send.address, send.onError);
      this.onSent(send, at);
      send.release();
    }
    this.count = 0;
  }
}
