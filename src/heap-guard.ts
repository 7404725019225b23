import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { HeapGuardLimits } from './config/heap-limits.ts';

export type HeapGuardLevel = 'ok' | 'soft' | 'hard';

/**
 * A level is left only once the live heap is this far below it: a heap that hovers at a
 * threshold (a flood that refills the tables as fast as they expire) would otherwise flip the
 * level, and write a warning, with every collection.
 */
const LEAVE_SHARE = 0.9;

/** The level for a live heap of `liveMb`, coming from `current`. */
export function heapGuardLevel(
  current: HeapGuardLevel,
  liveMb: number,
  limits: HeapGuardLimits,
): HeapGuardLevel {
  if (liveMb >= limits.hardMb) return 'hard';
  if (current === 'hard' && liveMb >= limits.hardMb * LEAVE_SHARE) return 'hard';
  if (liveMb >= limits.softMb) return 'soft';
  if (current !== 'ok' && liveMb >= limits.softMb * LEAVE_SHARE) return 'soft';
  return 'ok';
}

/**
 * The heap that is alive, as the guard judges it: the heap in use right after the last full
 * collection, or the heap in use now when that is less (or before the first one).
 *
 * The heap in use at any moment also holds the garbage made since the last collection. Under
 * a flood, with a small heap limit, V8 lets it grow to near the limit before it collects: a guard
 * reading it would shed calls for garbage. What survives a full collection is what the tables hold.
 */
export class LiveHeap {
  private afterFullCollection = -1;
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as { detail?: { kind?: number } }).detail;
      if (detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        this.afterFullCollection = getHeapStatistics().used_heap_size;
        return;
      }
    }
  });

  start(): void {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    this.observer.disconnect();
  }

  get mb(): number {
    const now = getHeapStatistics().used_heap_size;
    const live =
      this.afterFullCollection < 0 || now < this.afterFullCollection ? now : this.afterFullCollection;
    return live / (1024 * 1024);
  }
}
