import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyse, type SipFrame } from '../../bench/lib/capture.ts';

// UAC (5050) ──leg 0── box (5060) ──leg 1── UAS (5070)
const LEGS = [5060, 5070];
const frame = (tUs: number, src: number, dst: number, key: string): SipFrame => ({ tUs, src, dst, key });

test('a message is timed from its first copy on the leg before the box to its first copy after it', () => {
  const invite = 'call-1|1 INVITE|INVITE';
  const ringing = 'call-1|1 INVITE|180';
  const r = analyse(
    [
      frame(1000, 5050, 5060, invite),
      frame(1030, 5060, 5070, invite),
      frame(1100, 5070, 5060, ringing),
      frame(1112, 5060, 5050, ringing),
      // A retransmission of the INVITE pairs with nothing.
      frame(1500, 5050, 5060, invite),
    ],
    LEGS,
  );
  assert.deepEqual(r.hops[0].requestUs, [30]);
  assert.deepEqual(r.hops[0].responseUs, [12]);
  assert.equal(r.matched, 2);
  assert.equal(r.unmatched, 0);
});

test('times are kept by message: the request method, or the status and the CSeq method', () => {
  const r = analyse(
    [
      frame(0, 5050, 5060, 'c|1 INVITE|INVITE'),
      frame(40, 5060, 5070, 'c|1 INVITE|INVITE'),
      frame(100, 5070, 5060, 'c|1 INVITE|200'),
      frame(108, 5060, 5050, 'c|1 INVITE|200'),
      frame(200, 5050, 5060, 'c|2 BYE|BYE'),
      frame(225, 5060, 5070, 'c|2 BYE|BYE'),
      frame(300, 5070, 5060, 'c|2 BYE|200'),
      frame(305, 5060, 5050, 'c|2 BYE|200'),
    ],
    LEGS,
  );
  assert.deepEqual([...r.hops[0].byMessage].sort(), [
    ['200 BYE', [5]],
    ['200 INVITE', [8]],
    ['BYE', [25]],
    ['INVITE', [40]],
  ]);
});

test('a message that finds the box idle for a millisecond is told apart from those in its burst', () => {
  const r = analyse(
    [
      // A burst: the INVITE wakes the box, the second INVITE arrives while it is busy.
      frame(0, 5050, 5060, 'a|1 INVITE|INVITE'),
      frame(10, 5050, 5060, 'b|1 INVITE|INVITE'),
      frame(150, 5060, 5070, 'a|1 INVITE|INVITE'),
      frame(190, 5060, 5070, 'b|1 INVITE|INVITE'),
      // 900 µs after the last send: still the same burst.
      frame(1090, 5070, 5060, 'a|1 INVITE|180'),
      frame(1120, 5060, 5050, 'a|1 INVITE|180'),
      // 1,000 µs after the last send: a new burst.
      frame(2120, 5050, 5060, 'c|1 INVITE|INVITE'),
      frame(2250, 5060, 5070, 'c|1 INVITE|INVITE'),
    ],
    LEGS,
  );
  assert.deepEqual(r.hops[0].afterIdleUs, [150, 130]);
  assert.deepEqual(r.hops[0].inBurstUs, [180, 30]);
});
