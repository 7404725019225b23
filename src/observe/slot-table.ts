import { KeyHash } from './key-hash.ts';

/** Columns of this many slots are never shrunk: a few dozen open transactions or calls fit in them. */
const MIN_SLOTS = 64;
/**
 * A shrink waits until the table has seen this many changes (adds and removals) per slot since its
 * last resize, at most MAX_SHRINK_WAIT: a resize's cost, spread over the changes before it.
 */
const SHRINK_WAIT_PER_SLOT = 4;
const MAX_SHRINK_WAIT = 1 << 16;

/**
 * A string-keyed table for entries that come and go at message rate (open transactions, calls, B2BUA
 * legs), kept in insertion order.
 *
 * Why not a Map: V8's Map compacts its hash table by allocating a new one every few dozen
 * set/delete pairs, and leaves in the old one a link to the new one (for live iterators). Once a
 * table in that chain has been promoted, the young-generation collector treats its link as a root:
 * every later table, and every entry any of them held, survives each scavenge and is promoted, dead
 * or not, until the next full collection. Through sipspan's tables that was ~10% of everything
 * allocated on the forwarding path, promoted (~2.8 MB per scavenge at 2000 calls/s; bench/README.md).
 * Here a removed entry's slots are cleared at once, and a resize leaves nothing pointing from the old
 * columns to the new ones, so nothing outlives its removal.
 *
 *   key ──▶ seeded hash ──▶ slot (linear probing, load ≤ 1/2, deletion by backward shift)
 *   per slot: hash · key · value · older/newer slot (a doubly linked list in insertion order)
 *
 * The columns follow the number of entries (doubling past load 1/2, halving under 1/8), not the
 * bound: a few dozen open transactions stay in a few cache lines, where columns sized for 100,000
 * entries cost a cache miss per column on every lookup. Halving waits for
 * SHRINK_WAIT_PER_SLOT changes per slot since the last resize: the number of open transactions swings
 * with every burst of the load, and at 2000 calls/s, with 16-slot columns halved as soon as the load
 * fell under 1/8, the tables resized ~500 times a second (one allocation of five columns every four
 * calls).
 *
 * Walks go oldest first: `for (let s = t.oldest; s !== -1; s = t.newer(s)) t.valueAt(s)`. A walk must
 * not add or delete (a deletion moves entries between slots): collect first, then act.
 */
export class SlotTable<V> {
  private readonly maxEntries: number;
  private readonly hash = new KeyHash();
  private mask = 0;
  private hashes = EMPTY_INTS;
  private keys: (string | null)[] = [];
  private values: (V | null)[] = [];
  private olderSlot = EMPTY_INTS;
  private newerSlot = EMPTY_INTS;
  private oldestSlot = -1;
  private newestSlot = -1;
  private count = 0;
  /** Adds and removals since the columns were last allocated. */
  private changes = 0;

  private readonly shrinkWaitPerSlot: number;

  /** At most `maxEntries`: `set` refuses a new key past that. */
  constructor(maxEntries: number, shrinkWaitPerSlot = SHRINK_WAIT_PER_SLOT) {
    this.maxEntries = maxEntries;
    this.shrinkWaitPerSlot = shrinkWaitPerSlot;
    this.allocate(MIN_SLOTS);
  }

  get size(): number {
    return this.count;
  }

  /** Slots in the columns (a power of two, at least twice the entries). */
  get capacity(): number {
    return this.mask + 1;
  }

  get(key: string): V | undefined {
    const slot = this.slotOf(key, this.hash.hash32(key));
    return slot === -1 ? undefined : (this.values[slot] as V);
  }

  /** Adds `key` as the newest entry, or replaces its value where it stands. False when full. */
  set(key: string, value: V): boolean {
    const h = this.hash.hash32(key);
    const slot = this.slotOf(key, h);
    if (slot !== -1) {
      this.values[slot] = value;
      return true;
    }
    if (this.count >= this.maxEntries) return false;
    if (2 * (this.count + 1) > this.mask + 1) this.resize(2 * (this.mask + 1));
    this.append(h, key, value);
    this.changes++;
    return true;
  }

  /**
   * Linear probing's deletion without tombstones (Knuth, TAOCP vol. 3, 6.4 Algorithm R): each later
   * entry of the cluster moves into the hole unless its home slot lies cyclically in (hole, entry].
   */
  delete(key: string): boolean {
    let hole = this.slotOf(key, this.hash.hash32(key));
    if (hole === -1) return false;
    this.unlink(hole);
    this.count--;
    let j = hole;
    for (;;) {
      j = (j + 1) & this.mask;
      if (this.keys[j] === null) break;
      const home = this.hashes[j] & this.mask;
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (!stays) {
        this.move(j, hole);
        hole = j;
      }
    }
    this.keys[hole] = null;
    this.values[hole] = null;
    this.changes++;
    const slots = this.mask + 1;
    if (
      slots > MIN_SLOTS &&
      8 * this.count < slots &&
      this.changes >= Math.min(this.shrinkWaitPerSlot * slots, MAX_SHRINK_WAIT)
    )
      this.resize(slots / 2);
    return true;
  }

  clear(): void {
    this.allocate(MIN_SLOTS);
  }

  /** The oldest entry's slot, or -1. */
  get oldest(): number {
    return this.oldestSlot;
  }

  /** The slot of the entry added after the one in `slot`, or -1. */
  newer(slot: number): number {
    return this.newerSlot[slot];
  }

  valueAt(slot: number): V {
    return this.values[slot] as V;
  }

  keyAt(slot: number): string {
    return this.keys[slot] as string;
  }

  /** Fresh columns of `slots` (a power of two), empty. */
  private allocate(slots: number): void {
    this.mask = slots - 1;
    this.hashes = new Int32Array(slots);
    this.keys = new Array<string | null>(slots).fill(null);
    this.values = new Array<V | null>(slots).fill(null);
    this.olderSlot = new Int32Array(slots);
    this.newerSlot = new Int32Array(slots);
    this.oldestSlot = -1;
    this.newestSlot = -1;
    this.count = 0;
    this.changes = 0;
  }

  /** The entries, oldest first, into fresh columns of `slots`. */
  private resize(slots: number): void {
    const hashes = this.hashes;
    const keys = this.keys;
    const values = this.values;
    const newer = this.newerSlot;
    let s = this.oldestSlot;
    this.allocate(slots);
    for (; s !== -1; s = newer[s]) this.append(hashes[s], keys[s] as string, values[s] as V);
  }

  /** A key known to be absent, as the newest entry. */
  private append(h: number, key: string, value: V): void {
    let i = h & this.mask;
    while (this.keys[i] !== null) i = (i + 1) & this.mask;
    this.hashes[i] = h;
    this.keys[i] = key;
    this.values[i] = value;
    this.olderSlot[i] = this.newestSlot;
    this.newerSlot[i] = -1;
    if (this.newestSlot === -1) this.oldestSlot = i;
    else this.newerSlot[this.newestSlot] = i;
    this.newestSlot = i;
    this.count++;
  }

  private slotOf(key: string, h: number): number {
    let i = h & this.mask;
    for (;;) {
      const k = this.keys[i];
      if (k === null) return -1;
      if (this.hashes[i] === h && k === key) return i;
      i = (i + 1) & this.mask;
    }
  }

  private unlink(slot: number): void {
    const older = this.olderSlot[slot];
    const newer = this.newerSlot[slot];
    if (older === -1) this.oldestSlot = newer;
    else this.newerSlot[older] = newer;
    if (newer === -1) this.newestSlot = older;
    else this.olderSlot[newer] = older;
  }

  /** The entry in `from` moves to the empty slot `to`; its neighbours in the order follow it. */
  private move(from: number, to: number): void {
    this.hashes[to] = this.hashes[from];
    this.keys[to] = this.keys[from];
    this.values[to] = this.values[from];
    const older = this.olderSlot[from];
    const newer = this.newerSlot[from];
    this.olderSlot[to] = older;
    this.newerSlot[to] = newer;
    if (older === -1) this.oldestSlot = to;
    else this.newerSlot[older] = to;
    if (newer === -1) this.newestSlot = to;
    else this.olderSlot[newer] = to;
  }
}

const EMPTY_INTS = new Int32Array(0);
