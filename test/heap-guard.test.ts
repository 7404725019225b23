import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { heapGuardLevel, LiveHeap } from '../src/heap-guard.ts';
import { gc } from './reliability/support/harness.ts';

const limits = { softMb: 100, hardMb: 200, v8HeapLimitMb: 250 };

describe('heap guard', () => {
  test('a level is reached at its limit and left only 10% below it', () => {
    assert.equal(heapGuardLevel('ok', 99, limits), 'ok');
    assert.equal(heapGuardLevel('ok', 100, limits), 'soft');
    assert.equal(heapGuardLevel('ok', 200, limits), 'hard');
    assert.equal(heapGuardLevel('soft', 95, limits), 'soft', 'held within 10% of the soft limit');
    assert.equal(heapGuardLevel('soft', 89, limits), 'ok');
    assert.equal(heapGuardLevel('hard', 185, limits), 'hard', 'held within 10% of the hard limit');
    assert.equal(heapGuardLevel('hard', 179, limits), 'soft');
    assert.equal(heapGuardLevel('hard', 50, limits), 'ok');
  });

  test('the live heap is what a full collection left, not the garbage made since', async () => {
    const live = new LiveHeap();
    live.start();
    try {
      assert.ok(live.mb > 0 && live.mb <= getHeapStatistics().used_heap_size / 1048576 + 0.01);
      gc();
      // The observer hears of the collection after the turn that ran it.
      await new Promise((r) => setTimeout(r, 20));
      const afterCollection = live.mb;
      // Held until measured, so that no scavenge takes it first; garbage once dropped.
      let held: string[] | null = [];
      for (let i = 0; i < 200_000; i++) held.push(`garbage ${i}`.padEnd(100, '.'));
      const usedNow = getHeapStatistics().used_heap_size / 1048576;
      assert.ok(usedNow > afterCollection + 10, `allocated since: ${usedNow} against ${afterCollection} MiB`);
      held = null;
      assert.ok(
        live.mb <= afterCollection + 0.5,
        `live ${live.mb} MiB, ${afterCollection} after the collection`,
      );
    } finally {
      live.stop();
    }
  });
});
