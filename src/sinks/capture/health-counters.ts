import type { CallRecord, TransactionRecord } from '../../observe/records.ts';

/**
 * Per-minute counters per hop for the call view's health panel: calls that
 * reached an outcome, by outcome, and the upstream RTT of transactions
 * (request forwarded → first response). A ring of the last MINUTES minutes:
 *
 *   slot = minute % MINUTES      ┌───┬───┬───┬─── … ───┐
 *                                │ m │m+1│m+2│         │   a slot whose minute is stale is reset on use
 *                                └───┴───┴───┴─── … ───┘
 */
export const HEALTH_MINUTES = 15;

interface HopMinute {
  calls: number;
  outcomes: Record<string, number>;
  transactions: number;
  rttSumMs: number;
  rttCount: number;
  rttMaxMs: number;
}

interface Slot {
  minute: number;
  hops: Map<number, HopMinute>;
}

export interface HopSeries {
  index: number;
  name: string;
  calls: number[];
  transactions: number[];
  outcomes: Record<string, number[]>;
  rtt_avg_ms: (number | null)[];
  rtt_max_ms: (number | null)[];
}

export interface HealthReport {
  /** Epoch ms of the start of each minute, oldest first; the last one is the current, partial minute. */
  minutes: number[];
  /** Seconds elapsed in the current minute (for rates). */
  current_minute_seconds: number;
  hops: HopSeries[];
}

export class HealthCounters {
  private readonly slots: Slot[] = [];
  private readonly names = new Map<number, string>();

  constructor(routeNames: readonly string[]) {
    for (let i = 0; i < routeNames.length; i++) this.names.set(i, routeNames[i]);
    for (let i = 0; i < HEALTH_MINUTES; i++) this.slots.push({ minute: -1, hops: new Map() });
  }

  private hopMinute(hop: number, nowMs: number): HopMinute {
    const minute = Math.floor(nowMs / 60_000);
    const slot = this.slots[minute % HEALTH_MINUTES];
    if (slot.minute !== minute) {
      slot.minute = minute;
      slot.hops.clear();
    }
    let h = slot.hops.get(hop);
    if (h === undefined) {
      h = { calls: 0, outcomes: {}, transactions: 0, rttSumMs: 0, rttCount: 0, rttMaxMs: 0 };
      slot.hops.set(hop, h);
    }
    return h;
  }

  onTransactionEnd(tx: TransactionRecord, nowMs = Date.now()): void {
    const h = this.hopMinute(tx.route.index, nowMs);
    h.transactions++;
    const rtt = tx.upstreamRttMs;
    if (rtt >= 0) {
      h.rttSumMs += rtt;
      h.rttCount++;
      if (rtt > h.rttMaxMs) h.rttMaxMs = rtt;
    }
  }

  onCallOutcome(call: CallRecord, nowMs = Date.now()): void {
    const h = this.hopMinute(call.route.index, nowMs);
    h.calls++;
    const o = call.outcome ?? 'unknown';
    h.outcomes[o] = (h.outcomes[o] ?? 0) + 1;
  }

  report(nowMs = Date.now()): HealthReport {
    const current = Math.floor(nowMs / 60_000);
    const minutes: number[] = [];
    for (let m = current - HEALTH_MINUTES + 1; m <= current; m++) minutes.push(m * 60_000);
    const hops: HopSeries[] = [...this.names].map(([index, name]) => ({
      index,
      name,
      calls: [],
      transactions: [],
      outcomes: {},
      rtt_avg_ms: [],
      rtt_max_ms: [],
    }));
    minutes.forEach((start, k) => {
      const minute = start / 60_000;
      const slot = this.slots[minute % HEALTH_MINUTES];
      for (const s of hops) {
        const h = slot.minute === minute ? slot.hops.get(s.index) : undefined;
        s.calls.push(h?.calls ?? 0);
        s.transactions.push(h?.transactions ?? 0);
        s.rtt_avg_ms.push(h !== undefined && h.rttCount > 0 ? round1(h.rttSumMs / h.rttCount) : null);
        s.rtt_max_ms.push(h !== undefined && h.rttCount > 0 ? round1(h.rttMaxMs) : null);
        for (const [o, n] of Object.entries(h?.outcomes ?? {})) {
          if (s.outcomes[o] === undefined) s.outcomes[o] = new Array(HEALTH_MINUTES).fill(0);
          s.outcomes[o][k] = n;
        }
      }
    });
    return { minutes, current_minute_seconds: round1((nowMs % 60_000) / 1000), hops };
  }
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
