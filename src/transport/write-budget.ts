/**
 * The bytes waiting in the user-space write queues of every TCP connection together, against one
 * bound. Each connection's queue has its own bound (`tcp_write_queue_bytes`); this one keeps
 * 2,048 connections that all stop reading from holding 2,048 of them (Kamailio: `tcp_wq_max`
 * over `tcp_conn_wq_max`).
 *
 * A write adds what it left queued; bytes that drain are not subtracted as they go (that would
 * take a callback per write). The sweeper sets the exact sum instead, every 250 ms, so between
 * two sweeps the count can only be high: a write is refused for a queue that has since drained,
 * never let through past the bound.
 */
export class WriteBudget {
  readonly limitBytes: number;
  queuedBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  get exhausted(): boolean {
    return this.queuedBytes >= this.limitBytes;
  }
}
