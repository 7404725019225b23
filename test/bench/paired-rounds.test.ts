/**
 * The arithmetic of paired rounds and the verdicts built on it: a ratio per
 * round from the two boxes' runs of that round, a run with failed calls left
 * out, the median judged; without paired rounds, the path table's ratio.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  boxMedian,
  type PairedCpu,
  type PairedRun,
  pairRatio,
  runUntilClean,
} from '../../bench/lib/paired-rounds.ts';
import {
  CPU_PAIRS,
  checkTargets,
  type PathResult,
  pairedTable,
  type Report,
} from '../../bench/lib/report.ts';

const OFF_OVER_RELAY = CPU_PAIRS.find((p) => p.a === 'sipspan-off' && p.b === 'relay')!;

function runs(rate: number, perCall: (number | null)[], failed: number[] = []): PairedRun[] {
  return perCall.map((us, k) => ({
    rate,
    round: k,
    calls: 1000,
    failed: failed[k] ?? 0,
    cpuPerCallUs: us,
    systemPerCallUs: null,
  }));
}

function path(id: string, cpu: Record<number, number>): PathResult {
  return {
    id,
    name: id,
    transport: 'udp',
    hops: 1,
    status: 'measured',
    note: null,
    maxRate: null,
    cpu: Object.entries(cpu).map(([rate, us]) => ({
      rate: Number(rate),
      calls: 1000,
      cpuSeconds: us / 1000,
      cpuPerCallUs: us,
      foreignLoadOnBoxCorePct: 0,
      failed: 0,
    })),
    latency: [],
    peakRssMb: null,
    telemetry: null,
  };
}

describe('paired rounds', () => {
  test('each round is the ratio of that round, and the median ignores the round that drifted', () => {
    const r = pairRatio(
      OFF_OVER_RELAY,
      { 'sipspan-off': runs(2000, [120, 300, 130]), relay: runs(2000, [100, 100, 100]) },
      [2000],
      3,
    );
    assert.deepEqual(r.perRate, [{ rate: 2000, rounds: [1.2, 3, 1.3], median: 1.3 }]);
  });

  test('a round where either box failed calls has no ratio and is not judged', () => {
    const r = pairRatio(
      OFF_OVER_RELAY,
      {
        'sipspan-off': runs(4000, [150, 160, 170], [0, 3, 0]),
        relay: runs(4000, [100, 100, 100], [0, 0, 1]),
      },
      [4000],
      3,
    );
    assert.deepEqual(r.perRate[0], { rate: 4000, rounds: [1.5, null, null], median: 1.5 });
  });

  test('a rate with no clean round has no median', () => {
    const r = pairRatio(
      OFF_OVER_RELAY,
      { 'sipspan-off': runs(500, [null]), relay: runs(500, [80]) },
      [500],
      1,
    );
    assert.deepEqual(r.perRate[0], { rate: 500, rounds: [null], median: null });
  });

  test('the CPU targets are judged on the paired medians when there are paired rounds', () => {
    const results = [path('sipspan-off', { 2000: 300 }), path('relay', { 2000: 100 })];
    const paired: PairedCpu = {
      rounds: 3,
      seconds: 5,
      rates: [2000],
      runs: {},
      ratios: [
        pairRatio(
          OFF_OVER_RELAY,
          { 'sipspan-off': runs(2000, [110, 118, 125]), relay: runs(2000, [100, 100, 100]) },
          [2000],
          3,
        ),
      ],
    };
    const check = checkTargets(results, [2000], 500, paired).find((c) => c.target === OFF_OVER_RELAY.label)!;
    assert.equal(check.met, true);
    assert.equal(check.actual, 'median of 3 paired rounds: 2000/s: 1.18× (rounds 1.10, 1.18, 1.25)');
  });

  test('without paired rounds the path table’s own runs judge the ratio', () => {
    const results = [path('sipspan-off', { 2000: 300 }), path('relay', { 2000: 100 })];
    const check = checkTargets(results, [2000], 500).find((c) => c.target === OFF_OVER_RELAY.label)!;
    assert.equal(check.met, false);
    assert.equal(check.actual, '2000/s: 300 / 100 µs = 3.00×');
  });

  test('a pair with no limit is shown, never made a target', () => {
    const labels = checkTargets([], [2000], 500).map((c) => c.target);
    for (const p of CPU_PAIRS.filter((x) => x.limit === null)) assert.ok(!labels.includes(p.label));
  });

  test('a run that failed calls is measured again after the wait, and the clean run counts for its round', async () => {
    const attempts = [runs(4000, [113], [48])[0], runs(4000, [104])[0]];
    const waits: number[] = [];
    const point = await runUntilClean(
      async () => attempts.shift()!,
      1,
      async (failed) => {
        waits.push(failed);
      },
    );
    assert.deepEqual(waits, [48], 'one wait, told how many calls failed');
    assert.equal(point.failed, 0);
    assert.equal(point.cpuPerCallUs, 104);
    assert.equal(point.earlierFailed, 48);
    const r = pairRatio(OFF_OVER_RELAY, { 'sipspan-off': runs(4000, [156]), relay: [point] }, [4000], 1);
    assert.deepEqual(r.perRate[0].rounds, [1.5], 'the round keeps its ratio');
  });

  test('a clean run is measured once; one that keeps failing stops at the retries and stays out', async () => {
    let measured = 0;
    const clean = await runUntilClean(
      async () => {
        measured++;
        return runs(2000, [120])[0];
      },
      1,
      async () => assert.fail('no wait for a clean run'),
    );
    assert.equal(measured, 1);
    assert.equal(clean.earlierFailed, undefined);

    let waits = 0;
    const failing = await runUntilClean(
      async () => runs(2000, [150], [5])[0],
      2,
      async () => {
        waits++;
      },
    );
    assert.equal(waits, 2);
    assert.equal(failing.failed, 5);
    assert.equal(failing.earlierFailed, 10);
    assert.equal(boxMedian([failing], 2000), null, 'a run still failing calls has no figure');
  });

  test('the table says what became of runs with failed calls', () => {
    const point = { ...runs(4000, [104])[0], earlierFailed: 48 };
    const paired: PairedCpu = {
      rounds: 1,
      retries: 1,
      seconds: 5,
      rates: [4000],
      runs: { relay: [point], 'sipspan-off': runs(4000, [156]) },
      ratios: [],
    };
    const report = { results: [], paired } as unknown as Report;
    assert.match(
      pairedTable(report),
      /A run with failed calls ran again once, after those calls had ended \(1 run here\); one that failed every time leaves its round out\./,
    );
    assert.match(
      pairedTable({ ...report, paired: { ...paired, retries: 0 } }),
      /Calls failed in a run leave it out\./,
    );
  });

  test("a box's kernel part is the median of its clean runs, and none for runs recorded without it", () => {
    const withKernel = runs(2000, [120, 300, 130], [0, 0, 1]).map((r, k) => ({
      ...r,
      systemPerCallUs: [30, 90, 40][k],
    }));
    assert.equal(boxMedian(withKernel, 2000), 120);
    assert.equal(boxMedian(withKernel, 2000, 'systemPerCallUs'), 30);
    // A report written before the kernel part was recorded: its runs have no such field.
    const older = runs(2000, [120, 130]).map(({ systemPerCallUs: _, ...r }) => r) as PairedRun[];
    assert.equal(boxMedian(older, 2000, 'systemPerCallUs'), null);
    assert.equal(boxMedian(older, 2000), 120);
  });
});
