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
 * The records published are ended (their fields no longer change), so reading them a moment later
 * reads what was true at the end. Bounded: past `maxQueued` the queue is published at once.
 */
export class DeferredEvents {
  private readonly channels: Channel[] = [];
  private readonly messages: unknown[] = [];
  private readonly maxQueued: number;
  private scheduled = false;
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
      setImmediate(this.onImmediate);
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
