/**
 * Two boxes alternated at fixed rates, CPU per call from /proc: a change against the code before
 * it, or sipspan against a reference, in one sitting.
 *   npm run bench:ab -- [--a DIR] [--b DIR] [--boxes sipspan-on[,KIND]] [--rates 2000,500]
 *                       [--rounds 4] [--seconds 8] [--warmup-calls 30000] [--json]
 *
 * `--a` and `--b` are sipspan trees (a worktree of another commit: `git worktree add DIR COMMIT`,
 * its node_modules linked to this one's, `sh native/build.sh` in it); both default to this one.
 * `--boxes` names A's box and B's (one name: both the same kind). The rounds are `npm run bench`'s
 * paired rounds (bench/lib/paired-rounds.ts): SIPp on core 0, the box under load alone on core 1
 * once the core is quiet, the other parked on core 0, the order swapped from round to round, every
 * box warmed up first (V8 done compiling: bench/README.md, "CPU ratios, in paired rounds"); each
 * box is started by its own tree's harness. With all telemetry on, spans go to an OTLP receiver in
 * this process and each route's /metrics is scraped every second. Medians are nearest-rank: of an
 * even number of rounds, the lower middle one.
 *
 * Why: on a shared virtual machine the CPU a call costs drifts by ±10% over minutes, more than most
 * single changes. Boxes run side by side, round after round, meet the same drift. Two figures
 * compare them: the ratio of the boxes' medians, and the median of each round's ratio (B's run
 * over A's run next to it), which is what `npm run bench` judges its targets on. When one box's
 * rounds fall in slower minutes than the other's, the medians compare unlike minutes and the
 * per-round figure does not (2026-12-07 13:44: 1.21× from the medians while B read lower than A in
 * four rounds of six).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BoxKind } from './lib/boxes.ts';
import { chooseDriver } from './lib/load-driver.ts';
import { boxMedian, measurePairs, type PairedBox } from './lib/paired-rounds.ts';
import { pinSelf, runMain, waitForQuietCore } from './lib/procs.ts';
import { Scraper, startOtlpReceiver } from './lib/telemetry.ts';

const { values } = parseArgs({
  options: {
    a: { type: 'string', default: '.' },
    b: { type: 'string', default: '.' },
    boxes: { type: 'string', default: 'sipspan-on' },
    rates: { type: 'string', default: '2000,500' },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '8' },
    'warmup-calls': { type: 'string', default: '30000' },
    json: { type: 'boolean', default: false },
  },
});
const USAGE =
  'usage: npm run bench:ab -- [--a DIR] [--b DIR] [--boxes KIND[,KIND]] [--rates 2000,500] [--rounds 4] [--seconds 8] [--warmup-calls 30000] [--json]';
const CORE_LOAD = '0';
const CORE_BOX = '1';
const WARMUP_RATE = 2000;
/** At most this long for core 1 to go quiet before a run. */
const QUIET_WAIT_MS = 10_000;
const log = (s: string) => process.stderr.write(`${s}\n`);

async function main(): Promise<number> {
  const kinds = values.boxes.split(',') as BoxKind[];
  const rates = values.rates.split(',').map(Number);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const warmupCalls = Number(values['warmup-calls']);
  if (
    kinds.length < 1 ||
    kinds.length > 2 ||
    rates.some((r) => !(r > 0)) ||
    !(Number.isInteger(rounds) && rounds > 0 && seconds > 0 && warmupCalls >= 0)
  ) {
    log(USAGE);
    return 2;
  }
  pinSelf(CORE_LOAD);
  const sides = [
    { id: 'A', tree: resolve(values.a), kind: kinds[0] },
    { id: 'B', tree: resolve(values.b), kind: kinds[1] ?? kinds[0] },
  ];
  const boxes: PairedBox[] = [];
  for (const side of sides) {
    // Each tree's own harness starts its box: its bin/sipspan, its native module.
    const { startBox } = (await import(
      join(side.tree, 'bench', 'lib', 'boxes.ts')
    )) as typeof import('./lib/boxes.ts');
    boxes.push({ id: side.id, name: `${side.kind} (${side.tree})`, kind: side.kind, start: startBox });
  }
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-ab-'));
  const otlp = await startOtlpReceiver();
  let paired: Awaited<ReturnType<typeof measurePairs>>;
  try {
    paired = await measurePairs(boxes, [{ a: 'B', b: 'A', limit: null, label: 'B ÷ A' }], {
      driver: chooseDriver(log, false),
      box: { core: CORE_BOX, dir, otlpPort: otlp.port },
      loadCore: CORE_LOAD,
      rates,
      rounds,
      seconds,
      warmup: { rate: WARMUP_RATE, seconds: warmupCalls / WARMUP_RATE },
      settle: (pid) => waitForQuietCore(CORE_BOX, pid, QUIET_WAIT_MS, log),
      scraper: new Scraper(),
      log,
    });
  } finally {
    await otlp.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = rates.map((rate) => {
    const each = (id: string) => paired.runs[id].filter((r) => r.rate === rate).map((r) => r.cpuPerCallUs);
    const medianA = boxMedian(paired.runs.A, rate);
    const medianB = boxMedian(paired.runs.B, rate);
    const ratio = medianA === null || medianB === null ? null : medianB / medianA;
    const perRound = paired.ratios[0].perRate.find((r) => r.rate === rate);
    return {
      rate,
      a: each('A'),
      b: each('B'),
      medianA,
      medianB,
      ratio,
      roundRatios: perRound?.rounds ?? [],
      medianOfRoundRatios: perRound?.median ?? null,
    };
  });
  if (values.json) {
    const who = sides.map((s) => ({ name: s.id, tree: s.tree, box: s.kind }));
    process.stdout.write(`${JSON.stringify({ sides: who, rounds, seconds, warmupCalls, rows }, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `A: ${boxes[0].name}; B: ${boxes[1].name}; ${rounds} rounds of ${seconds} s after ${warmupCalls} calls; µs per call (/proc)`,
    '',
    '| rate | A, each round | B, each round | median A | median B | B ÷ A | B ÷ A, each round | median of the rounds |',
    '|---:|---|---|---:|---:|---:|---|---:|',
    ...rows.map(
      (r) =>
        `| ${r.rate}/s | ${r.a.join(' / ')} | ${r.b.join(' / ')} | ${r.medianA ?? '–'} | ${r.medianB ?? '–'} | ${times(r.ratio)} | ${r.roundRatios.map((x) => x ?? '–').join(' / ')} | ${times(r.medianOfRoundRatios)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

function times(ratio: number | null): string {
  return ratio === null ? '–' : `${ratio.toFixed(2)}×`;
}

runMain('alternate', main);
