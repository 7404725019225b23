import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ExpiryQueue } from '../../src/observe/expiry-queue.ts';

describe('ExpiryQueue', () => {
  test('hands over only the entries whose time has passed, oldest first, and keeps the rest', () => {
    const q = new ExpiryQueue<{ expiresAt: number; id: number }>();
    for (let i = 0; i < 5; i++) q.push({ expiresAt: 100 + i * 10, id: i });
    const out: number[] = [];
    q.drain(125, (e) => out.push(e.id));
    assert.deepEqual(out, [0, 1, 2]);
    assert.equal(q.size, 2);
    q.drain(125, (e) => out.push(e.id));
    assert.deepEqual(out, [0, 1, 2], 'nothing more before its time');
    q.drain(1000, (e) => out.push(e.id));
    assert.deepEqual(out, [0, 1, 2, 3, 4]);
    assert.equal(q.size, 0);
  });

  test('a full queue drops its oldest entry on demand; compaction keeps the order across many entries', () => {
    const q = new ExpiryQueue<{ expiresAt: number; id: number }>();
    const dropped: number[] = [];
    for (let i = 0; i < 5000; i++) q.push({ expiresAt: i, id: i });
    q.dropOldest((e) => dropped.push(e.id));
    assert.deepEqual(dropped, [0]);
    const seen: number[] = [];
    q.drain(2999, (e) => seen.push(e.id));
    assert.equal(seen.length, 2999);
    assert.equal(seen[0], 1);
    assert.equal(q.size, 2000);
    for (let i = 5000; i < 5100; i++) q.push({ expiresAt: i, id: i });
    q.drain(Number.POSITIVE_INFINITY, (e) => seen.push(e.id));
    assert.deepEqual(seen.slice(-3), [5097, 5098, 5099]);
    assert.equal(seen.length, 2999 + 2100);
    q.dropOldest(() => assert.fail('an empty queue has nothing to drop'));
  });
});
