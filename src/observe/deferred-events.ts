import type { Channel } from 'node:diagnostics_channel';

/**
 * Events about what has ended, published once the event loop has forwarded what it read.
 *
 * A transaction's end is where the sinks do their work (spans, the log line, histograms): ~20–30 µs
 * with all telemetry on. Published inline, that work ran between one datagram and the next one
 * already waiting in the socket, which the wait added to its time through sipspan: outside sipspan,
 * not in its own proxy-time histogram. Queued here, it runs in the check phase (setImmediate), after
 * libuv's poll phase has handed over every datagram and stream read of the turn. Per hop at 500
 * calls/s, all telemetry on, runs interleaved with the inline version (bench/README.md): p50 73 and
 * 80 → 65 and 68 µs, responses 61 and 67 → 40 and 49 µs.
 *
 *   poll phase: datagram ─▶ forward ─▶ datagram ─▶ forward ─▶ …      (events queued)
 *   check phase: transaction:end, call:outcome, call:end in the order they happened
 *
 * A batch of reads (one wake-up of the batched UDP socket) is a turn of its own: its events are
 * published at its end (`batchEnd`), after the batch's sends, with no setImmediate per wake-up.
 *
 * The records published are ended (their fields no longer change), so reading them a moment later
 * reads what was true at the end. Bounded: past `maxQueued` the queue is published at once.
 */
export class DeferredEvents {
  private readonly channels: Channel[] = [];
  private readonly messages: unknown[] = [];
  private readonly maxQueued: number;
  private scheduled = false;
  /** True while a batch of reads is handled: its end publishes what it queued. */
  private inBatch = false;
  private readonly onImmediate = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(maxQueued: number) {
    this.maxQueued = maxQueued;
  }

  get size(): number {
    return this.channels.length;
  }

  publish(channel: Channel, message: unknown): void {
    if (!channel.hasSubscribers) return;
    this.channels.push(channel);
    this.messages.push(message);
    if (this.channels.length >= this.maxQueued) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      if (!this.inBatch) setImmediate(this.onImmediate);
    }
  }

  batchStart(): void {
    this.inBatch = true;
  }

  /** The batch has been handled: what it queued is published now. */
  batchEnd(): void {
    this.inBatch = false;
    if (this.scheduled) {
      this.scheduled = false;
      this.flush();
    }
  }

  /** Publish everything queued, oldest first (on shutdown, before the sinks flush). */
  flush(): void {
    const channels = this.channels;
    const messages = this.messages;
    // A subscriber may end more (it never should: sinks do not feed back); the loop takes those too.
    for (let i = 0; i < channels.length; i++) {
      const message = messages[i];
      const channel = channels[i];
      channels[i] = NO_CHANNEL;
      messages[i] = undefined;
      channel.publish(message);
    }
    channels.length = 0;
    messages.length = 0;
  }
}

/** Placeholder for a published slot, so the queue holds nothing it has handed over. */
const NO_CHANNEL = { publish() {} } as unknown as Channel;
