import assert from 'node:assert/strict';
import { channel } from 'node:diagnostics_channel';
import { describe, test } from 'node:test';
import { DeferredEvents } from '../../src/observe/deferred-events.ts';

const a = channel('test:deferred:a');
const b = channel('test:deferred:b');

/** Subscribe to both test channels, run `fn`, unsubscribe. */
async function withSubscribers(fn: (seen: string[]) => Promise<void> | void): Promise<void> {
  const seen: string[] = [];
  const onA = (m: unknown) => seen.push(`a:${m}`);
  const onB = (m: unknown) => seen.push(`b:${m}`);
  a.subscribe(onA);
  b.subscribe(onB);
  try {
    await fn(seen);
  } finally {
    a.unsubscribe(onA);
    b.unsubscribe(onB);
  }
}

const nextTurn = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('deferred events', () => {
  test('wait for others, then are published together in the order they were queued', async () => {
    await withSubscribers(async (seen) => {
      const events = new DeferredEvents(100, 64, 30);
      events.publish(a, 1);
      events.publish(b, 2);
      events.publish(a, 3);
      await nextTurn();
      assert.deepEqual(seen, [], 'not at the end of the turn that queued them');
      assert.equal(events.size, 3);
      await sleep(40);
      assert.deepEqual(seen, ['a:1', 'b:2', 'a:3'], 'published once the oldest has waited 30 ms');
      assert.equal(events.size, 0);
      events.publish(b, 4);
      await sleep(40);
      assert.deepEqual(seen, ['a:1', 'b:2', 'a:3', 'b:4'], 'a later event starts its own wait');
    });
  });

  test('a full group outside a batch is published in the check phase of the turn that filled it', async () => {
    await withSubscribers(async (seen) => {
      const events = new DeferredEvents(100, 3, 60_000);
      events.publish(a, 1);
      events.publish(a, 2);
      events.publish(b, 3);
      assert.deepEqual(seen, [], 'not while the turn forwards');
      await nextTurn();
      assert.deepEqual(seen, ['a:1', 'a:2', 'b:3']);
      events.flush();
    });
  });

  test("a full group in a batch of reads is published at the batch's end, not in the check phase", async () => {
    await withSubscribers(async (seen) => {
      const events = new DeferredEvents(100, 2, 60_000);
      let checkPhaseRan = false;
      setImmediate(() => {
        checkPhaseRan = true;
      });
      events.batchStart();
      events.publish(a, 1);
      events.batchEnd();
      assert.deepEqual(seen, [], 'one event is not a group: it waits');
      events.batchStart();
      events.publish(b, 2);
      events.publish(a, 3);
      assert.deepEqual(seen, [], 'held while the batch is handled');
      events.batchEnd();
      assert.deepEqual(seen, ['a:1', 'b:2', 'a:3']);
      assert.equal(checkPhaseRan, false);
      assert.equal(events.size, 0);
    });
  });

  test('the wait does not hold the process open', async () => {
    await withSubscribers(() => {
      const events = new DeferredEvents(100, 64, 60_000);
      events.publish(a, 1);
      assert.equal(process.getActiveResourcesInfo().includes('Timeout'), false);
      events.flush();
    });
  });

  test('flush() publishes at once (shutdown, before the sinks flush)', async () => {
    await withSubscribers(async (seen) => {
      const events = new DeferredEvents(100);
      events.publish(a, 1);
      events.flush();
      assert.deepEqual(seen, ['a:1']);
      await nextTurn();
      assert.deepEqual(seen, ['a:1'], 'nothing twice');
    });
  });

  test('past its bound the queue is published at once: memory stays bounded within a turn', async () => {
    await withSubscribers((seen) => {
      const events = new DeferredEvents(3);
      for (let i = 0; i < 7; i++) events.publish(a, i);
      assert.deepEqual(seen, ['a:0', 'a:1', 'a:2', 'a:3', 'a:4', 'a:5']);
      assert.equal(events.size, 1);
      events.flush();
    });
  });

  test('with nobody subscribed nothing is queued', () => {
    const events = new DeferredEvents(10);
    events.publish(channel('test:deferred:nobody'), 1);
    assert.equal(events.size, 0);
  });
});
