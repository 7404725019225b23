/**
 * Two boxes alternated at fixed rates, CPU per call from /proc: a change against the code before
 * it, or sipspan against a reference, in one sitting.
 *   npm run bench:ab -- [--a DIR] [--b DIR] [--boxes sipspan-on[,KIND]] [--rates 2000,500]
 *                       [--rounds 4] [--seconds 8] [--warmup-calls 30000] [--json]
 *
 * `--a` and `--b` are sipspan trees (a worktree of another commit: `git worktree add DIR COMMIT`,
 * its node_modules linked to this one's, `sh native/build.sh` in it); both default to this one.
 * `--boxes` names A's box and B's (one name: both the same kind). SIPp's UAS and UAC on core 0,
 * the box under load on core 1, the other waiting on core 0; both warmed up before the rounds
 * (V8 done compiling: bench/README.md, "CPU ratios, in paired rounds"). Each round runs A and B
 * once at each rate, the order swapped from round to round; the median of an even number of rounds
 * is the lower middle one. With all telemetry on, spans go to an
 * OTLP receiver in this process and each route's /metrics is scraped every second, as in
 * `npm run bench`.
 *
 * Why: on a shared virtual machine the CPU a call costs drifts by ±10% over minutes, more than most
 * single changes. Boxes run side by side, round after round, meet the same drift; the medians of
 * their rounds are what compares.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Box, BoxKind } from './lib/boxes.ts';
import { chooseDriver } from './lib/load-driver.ts';
import { cpuTimes, freePort, pinSelf, pinTree, runMain, sleep, stop } from './lib/procs.ts';
import { quantile } from './lib/stats.ts';
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
/** Between runs: the last run's tail (ending transactions, span exports) settles. */
const PAUSE_MS = 1500;
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Side {
  name: 'A' | 'B';
  tree: string;
  kind: BoxKind;
  box: Box | null;
  /** Rate → µs per call, one per round. */
  runs: Map<number, number[]>;
}

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
  const driver = chooseDriver(log, false);
  const sides: Side[] = [
    { name: 'A', tree: resolve(values.a), kind: kinds[0], box: null, runs: new Map() },
    { name: 'B', tree: resolve(values.b), kind: kinds[1] ?? kinds[0], box: null, runs: new Map() },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-ab-'));
  const otlp = await startOtlpReceiver();
  const scraper = new Scraper();
  const uasPort = await freePort();
  const uas = await driver.startUas(uasPort, 'udp', CORE_LOAD);
  try {
    for (const side of sides) {
      // Each tree's own harness starts its box: its bin/sipspan, its native module.
      const { startBox } = (await import(
        join(side.tree, 'bench', 'lib', 'boxes.ts')
      )) as typeof import('./lib/boxes.ts');
      side.box = await startBox(side.kind, uasPort, 'udp', { core: CORE_LOAD, dir, otlpPort: otlp.port });
    }
    scraper.watch(sides.flatMap((s) => (s.box as Box).metricsPorts));
    for (const side of sides) {
      const box = side.box as Box;
      log(`${side.name} (${side.kind}, ${side.tree}): warm-up, ${warmupCalls} calls at 2000 calls/s`);
      pinTree(box.proc.pid, CORE_BOX);
      await driver.runUac(box.port, 2000, warmupCalls, 'udp', CORE_LOAD);
      pinTree(box.proc.pid, CORE_LOAD);
    }
    for (const rate of rates)
      for (let k = 0; k < rounds; k++)
        for (const side of k % 2 === 0 ? sides : [...sides].reverse()) {
          const box = side.box as Box;
          await sleep(PAUSE_MS);
          pinTree(box.proc.pid, CORE_BOX);
          const before = cpuTimes(box.proc.pid).total;
          const r = await driver.runUac(box.port, rate, Math.round(rate * seconds), 'udp', CORE_LOAD);
          const after = cpuTimes(box.proc.pid).total;
          pinTree(box.proc.pid, CORE_LOAD);
          const us = r.ok > 0 ? Math.round(((after - before) * 1e6) / r.ok) : Number.NaN;
          const list = side.runs.get(rate) ?? [];
          list.push(us);
          side.runs.set(rate, list);
          log(
            `  ${rate}/s round ${k + 1}: ${side.name} ${us} µs/call${r.failed > 0 ? ` (${r.failed} failed)` : ''}`,
          );
        }
  } finally {
    scraper.stop();
    for (const side of sides) if (side.box !== null) await stop(side.box.proc, 'SIGTERM', 3000);
    await stop(uas, 'SIGTERM', 2000);
    await otlp.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = rates.map((rate) => {
    const a = sides[0].runs.get(rate) ?? [];
    const b = sides[1].runs.get(rate) ?? [];
    const ma = quantile(a, 0.5);
    const mb = quantile(b, 0.5);
    return { rate, a, b, medianA: ma, medianB: mb, ratio: mb / ma };
  });
  if (values.json) {
    const who = sides.map((s) => ({ name: s.name, tree: s.tree, box: s.kind }));
    process.stdout.write(`${JSON.stringify({ sides: who, rounds, seconds, warmupCalls, rows }, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `A: ${sides[0].kind} (${sides[0].tree}); B: ${sides[1].kind} (${sides[1].tree}); ${rounds} rounds of ${seconds} s after ${warmupCalls} calls; µs per call (/proc)`,
    '',
    '| rate | A, each round | B, each round | median A | median B | B ÷ A |',
    '|---:|---|---|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.rate}/s | ${r.a.join(' / ')} | ${r.b.join(' / ')} | ${r.medianA} | ${r.medianB} | ${r.ratio.toFixed(2)}× |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

runMain('alternate', main);
