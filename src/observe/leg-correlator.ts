import type { TransactionRecord } from './records.ts';
import { SlotTable } from './slot-table.ts';

/**
 * B2BUA leg correlation. A back-to-back user agent starts a new leg with a
 * new Call-ID and may drop unknown headers (traceparent among them). When both
 * legs pass routes of this process, an initial INVITE entering one route is
 * matched with a recent initial INVITE that entered another, by the keys below
 * in order, and joins its trace.
 *
 *   session-id   RFC 7989 Session-ID (the B2BUA copies it: the strongest key)
 *   x-cid        a configured correlation header (X-CID and the like)
 *   sdp-origin   an identical SDP o= line (signalling-only B2BUAs keep the offer)
 *   users        caller and callee user parts, within the window
 *
 * Bounded: at most `maxEntries`, each forgotten after `windowMs`.
 */
/**
 * A remembered leg is its initial INVITE's transaction record itself, read when
 * a later INVITE asks: no entry object or closure per INVITE. It is forgotten
 * when the INVITE ends (forget), or at the end of the window while it rings.
 */
export type LegEntry = Pick<
  TransactionRecord,
  'route' | 'traceId' | 'clientSpanId' | 'sampled' | 'requestIn' | 'upstream' | 'finalResponseIn' | 'outcome'
>;

export interface LegMatch {
  entry: LegEntry;
  by: string;
}

export class LegCorrelator {
  private readonly byKey: SlotTable<LegEntry>;
  private readonly windowMs: number;
  /** Keys found out of their window by a sweep, removed once its walk is over. */
  private readonly expired: string[] = [];

  constructor(windowMs: number, maxEntries: number) {
    this.windowMs = windowMs;
    this.byKey = new SlotTable(maxEntries);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Keys are `kind:value` strings, strongest first. */
  remember(keys: readonly string[], entry: LegEntry): void {
    for (const k of keys) {
      // Newest last: a key seen again moves to the end, and a full table lets its oldest key go.
      this.byKey.delete(k);
      if (!this.byKey.set(k, entry)) {
        this.byKey.delete(this.byKey.keyAt(this.byKey.oldest));
        this.byKey.set(k, entry);
      }
    }
  }

  /** The INVITE ended: no later leg can join it (find() wants it pending), so its keys go now. */
  forget(keys: readonly string[], entry: LegEntry): void {
    for (const k of keys) if (this.byKey.get(k) === entry) this.byKey.delete(k);
  }

  /**
   * A leg matches only when it is structurally possible: another route, inside
   * the window, its INVITE still pending, and — when known — the new INVITE comes
   * from where that leg was forwarded to (the element in between).
   */
  find(routeIndex: number, keys: readonly string[], now: number, downstream: string): LegMatch | null {
    for (const k of keys) {
      const e = this.byKey.get(k);
      if (
        e !== undefined &&
        e.route.index !== routeIndex &&
        now - e.requestIn <= this.windowMs &&
        // Still pending: a B2BUA starts its B leg while leg A waits for its answer.
        e.finalResponseIn === -1 &&
        e.outcome === null &&
        // From where leg A was forwarded to (the B2BUA), when that is known yet.
        (e.upstream === '' || e.upstream === downstream)
      ) {
        return { entry: e, by: k.slice(0, k.indexOf(':')) };
      }
    }
    return null;
  }

  sweep(now: number): void {
    // Insertion order is arrival order: stop at the first entry still inside the window.
    const expired = this.expired;
    for (let s = this.byKey.oldest; s !== -1; s = this.byKey.newer(s)) {
      if (now - this.byKey.valueAt(s).requestIn <= this.windowMs) break;
      expired.push(this.byKey.keyAt(s));
    }
    for (const k of expired) this.byKey.delete(k);
    expired.length = 0;
  }
}

/** The SDP `o=` line of a body (RFC 8866 §5.2), or null. */
export function sdpOrigin(body: Buffer, start: number, end: number): string | null {
  let i = start;
  while (i < end - 1) {
    if (body[i] === 0x6f && body[i + 1] === 0x3d && (i === start || body[i - 1] === 0x0a)) {
      let e = i;
      while (e < end && body[e] !== 0x0d && body[e] !== 0x0a) e++;
      return body.toString('latin1', i + 2, e);
    }
    const nl = body.indexOf(0x0a, i);
    if (nl === -1 || nl >= end) return null;
    i = nl + 1;
  }
  return null;
}
