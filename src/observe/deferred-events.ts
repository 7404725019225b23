import type { Channel } from 'node:diagnostics_channel';

/**
 * A queue this long is published at the end of the turn that filled it. Publishing holds the loop,
 * and a datagram that arrives meanwhile waits (all telemetry on, 500 calls/s: 32 events ~0.3 ms,
 * 64 events 0.4–0.7 ms): 32 keeps most of what grouping saves (bench/README.md).
 */
export const PUBLISH_AT = 32;
/** The longest an event waits for others to be published with: a quiet route's events still go out. */
export const MAX_WAIT_MS = 50;

/**
 * Events about what has ended, published in groups, after the forwarding of the turn that ended them.
 *
 * A transaction's end is where the sinks do their work (spans, the log line, histograms): ~20–30 µs
 * with all telemetry on. Published inline, that work ran between one datagram and the next one
 * already waiting in the socket, which the wait added to its time through sipspan: outside sipspan,
 * not in its own proxy-time histogram. Published at the end of every turn instead, it still ran once
 * per wake-up: at low rates each wake-up holds a message or two, so the sinks' code and data were
 * cold each time, and the caches they filled were the forwarding path's own.
 *
 * So the events wait until PUBLISH_AT of them are queued, or MAX_WAIT_MS have passed since the
 * oldest, and are then published together, once the turn's datagrams have been forwarded:
 *
 *   turns:        datagram ─▶ forward ─▶ … (events queued)   …   datagram ─▶ forward ─▶ … (32 queued)
 *   turn's end:   transaction:end, call:outcome, call:end in the order they happened, 32 at a time
 *
 * All telemetry on, 500 calls/s, against publishing at each turn's end (bench/README.md, "Ended
 * events in groups"): 0.84–0.87× the CPU per call in groups of 64, 0.85× in groups of 32 in a calm
 * hour, and a lower per-hop p50 (responses 80–103 µs against 127–148).
 * At high rates the queue fills within a turn or two, and a group is about as much work as a turn
 * used to publish.
 *
 * A turn's end is that of a batch of reads (`udp_io: batched`: `batchEnd`), or the check phase
 * (setImmediate) for reads of node:dgram and of streams.
 *
 * The records published are ended (their fields no longer change), so reading them a moment later
 * reads what was true at the end. Bounded: past `maxQueued` the queue is published at once.
 */
export class DeferredEvents {
  private readonly channels: Channel[] = [];
  private readonly messages: unknown[] = [];
  private readonly maxQueued: number;
  private readonly publishAt: number;
  /** A check-phase publication is scheduled (reads outside a batch filled the queue). */
  private scheduled = false;
  /** True while a batch of reads is handled: its end publishes what it queued. */
  private inBatch = false;
  private readonly onImmediate = () => {
    this.scheduled = false;
    this.flush();
  };
  /** One timer, restarted by the first event queued after it fired (no object per group). */
  private waitTimer: NodeJS.Timeout | null = null;
  private waiting = false;
  private readonly maxWaitMs: number;
  private readonly onWaited = () => {
    this.waiting = false;
    this.flush();
  };

  constructor(maxQueued: number, publishAt = PUBLISH_AT, maxWaitMs = MAX_WAIT_MS) {
    this.maxQueued = maxQueued;
    this.publishAt = Math.min(publishAt, maxQueued);
    this.maxWaitMs = maxWaitMs;
  }

  get size(): number {
    return this.channels.length;
  }

  publish(channel: Channel, message: unknown): void {
    if (!channel.hasSubscribers) return;
    this.channels.push(channel);
    this.messages.push(message);
    const queued = this.channels.length;
    if (queued >= this.maxQueued) this.flush();
    else if (queued >= this.publishAt) {
      if (!this.inBatch && !this.scheduled) {
        this.scheduled = true;
        setImmediate(this.onImmediate);
      }
    } else if (!this.waiting) {
      this.waiting = true;
      if (this.waitTimer === null) {
        this.waitTimer = setTimeout(this.onWaited, this.maxWaitMs);
        this.waitTimer.unref(); // shutdown publishes what is queued (flush)
      } else this.waitTimer.refresh();
    }
  }

  batchStart(): void {
    this.inBatch = true;
  }

  /** The batch has been handled: a full queue is published now. */
  batchEnd(): void {
    this.inBatch = false;
    if (this.channels.length >= this.publishAt) this.flush();
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
