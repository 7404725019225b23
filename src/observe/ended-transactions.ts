import { Buffer } from 'node:buffer';
import { KNOWN_METHODS } from '../wire/methods.ts';
import { KeyHash } from './key-hash.ts';
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
/**
 * One slot, 48 bytes, as 12 int32 words: fingerprint hi, lo; meta (flags | outcome << 8 | method << 16);
 * route index; then the ids as bytes: trace id (16), server span id (8), client span id (8).
 */
const SLOT_WORDS = 12;
const SLOT_BYTES = 4 * SLOT_WORDS;
const W_HI = 0;
const W_LO = 1;
const W_META = 2;
const W_ROUTE = 3;
const IDS_AT = 16;

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
 *   per slot, 48 contiguous bytes: fingerprint · flags · outcome · method · route · ids (32 bytes)
 *   one FIFO ring per linger kind: (fingerprint, expiresAt), oldest first; a drain removes what expired
 *
 * The slots are sized once for the bound (both kinds full at load 1/2), in one zero-filled
 * allocation, so the kernel backs only the pages entries have touched; nothing is rehashed under load.
 * A slot's fields sit together: an add, a lookup or a removal costs one or two cache lines, where
 * a column per field cost a cache miss per field (the table is far larger than the caches).
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
  private readonly words: Int32Array;
  /** The same memory as bytes, for the ids. */
  private readonly bytes: Buffer;
  private readonly routes: RouteInfo[] = [];
  private readonly rare = new Map<string, RareData>();
  private readonly rings: [FifoRing, FifoRing];

  /** `maxPerKind` entries per linger kind at most: past that the oldest of its kind goes early. */
  constructor(maxPerKind: number) {
    this.maxPerKind = maxPerKind;
    const slots = nextPowerOfTwo(4 * maxPerKind);
    this.mask = slots - 1;
    this.words = new Int32Array(slots * SLOT_WORDS);
    this.bytes = Buffer.from(this.words.buffer, this.words.byteOffset, this.words.byteLength);
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
    const words = this.words;
    let i = hi & this.mask;
    let w = i * SLOT_WORDS;
    while (words[w + W_HI] !== 0 || words[w + W_LO] !== 0) {
      // A key already here cannot end again (a request that finds it is a retransmission): replace it.
      if (words[w + W_HI] === hi && words[w + W_LO] === lo) break;
      i = (i + 1) & this.mask;
      w = i * SLOT_WORDS;
    }
    if (words[w + W_HI] === 0 && words[w + W_LO] === 0) this.count++;
    else if ((words[w + W_META] & RARE) !== 0) this.rare.delete(rareKey(hi, lo));
    words[w + W_HI] = hi;
    words[w + W_LO] = lo;
    const route = tx.route;
    if (this.routes[route.index] !== route) this.routes[route.index] = route;
    words[w + W_ROUTE] = route.index;
    const known = KNOWN_METHODS.indexOf(tx.method as (typeof KNOWN_METHODS)[number]);
    const m = known === -1 ? OTHER_METHOD : known;
    const exact = this.writeIds(i * SLOT_BYTES + IDS_AT, tx);
    let flags = (tx.sampled ? SAMPLED : 0) | (tx.finalResponseIn !== -1 ? HAD_FINAL : 0);
    if (known === -1 || tx.traceState !== null || !exact) {
      flags |= RARE;
      this.rare.set(rareKey(hi, lo), {
        method: known === -1 ? tx.method : null,
        traceState: tx.traceState,
        ids: exact ? null : [tx.traceId, tx.serverSpanId, tx.clientSpanId],
        view: null,
      });
    }
    words[w + W_META] = flags | (OUTCOMES.indexOf(tx.outcome ?? 'completed') << 8) | (m << 16);
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
    this.words.fill(0);
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
      writeLowerHex(this.bytes, at, tx.traceId) &&
      writeLowerHex(this.bytes, at + 16, tx.serverSpanId) &&
      writeLowerHex(this.bytes, at + 24, tx.clientSpanId)
    );
  }

  /** One object per entry, made on its first lookup and handed out again after. */
  private viewOf(slot: number): EndedTransaction {
    const w = slot * SLOT_WORDS;
    const meta = this.words[w + W_META];
    let rare: RareData | undefined;
    if ((meta & RARE) !== 0) {
      rare = this.rare.get(rareKey(this.words[w + W_HI], this.words[w + W_LO]))!;
      if (rare.view !== null) return rare.view;
    } else {
      rare = { method: null, traceState: null, ids: null, view: null };
      this.rare.set(rareKey(this.words[w + W_HI], this.words[w + W_LO]), rare);
      this.words[w + W_META] = meta | RARE;
    }
    const at = slot * SLOT_BYTES + IDS_AT;
    const ids = rare.ids;
    const m = (meta >>> 16) & 0xff;
    rare.view = new EndedTransaction(
      this.routes[this.words[w + W_ROUTE]],
      m === OTHER_METHOD ? rare.method! : KNOWN_METHODS[m],
      ids === null ? this.bytes.toString('hex', at, at + 16) : ids[0],
      ids === null ? this.bytes.toString('hex', at + 16, at + 24) : ids[1],
      ids === null ? this.bytes.toString('hex', at + 24, at + 32) : ids[2],
      (meta & SAMPLED) !== 0,
      rare.traceState,
      OUTCOMES[(meta >>> 8) & 0xff],
      (meta & HAD_FINAL) !== 0,
    );
    return rare.view;
  }

  private slotOf(hi: number, lo: number): number {
    const words = this.words;
    let i = hi & this.mask;
    for (;;) {
      const w = i * SLOT_WORDS;
      const h = words[w + W_HI];
      const l = words[w + W_LO];
      if (h === hi && l === lo) return i;
      if (h === 0 && l === 0) return -1;
      i = (i + 1) & this.mask;
    }
  }

  /**
   * Linear probing's deletion without tombstones (Knuth, TAOCP vol. 3, 6.4 Algorithm R): each later
   * entry of the cluster moves into the hole unless its home slot lies cyclically in (hole, entry].
   */
  private remove(hi: number, lo: number): void {
    let hole = this.slotOf(hi, lo);
    if (hole === -1) return;
    const words = this.words;
    if ((words[hole * SLOT_WORDS + W_META] & RARE) !== 0) this.rare.delete(rareKey(hi, lo));
    this.count--;
    let j = hole;
    for (;;) {
      j = (j + 1) & this.mask;
      const w = j * SLOT_WORDS;
      if (words[w + W_HI] === 0 && words[w + W_LO] === 0) break;
      const home = words[w + W_HI] & this.mask;
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (!stays) {
        this.move(j, hole);
        hole = j;
      }
    }
    words[hole * SLOT_WORDS + W_HI] = 0;
    words[hole * SLOT_WORDS + W_LO] = 0;
  }

  private move(from: number, to: number): void {
    const words = this.words;
    const f = from * SLOT_WORDS;
    const t = to * SLOT_WORDS;
    for (let k = 0; k < SLOT_WORDS; k++) words[t + k] = words[f + k];
  }
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function rareKey(hi: number, lo: number): string {
  return `${hi}:${lo}`;
}

/**
 * Lowercase hex into bytes at `at`; false at the first character that is not lowercase hex, as
 * Buffer#toString('hex') writes lowercase and the id must come back the same.
 */
function writeLowerHex(out: Buffer, at: number, hex: string): boolean {
  let bad = 0;
  for (let i = 0; i < hex.length; i += 2) {
    const c1 = hex.charCodeAt(i);
    const c2 = hex.charCodeAt(i + 1);
    const high = c1 < 128 ? HEX_VALUE[c1] : NOT_HEX;
    const low = c2 < 128 ? HEX_VALUE[c2] : NOT_HEX;
    bad |= high | low;
    out[at + (i >> 1)] = (high << 4) | low;
  }
  return (bad & ~0xf) === 0;
}

/** Lowercase hex digits to their value; anything else has bits above the low four set. */
const NOT_HEX = 0xf0;
const HEX_VALUE = new Uint8Array(128).fill(NOT_HEX);
for (let d = 0; d < 16; d++) HEX_VALUE['0123456789abcdef'.charCodeAt(d)] = d;

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
