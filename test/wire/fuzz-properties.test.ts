/**
 * Bounded, seeded fuzzing of the wire layer (a few thousand runs, seconds).
 * The same properties run for millions of executions in bench/fuzz-wire.ts.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import {
  boundsArb,
  boundsProperty,
  datagramProperty,
  editCaseArb,
  editProperty,
  mutatedInputArb,
  rangeArb,
  rangeProperty,
  streamCaseArb,
  streamProperty,
} from './wire-properties.ts';

const SEED = 5118;

test('mutated corpus messages as UDP datagrams: no exception, every offset inside the buffer, readers safe', () => {
  fc.assert(fc.property(mutatedInputArb, datagramProperty), { numRuns: 4000, seed: SEED });
});

test('mutated corpus pipelines over TCP, randomly chunked: same frames as whole, bounded buffering', () => {
  fc.assert(fc.property(streamCaseArb, streamProperty), { numRuns: 1000, seed: SEED });
});

test('random insert/remove/replace edits apply as the reference splice and undo to the original bytes', () => {
  fc.assert(fc.property(editCaseArb, editProperty), { numRuns: 2000, seed: SEED });
});

test('scanning any sub-range of a mutated buffer stays inside that range', () => {
  fc.assert(
    fc.property(rangeArb, ([m, a, b]) => rangeProperty(m, a, b)),
    { numRuns: 2000, seed: SEED },
  );
});

test('readers look only at their range: a byte after the end never changes the answer', () => {
  fc.assert(
    fc.property(boundsArb, ([value, prefix, junk]) => boundsProperty(value, prefix, junk)),
    { numRuns: 4000, seed: SEED },
  );
});
