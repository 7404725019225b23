/**
 * Entries in the order they were added, whose expiry times only grow (each is
 * `added at + a fixed delay`): expired ones are all at the head, so a sweep
 * costs what has expired, not what the table holds. A head index instead of
 * shift() keeps removal O(1); the array is compacted once half of it is spent.
 */
export class ExpiryQueue<T extends { expiresAt: number }> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Remove and hand over the oldest entry (a full queue makes room early). */
  dropOldest(onDropped: (item: T) => void): void {
    if (this.head >= this.items.length) return;
    const item = this.items[this.head];
    (this.items as (T | undefined)[])[this.head] = undefined;
    this.head++;
    onDropped(item);
  }

  /** Remove and hand over every entry whose expiry time has passed. */
  drain(now: number, onExpired: (item: T) => void): void {
    const items = this.items;
    while (this.head < items.length && items[this.head].expiresAt <= now) {
      const item = items[this.head];
      (items as (T | undefined)[])[this.head] = undefined;
      this.head++;
      onExpired(item);
    }
    if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
