import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SlotTable } from '../../src/observe/slot-table.ts';

/** The entries as a walk sees them: [key, value], oldest first. */
function walk<V>(table: SlotTable<V>): [string, V][] {
  const out: [string, V][] = [];
  for (let s = table.oldest; s !== -1; s = table.newer(s)) out.push([table.keyAt(s), table.valueAt(s)]);
  return out;
}

type Op =
  | { kind: 'set'; key: string; value: number }
  | { kind: 'delete'; key: string }
  | { kind: 'get'; key: string };

const key = fc.integer({ min: 0, max: 300 }).map((n) => `z9hG4bK-${n}|INVITE`);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key, value: fc.integer() }),
  fc.record({ kind: fc.constant('delete' as const), key }),
  fc.record({ kind: fc.constant('get' as const), key }),
);

describe('slot table', () => {
  test('behaves as a Map in insertion order, through growth and shrinking', () => {
    // Random operations, then every key removed in a random order (the columns halve on the way
    // down), then random operations again. A shrink wait of 0 halves as soon as the load allows.
    const keys = Array.from({ length: 301 }, (_, n) => `z9hG4bK-${n}|INVITE`);
    const drain = fc.shuffledSubarray(keys, { minLength: keys.length });
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 200, maxLength: 2000 }),
        drain,
        fc.array(op, { maxLength: 500 }),
        fc.constantFrom(0, 4),
        (ops, drained, more, shrinkWait) => {
          const table = new SlotTable<number>(1000, shrinkWait);
          const model = new Map<string, number>();
          const run = (o: Op) => {
            if (o.kind === 'set') {
              assert.equal(table.set(o.key, o.value), true);
              model.set(o.key, o.value);
            } else if (o.kind === 'delete') {
              assert.equal(table.delete(o.key), model.delete(o.key));
            } else {
              assert.equal(table.get(o.key), model.get(o.key));
            }
            assert.equal(table.size, model.size);
          };
          for (const o of ops) run(o);
          assert.deepEqual(walk(table), [...model]);
          for (const k of drained) {
            run({ kind: 'delete', key: k });
            if (model.size % 16 === 0) assert.deepEqual(walk(table), [...model]);
          }
          if (shrinkWait === 0) assert.equal(table.capacity, 64);
          for (const o of more) run(o);
          assert.deepEqual(walk(table), [...model]);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('refuses a new key past its bound, still replaces a known one', () => {
    const table = new SlotTable<string>(3);
    for (const k of ['a', 'b', 'c']) assert.equal(table.set(k, k), true);
    assert.equal(table.set('d', 'd'), false);
    assert.equal(table.get('d'), undefined);
    assert.equal(table.set('b', 'B'), true);
    assert.deepEqual(walk(table), [
      ['a', 'a'],
      ['b', 'B'],
      ['c', 'c'],
    ]);
    table.delete('a');
    assert.equal(table.set('d', 'd'), true);
    assert.deepEqual(
      walk(table).map(([k]) => k),
      ['b', 'c', 'd'],
    );
  });

  test('a removed value is let go (nothing in the table points to it)', async () => {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    const table = new SlotTable<object>(100);
    let ref: WeakRef<object> | null = null;
    (() => {
      const value = {};
      ref = new WeakRef(value);
      for (let i = 0; i < 40; i++) table.set(`k${i}`, i === 7 ? value : {});
      table.delete('k7');
    })();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.equal((ref as WeakRef<object> | null)?.deref(), undefined);
    assert.equal(table.size, 39);
  });

  test('entries that swing with each burst of load do not resize the columns at every swing', () => {
    const table = new SlotTable<number>(10_000);
    let resizes = 0;
    let capacity = table.capacity;
    const note = () => {
      if (table.capacity !== capacity) resizes++;
      capacity = table.capacity;
    };
    // 200 bursts: 100 open transactions, then 10 left (under 1/8 of 256 slots).
    for (let burst = 0; burst < 200; burst++) {
      for (let i = 0; i < 100; i++) {
        table.set(`b${burst}-${i}`, i);
        note();
      }
      for (let i = 0; i < 90; i++) {
        table.delete(`b${burst}-${i}`);
        note();
      }
      for (let i = 90; i < 100; i++) table.delete(`b${burst}-${i}`);
    }
    // A halving waits 4 changes per slot (~1000 here, about five bursts): ~2 resizes per 5 bursts,
    // where halving at once resized twice per burst.
    assert.ok(resizes <= 100, `${resizes} resizes in 200 bursts`);
    assert.equal(table.size, 0);
  });

  test('columns halve down to their floor once the entries have stayed few, keeping every entry', () => {
    const table = new SlotTable<number>(10_000);
    const model = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      table.set(`k${i}`, i);
      model.set(`k${i}`, i);
    }
    assert.equal(table.capacity, 2048);
    for (let i = 0; i < 995; i++) {
      table.delete(`k${i}`);
      model.delete(`k${i}`);
    }
    const capacities = new Set([table.capacity]);
    for (let i = 0; i < 20_000; i++) {
      table.set('churn', i);
      table.delete('churn');
      capacities.add(table.capacity);
    }
    assert.equal(table.capacity, 64);
    assert.deepEqual(
      [...capacities].sort((a, b) => b - a),
      [2048, 1024, 512, 256, 128, 64],
    );
    assert.deepEqual(walk(table), [...model]);
    for (const [k, v] of model) assert.equal(table.get(k), v);
  });

  test('clear empties it and it fills again', () => {
    const table = new SlotTable<number>(100);
    for (let i = 0; i < 50; i++) table.set(`k${i}`, i);
    table.clear();
    assert.equal(table.size, 0);
    assert.equal(table.oldest, -1);
    assert.equal(table.get('k1'), undefined);
    table.set('k1', 1);
    assert.deepEqual(walk(table), [['k1', 1]]);
  });
});
