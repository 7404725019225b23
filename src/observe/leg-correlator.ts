import type { Buffer } from 'node:buffer';
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
 *
 * A key can be shared by calls that are not the same: SIPp sends one SDP o=
 * line and the same users on every call. When two pending legs of different
 * traces hold one key, a new leg that matches both cannot be told apart and is
 * not stitched: a leg joined to another call's trace is worse than one in a
 * trace of its own. (At 200 calls/s through a B2BUA with SIPp's SDP, a quarter
 * of the B legs were joined to another call before.)
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

/** Most legs one key holds at once; past that the oldest is let go (the key is ambiguous long before). */
const MAX_SHARERS = 8;

/** The legs of more than one trace holding one key, oldest first. */
class SharedKey {
  readonly legs: LegEntry[] = [];
  /** When the newest leg arrived: the key leaves with the window after it. */
  requestIn = 0;

  add(entry: LegEntry): void {
    if (this.legs.length === MAX_SHARERS) this.legs.shift();
    this.legs.push(entry);
    this.requestIn = entry.requestIn;
  }
}

type Held = LegEntry | SharedKey;

/** No final response yet: a B2BUA starts its B leg while leg A waits for its answer. */
const isPending = (e: LegEntry) => e.finalResponseIn === -1 && e.outcome === null;

export class LegCorrelator {
  /** Legs not stitched because a key they matched was held by pending legs of more than one trace. */
  ambiguous = 0;
  private readonly byKey: SlotTable<Held>;
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
      const held = this.byKey.get(k);
      let value: Held = entry;
      if (held instanceof SharedKey) {
        held.add(entry);
        value = held;
      } else if (held !== undefined && held !== entry && held.traceId !== entry.traceId && isPending(held)) {
        // Two calls hold the key at once: which one a later leg belongs to can no longer be told by it.
        const shared = new SharedKey();
        shared.add(held);
        shared.add(entry);
        value = shared;
      }
      // Newest last: a key seen again moves to the end, and a full table lets its oldest key go.
      this.byKey.delete(k);
      if (!this.byKey.set(k, value)) {
        this.byKey.delete(this.byKey.keyAt(this.byKey.oldest));
        this.byKey.set(k, value);
      }
    }
  }

  /** The INVITE ended: no later leg can join it (find() wants it pending), so its keys go now. */
  forget(keys: readonly string[], entry: LegEntry): void {
    for (const k of keys) {
      const held = this.byKey.get(k);
      if (held === entry) this.byKey.delete(k);
      else if (held instanceof SharedKey) {
        const i = held.legs.indexOf(entry);
        if (i !== -1) held.legs.splice(i, 1);
        if (held.legs.length === 0) this.byKey.delete(k);
      }
    }
  }

  /**
   * A leg matches only when it is structurally possible: another route, inside
   * the window, its INVITE still pending, and — when known — the new INVITE comes
   * from where that leg was forwarded to (the element in between). A key whose
   * possible legs belong to more than one trace matches none of them.
   */
  find(routeIndex: number, keys: readonly string[], now: number, downstream: string): LegMatch | null {
    let ambiguous = false;
    for (const k of keys) {
      const held = this.byKey.get(k);
      if (held === undefined) continue;
      let match: LegEntry | null = null;
      if (!(held instanceof SharedKey)) {
        if (this.possible(held, routeIndex, now, downstream)) match = held;
      } else {
        for (const e of held.legs) {
          if (!this.possible(e, routeIndex, now, downstream)) continue;
          if (match !== null && match.traceId !== e.traceId) {
            match = null;
            ambiguous = true;
            break;
          }
          match = e;
        }
      }
      if (match !== null) return { entry: match, by: k.slice(0, k.indexOf(':')) };
    }
    if (ambiguous) this.ambiguous++;
    return null;
  }

  private possible(e: LegEntry, routeIndex: number, now: number, downstream: string): boolean {
    return (
      e.route.index !== routeIndex &&
      now - e.requestIn <= this.windowMs &&
      isPending(e) &&
      // From where leg A was forwarded to (the B2BUA), when that is known yet.
      (e.upstream === '' || e.upstream === downstream)
    );
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
