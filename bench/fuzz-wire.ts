/**
 * Long fuzzing run of the wire layer (`npm run fuzz`): the properties of
 * test/wire/fuzz-properties.test.ts for many more executions, and the native header index held to
 * the scanner (test/native/header-index.test.ts).
 *
 *   node bench/fuzz-wire.ts [--runs N] [--seed S] [--only NAME[,NAME]]
 *
 * --runs is the total number of executions (default 1,000,000), shared among
 * the properties by the weights below. Prints executions, time and rate per
 * property, and every counterexample fast-check found, minimised, with the seed
 * and path that replay it. Exits 1 when a property failed.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { describeIndexCase, indexCaseArb, indexProperty } from '../test/native/header-index-properties.ts';
import {
  boundsArb,
  boundsProperty,
  datagramProperty,
  describeInput,
  editCaseArb,
  editProperty,
  mutatedInputArb,
  rangeArb,
  rangeProperty,
  streamBytes,
  streamCaseArb,
  streamProperty,
} from '../test/wire/wire-properties.ts';

interface Outcome {
  failed: boolean;
  numRuns: number;
  numShrinks: number;
  seed: number;
  path: string | null;
  /** A readable form of the minimised counterexample. */
  counterexample: string | null;
  error: string;
}

interface Target {
  name: string;
  /** Share of the total runs. */
  weight: number;
  run: (numRuns: number, seed: number) => Outcome;
}

function target<Ts extends [unknown, ...unknown[]]>(
  name: string,
  weight: number,
  property: () => fc.IProperty<Ts>,
  show: (counterexample: Ts) => string,
): Target {
  return {
    name,
    weight,
    run: (numRuns, seed) => {
      const d = fc.check(property(), { numRuns, seed, endOnFailure: false });
      return {
        failed: d.failed,
        numRuns: d.numRuns,
        numShrinks: d.numShrinks,
        seed: d.seed,
        path: d.counterexamplePath,
        counterexample: d.counterexample === null ? null : show(d.counterexample),
        error: d.errorInstance instanceof Error ? d.errorInstance.message : String(d.errorInstance),
      };
    },
  };
}

const TARGETS: Target[] = [
  target(
    'datagram',
    45,
    () => fc.property(mutatedInputArb, datagramProperty),
    ([m]) => describeInput(m),
  ),
  target(
    'stream',
    15,
    () => fc.property(streamCaseArb, streamProperty),
    ([c]) => `${JSON.stringify(c)}\n    stream bytes: ${JSON.stringify(streamBytes(c).toString('latin1'))}`,
  ),
  target(
    'edit',
    15,
    () => fc.property(editCaseArb, editProperty),
    ([c]) => JSON.stringify(c),
  ),
  target(
    'range',
    15,
    () => fc.property(rangeArb, ([m, a, b]) => rangeProperty(m, a, b)),
    ([[m, a, b]]) => `${describeInput(m)} range ${a}..${b}`,
  ),
  target(
    'bounds',
    10,
    () => fc.property(boundsArb, ([v, p, j]) => boundsProperty(v, p, j)),
    ([[v, p, j]]) => `value ${JSON.stringify(v.toString('latin1'))} prefix ${p % 8} junk 0x${j.toString(16)}`,
  ),
  target(
    'native-index',
    10,
    () => fc.property(indexCaseArb, ([bytes, prefix]) => void indexProperty(bytes, prefix)),
    ([c]) => describeIndexCase(c),
  ),
];

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000000' },
    seed: { type: 'string' },
    only: { type: 'string' },
  },
});
const totalRuns = Number.parseInt(values.runs.replace(/[_,]/g, ''), 10);
if (!Number.isSafeInteger(totalRuns) || totalRuns < 1)
  throw new Error(`--runs must be a positive integer: ${values.runs}`);
const seed =
  values.seed === undefined ? (Date.now() ^ (process.pid << 16)) | 0 : Number.parseInt(values.seed, 10);
const only = values.only === undefined ? null : new Set(values.only.split(','));
const targets = TARGETS.filter((t) => only === null || only.has(t.name));
if (targets.length === 0) throw new Error(`--only names none of: ${TARGETS.map((t) => t.name).join(', ')}`);
const weightSum = targets.reduce((n, t) => n + t.weight, 0);

console.log(
  `fuzz-wire: ${totalRuns.toLocaleString('en-US')} executions, seed ${seed}, node ${process.version}`,
);
let failed = 0;
let executed = 0;
const started = performance.now();
for (const t of targets) {
  const numRuns = Math.max(1, Math.round((totalRuns * t.weight) / weightSum));
  const t0 = performance.now();
  const d = t.run(numRuns, seed);
  const seconds = (performance.now() - t0) / 1000;
  executed += d.numRuns;
  const rate = Math.round(d.numRuns / seconds).toLocaleString('en-US');
  if (!d.failed) {
    console.log(
      `  ${t.name.padEnd(9)} ${d.numRuns.toLocaleString('en-US').padStart(10)} runs  ${seconds.toFixed(1).padStart(6)} s  ${rate.padStart(8)}/s  ok`,
    );
    continue;
  }
  failed++;
  console.log(
    `  ${t.name.padEnd(9)} FAILED after ${d.numRuns.toLocaleString('en-US')} runs (${d.numShrinks} shrinks), ${seconds.toFixed(1)} s`,
  );
  console.log(`    replay: --only ${t.name} --seed ${d.seed}  (fast-check path ${d.path})`);
  console.log(`    counterexample: ${d.counterexample ?? '?'}`);
  console.log(`    error: ${d.error}`);
}
const total = (performance.now() - started) / 1000;
console.log(
  `fuzz-wire: ${executed.toLocaleString('en-US')} executions in ${total.toFixed(1)} s, ${failed === 0 ? 'no counterexample' : `${failed} propert${failed === 1 ? 'y' : 'ies'} failed`}`,
);
process.exitCode = failed === 0 ? 0 : 1;
