import { KNOWN_METHODS } from '../wire/methods.ts';
import { KeyHash, nextPowerOfTwo } from './key-hash.ts';
import {
  EndedTransaction,
  type RouteInfo,
  type TransactionOutcome,
  type TransactionRecord,
} from './records.ts';

/** The two lingers: every ended transaction (T4), and 2xx ACKs (T4, or 64·T1 when that is shorter). */
export type LingerKind = 0 | 1;
export const TRANSACTION_LINGER: LingerKind = 0;
export const ACK_LINGER: LingerKind = 1;

const OUTCOMES: readonly TransactionOutcome[] = [
  'completed',
  'timeout',
  'forwarded',
  'rejected',
  'send-failed',
];
const SAMPLED = 1;
const HAD_FINAL = 2;
/** The entry has data in `rare`, keyed by its fingerprint. */
const RARE = 4;
const OTHER_METHOD = 255;
/** Bytes of ids per slot: trace id (16), server span id (8), client span id (8). */
const ID_BYTES = 32;

/** What few entries have: kept in a Map so that the columns stay fixed-width. */
interface RareData {
  /** A method outside KNOWN_METHODS. */
  method: string | null;
  traceState: string | null;
  /** Ids that are not lowercase hex of the usual width: [traceId, server, client]. */
  ids: readonly string[] | null;
  /** The entry as a lookup handed it out, once one did. */
  view: EndedTransaction | null;
}

/**
 * Ended transactions, kept for their linger to recognise retransmissions and late responses, with no
 * object per entry: a hash set in typed arrays the collector never walks.
 *
 * Why: an ended transaction's entry, its key string and its Map slot lived 5 s each, so the
 * young-generation collector copied and promoted every one of them. Keeping them as small objects
 * in a Map cost as much CPU as keeping the full records; a table of fixed-width columns costs the
 * collector nothing (bench/README.md has the figures).
 *
 *   key "branch|METHOD" ──▶ seeded 64-bit fingerprint ──▶ slot (linear probing, load ≤ 1/2)
 *   columns per slot: fingerprint · flags · outcome · route · method · ids (32 bytes)
 *   one FIFO ring per linger kind: (fingerprint, expiresAt), oldest first; a drain removes what expired
 *
 * The columns are sized once for the bound (both kinds full at load 1/2). They are zero-filled
 * allocations, so the kernel backs only the pages entries have touched; nothing is rehashed under load.
 *
 * Entries are matched by fingerprint, not by key: two keys sharing one would merge (a new request
 * taken for a retransmission of the other: observed in its trace, forwarded all the same). With
 * per-process random seeds a peer cannot aim at one; by chance it is about one lookup in 10^14 with
 * 100,000 entries lingering.
 */
export class EndedTransactions {
  private readonly maxPerKind: number;
  private readonly mask: number;
  private readonly hash = new KeyHash();
  private count = 0;
  private readonly fpHi: Int32Array;
  private readonly fpLo: Int32Array;
  private readonly flags: Uint8Array;
  private readonly outcome: Uint8Array;
  private readonly routeIndex: Uint16Array;
  private readonly method: Uint8Array;
  private readonly ids: Buffer;
  private readonly routes: RouteInfo[] = [];
  private readonly rare = new Map<string, RareData>();
  private readonly rings: [FifoRing, FifoRing];

  /** `maxPerKind` entries per linger kind at most: past that the oldest of its kind goes early. */
  constructor(maxPerKind: number) {
    this.maxPerKind = maxPerKind;
    const slots = nextPowerOfTwo(4 * maxPerKind);
    this.mask = slots - 1;
    this.fpHi = new Int32Array(slots);
    this.fpLo = new Int32Array(slots);
    this.flags = new Uint8Array(slots);
    this.outcome = new Uint8Array(slots);
    this.routeIndex = new Uint16Array(slots);
    this.method = new Uint8Array(slots);
    this.ids = Buffer.alloc(slots * ID_BYTES);
    this.rings = [new FifoRing(maxPerKind), new FifoRing(maxPerKind)];
  }

  get size(): number {
    return this.count;
  }

  /** The ended transaction of `key`, or undefined. */
  find(key: string): EndedTransaction | undefined {
    this.hash.fingerprint(key);
    const slot = this.slotOf(this.hash.hi, this.hash.lo);
    return slot === -1 ? undefined : this.viewOf(slot);
  }

  /** `tx` has just ended (its outcome set): keep what its linger needs until `expiresAt`. */
  add(kind: LingerKind, tx: TransactionRecord, expiresAt: number): void {
    const ring = this.rings[kind];
    if (ring.length >= this.maxPerKind) {
      ring.shift();
      this.remove(ring.shiftedHi, ring.shiftedLo);
    }
    this.hash.fingerprint(tx.key);
    const hi = this.hash.hi;
    const lo = this.hash.lo;
    let i = hi & this.mask;
    while (this.fpHi[i] !== 0 || this.fpLo[i] !== 0) {
      // A key already here cannot end again (a request that finds it is a retransmission): replace it.
      if (this.fpHi[i] === hi && this.fpLo[i] === lo) break;
      i = (i + 1) & this.mask;
    }
    if (this.fpHi[i] === 0 && this.fpLo[i] === 0) this.count++;
    else if ((this.flags[i] & RARE) !== 0) this.rare.delete(rareKey(hi, lo));
    this.fpHi[i] = hi;
    this.fpLo[i] = lo;
    this.outcome[i] = OUTCOMES.indexOf(tx.outcome ?? 'completed');
    const route = tx.route;
    if (this.routes[route.index] !== route) this.routes[route.index] = route;
    this.routeIndex[i] = route.index;
    const m = KNOWN_METHODS.indexOf(tx.method as (typeof KNOWN_METHODS)[number]);
    this.method[i] = m === -1 ? OTHER_METHOD : m;
    const exact = this.writeIds(i * ID_BYTES, tx);
    let flags = (tx.sampled ? SAMPLED : 0) | (tx.finalResponseIn !== -1 ? HAD_FINAL : 0);
    if (m === -1 || tx.traceState !== null || !exact) {
      flags |= RARE;
      this.rare.set(rareKey(hi, lo), {
        method: m === -1 ? tx.method : null,
        traceState: tx.traceState,
        ids: exact ? null : [tx.traceId, tx.serverSpanId, tx.clientSpanId],
        view: null,
      });
    }
    this.flags[i] = flags;
    ring.push(hi, lo, expiresAt);
  }

  /** Forget every entry whose linger is over. */
  drain(now: number): void {
    for (const ring of this.rings) {
      while (ring.length > 0 && ring.headExpiresAt() <= now) {
        ring.shift();
        this.remove(ring.shiftedHi, ring.shiftedLo);
      }
    }
  }

  clear(): void {
    this.fpHi.fill(0);
    this.fpLo.fill(0);
    this.rare.clear();
    this.count = 0;
    for (const ring of this.rings) ring.clear();
  }

  /**
   * The ids as bytes; false (nothing usable written) when they would not come back the same. Decoded
   * here rather than by Buffer#write('hex'): three calls into C++ per ended transaction cost more than
   * the loop.
   */
  private writeIds(at: number, tx: TransactionRecord): boolean {
    return (
      tx.traceId.length === 32 &&
      tx.serverSpanId.length === 16 &&
      tx.clientSpanId.length === 16 &&
      writeLowerHex(this.ids, at, tx.traceId) &&
      writeLowerHex(this.ids, at + 16, tx.serverSpanId) &&
      writeLowerHex(this.ids, at + 24, tx.clientSpanId)
    );
  }

  /** One object per entry, made on its first lookup and handed out again after. */
  private viewOf(slot: number): EndedTransaction {
    const flags = this.flags[slot];
    let rare: RareData | undefined;
    if ((flags & RARE) !== 0) {
      rare = this.rare.get(rareKey(this.fpHi[slot], this.fpLo[slot]))!;
      if (rare.view !== null) return rare.view;
    } else {
      rare = { method: null, traceState: null, ids: null, view: null };
      this.rare.set(rareKey(this.fpHi[slot], this.fpLo[slot]), rare);
      this.flags[slot] = flags | RARE;
    }
    const at = slot * ID_BYTES;
    const ids = rare.ids;
    const m = this.method[slot];
    rare.view = new EndedTransaction(
      this.routes[this.routeIndex[slot]],
      m === OTHER_METHOD ? rare.method! : KNOWN_METHODS[m],
      ids === null ? this.ids.toString('hex', at, at + 16) : ids[0],
      ids === null ? this.ids.toString('hex', at + 16, at + 24) : ids[1],
      ids === null ? this.ids.toString('hex', at + 24, at + 32) : ids[2],
      (flags & SAMPLED) !== 0,
      rare.traceState,
      OUTCOMES[this.outcome[slot]],
      (flags & HAD_FINAL) !== 0,
    );
    return rare.view;
  }

  private slotOf(hi: number, lo: number): number {
    let i = hi & this.mask;
    while (this.fpHi[i] !== 0 || this.fpLo[i] !== 0) {
      if (this.fpHi[i] === hi && this.fpLo[i] === lo) return i;
      i = (i + 1) & this.mask;
    }
    return -1;
  }

  /**
   * Linear probing's deletion without tombstones (Knuth, TAOCP vol. 3, 6.4 Algorithm R): each later
   * entry of the cluster moves into the hole unless its home slot lies cyclically in (hole, entry].
   */
  private remove(hi: number, lo: number): void {
    let hole = this.slotOf(hi, lo);
    if (hole === -1) return;
    if ((this.flags[hole] & RARE) !== 0) this.rare.delete(rareKey(hi, lo));
    this.count--;
    let j = hole;
    for (;;) {
      j = (j + 1) & this.mask;
      if (this.fpHi[j] === 0 && this.fpLo[j] === 0) break;
      const home = this.fpHi[j] & this.mask;
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (!stays) {
        this.move(j, hole);
        hole = j;
      }
    }
    this.fpHi[hole] = 0;
    this.fpLo[hole] = 0;
  }

  private move(from: number, to: number): void {
    this.fpHi[to] = this.fpHi[from];
    this.fpLo[to] = this.fpLo[from];
    this.flags[to] = this.flags[from];
    this.outcome[to] = this.outcome[from];
    this.routeIndex[to] = this.routeIndex[from];
    this.method[to] = this.method[from];
    this.ids.copyWithin(to * ID_BYTES, from * ID_BYTES, from * ID_BYTES + ID_BYTES);
  }
}

function rareKey(hi: number, lo: number): string {
  return `${hi}:${lo}`;
}

/**
 * Lowercase hex into bytes at `at`; false at the first character that is not lowercase hex, as
 * Buffer#toString('hex') writes lowercase and the id must come back the same.
 */
function writeLowerHex(out: Buffer, at: number, hex: string): boolean {
  for (let i = 0; i < hex.length; i += 2) {
    const high = hexValue(hex.charCodeAt(i));
    const low = hexValue(hex.charCodeAt(i + 1));
    if ((high | low) < 0) return false;
    out[at + (i >> 1)] = (high << 4) | low;
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * (fingerprint, expiresAt) in the order added: the expiry times of one linger kind only grow, so the
 * expired entries are all at the head. A circular buffer in typed arrays, sized for the bound.
 */
class FifoRing {
  private readonly hi: Int32Array;
  private readonly lo: Int32Array;
  private readonly expiresAt: Float64Array;
  private head = 0;
  length = 0;
  /** The entry the last shift() took off. */
  shiftedHi = 0;
  shiftedLo = 0;

  constructor(capacity: number) {
    this.hi = new Int32Array(capacity);
    this.lo = new Int32Array(capacity);
    this.expiresAt = new Float64Array(capacity);
  }

  headExpiresAt(): number {
    return this.expiresAt[this.head];
  }

  push(hi: number, lo: number, expiresAt: number): void {
    let i = this.head + this.length;
    if (i >= this.hi.length) i -= this.hi.length;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.expiresAt[i] = expiresAt;
    this.length++;
  }

  shift(): void {
    this.shiftedHi = this.hi[this.head];
    this.shiftedLo = this.lo[this.head];
    this.head = this.head + 1 === this.hi.length ? 0 : this.head + 1;
    this.length--;
  }

  clear(): void {
    this.head = 0;
    this.length = 0;
  }
}
