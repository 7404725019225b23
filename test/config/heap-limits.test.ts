import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { resolveHeapGuardLimits, v8HeapLimitMb } from '../../src/config/heap-limits.ts';

describe('heap guard limits', () => {
  test('auto is 60% and 80% of V8 heap limit; a number is taken as it is', () => {
    const auto = { heap_soft_limit_mb: 'auto', heap_hard_limit_mb: 'auto' } as const;
    assert.deepEqual(resolveHeapGuardLimits(auto, 259.4), { softMb: 155, hardMb: 207, v8HeapLimitMb: 259 });
    assert.deepEqual(resolveHeapGuardLimits({ heap_soft_limit_mb: 100, heap_hard_limit_mb: 'auto' }, 4288), {
      softMb: 100,
      hardMb: 3430,
      v8HeapLimitMb: 4288,
    });
  });

  test('the heap limit is --max-old-space-size when given, on the command line before NODE_OPTIONS, else V8 own', () => {
    assert.equal(v8HeapLimitMb([], '--max-old-space-size=300'), 300);
    assert.equal(v8HeapLimitMb([], '--trace-gc --max_old_space_size 200'), 200);
    assert.equal(v8HeapLimitMb([], '--max-old-space-size=300 --max-old-space-size=400'), 400);
    assert.equal(v8HeapLimitMb(['--max-old-space-size=128'], '--max-old-space-size=300'), 128);
    assert.equal(
      v8HeapLimitMb(['--max-old-space-size=x'], ''),
      getHeapStatistics().heap_size_limit / 1048576,
    );
    assert.equal(v8HeapLimitMb([], ''), getHeapStatistics().heap_size_limit / 1048576);
  });
});
