import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newSpanId, newTraceId } from '../../src/observe/trace-ids.ts';

describe('trace and span ids', () => {
  test('lowercase hex of the W3C lengths, never all zeros, and not repeating', () => {
    const seen = new Set<string>();
    // More ids than the random pool holds, so it is refilled on the way.
    for (let i = 0; i < 2000; i++) {
      const trace = newTraceId();
      const span = newSpanId();
      assert.match(trace, /^[0-9a-f]{32}$/);
      assert.match(span, /^[0-9a-f]{16}$/);
      assert.notEqual(trace, '0'.repeat(32));
      assert.notEqual(span, '0'.repeat(16));
      seen.add(trace);
      seen.add(span);
    }
    assert.equal(seen.size, 4000);
  });

  test('every hex digit turns up in every position: the bytes are spread over the digits', () => {
    const digits = Array.from({ length: 16 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) {
      const id = newSpanId();
      for (let k = 0; k < 16; k++) digits[k].add(id[k]);
    }
    for (const d of digits) assert.equal(d.size, 16);
  });
});
