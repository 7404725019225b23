/**
 * CPU per call of boxes compared in paired rounds: every box of a ratio runs,
 * one after the other, at the same rate within the same half minute, and the
 * rounds repeat in a rotated order. A ratio is judged on the median of its
 * rounds.
 *
 * Why: the path table measures each box in its own block, minutes apart, and
 * on a shared virtual machine the CPU a call costs drifts over minutes. Two
 * full runs 16 minutes apart (2026-12-06 00:00 and 00:16) put sipspan with
 * telemetry off at 1.40–1.61× and at 1.68–1.95× the relay; alternated runs of
 * one box read 152–204 µs per call within half an hour. Pairing puts the drift
 * on both sides of a ratio.
 *
 * All boxes run at once and send to one UAS, but only the box under load is
 * on the box core: the others wait on the load core, where their timers and
 * the tail of their last run (span exports, transactions lingering) cannot
 * touch the measured box's caches. Left together on the box core, every box
 * read 15–25% more per call than in its own block (Kamailio 82 against 70 µs
 * at 2000 calls/s), the relay and Kamailio included. A box goes back to the
 * load core once it has gone quiet after its run, and a run starts only when
 * the box core is quiet but for the box about to run.
 */
import { type Box, type BoxContext, type BoxKind, startBox } from './boxes.ts';
import type { LoadDriver, UacResult } from './load-driver.ts';
import { cpuSeconds, cpuTimes, freePort, pinTree, type Started, sleep, stop } from './procs.ts';
import { quantile, round } from './stats.ts';
import type { Scraper } from './telemetry.ts';

export interface PairSpec {
  /** Path ids, as in the path table: the numerator and the denominator. */
  a: string;
  b: string;
  /** The most a ratio may be for its target; null for a pair shown, not judged. */
  limit: number | null;
  label: string;
}

export interface PairedBox {
  id: string;
  name: string;
  kind: BoxKind;
  /** The relay's hold per message (bench/wake-cost.ts); 0 or absent for none. */
  relayHoldUs?: number;
  /** Starts the box: another tree's startBox (bench/alternate.ts compares trees); this tree's when absent. */
  start?: typeof startBox;
}

export interface PairedRun {
  rate: number;
  round: number;
  calls: number;
  failed: number;
  cpuPerCallUs: number | null;
  /** The part of it spent in the kernel (stime). */
  systemPerCallUs: number | null;
  /** Calls failed in the runs of this round that this one replaced; absent when the first was clean. */
  earlierFailed?: number;
}

export interface PairedRatio extends PairSpec {
  perRate: { rate: number; rounds: (number | null)[]; median: number | null }[];
}

export interface PairedCpu {
  rounds: number;
  /** How many times a run with failed calls was run again (PairedContext.retries). */
  retries?: number;
  seconds: number;
  rates: number[];
  /** Box id → its runs, in the order they ran. */
  runs: Record<string, PairedRun[]>;
  ratios: PairedRatio[];
}

export interface PairedContext {
  driver: LoadDriver;
  box: BoxContext;
  loadCore: string;
  rates: number[];
  rounds: number;
  seconds: number;
  warmup: { rate: number; seconds: number };
  /** Resolves when the box core is quiet but for this process. */
  settle: (pid: number) => Promise<unknown>;
  /**
   * A run with failed calls is run again this many times (in the same round, after `afterFailedMs`)
   * before the round is left out of its ratios. None when absent.
   */
  retries?: number;
  /** The wait before running again: the failed calls' transactions end and their retransmissions stop. */
  afterFailedMs?: number;
  /** Scrapes sipspan's /metrics every second while it runs, as in its path run (telemetry on). */
  scraper: Scraper;
  log: (s: string) => void;
}

/** Run every box in rounds at each rate, then judge each pair on the median of its rounds. */
export async function measurePairs(
  boxes: PairedBox[],
  pairs: PairSpec[],
  ctx: PairedContext,
): Promise<PairedCpu> {
  const uasPort = await freePort();
  let uas: Started | null = null;
  const started: { spec: PairedBox; box: Box }[] = [];
  try {
    uas = await ctx.driver.startUas(uasPort, 'udp', ctx.loadCore);
    for (const spec of boxes)
      started.push({
        spec,
        box: await (spec.start ?? startBox)(spec.kind, uasPort, 'udp', ctx.box, spec.relayHoldUs),
      });
    ctx.scraper.watch(started.flatMap((s) => s.box.metricsPorts));
    const run = (box: Box, rate: number, seconds: number): Promise<UacResult> =>
      ctx.driver.runUac(box.port, rate, Math.max(1, Math.round(rate * seconds)), 'udp', ctx.loadCore);
    for (const { spec, box } of started) {
      const w = await run(box, ctx.warmup.rate, ctx.warmup.seconds);
      ctx.log(`  ${spec.id} warm-up ${ctx.warmup.rate}/s: ok ${w.ok} failed ${w.failed}`);
      await park(box, ctx.loadCore);
    }
    const runs: Record<string, PairedRun[]> = Object.fromEntries(boxes.map((b) => [b.id, []]));
    const retries = ctx.retries ?? 0;
    const afterFailedMs = ctx.afterFailedMs ?? 0;
    for (const rate of ctx.rates) {
      for (let k = 0; k < ctx.rounds; k++) {
        // Rotate who goes first: a box that always followed another would always meet its leftovers.
        const order = started.map((_, i) => started[(i + k) % started.length]);
        const parts: string[] = [];
        for (const { spec, box } of order) {
          const measure = async (): Promise<PairedRun> => {
            pinTree(box.proc.pid, ctx.box.core);
            await ctx.settle(box.proc.pid);
            const c0 = cpuTimes(box.proc.pid);
            const r = await run(box, rate, ctx.seconds);
            const c1 = cpuTimes(box.proc.pid);
            const perCall = (seconds: number) => (r.ok > 0 ? round((seconds * 1e6) / r.ok) : null);
            return {
              rate,
              round: k,
              calls: r.ok,
              failed: r.failed,
              cpuPerCallUs: perCall(c1.total - c0.total),
              systemPerCallUs: perCall(c1.system - c0.system),
            };
          };
          const point = await runUntilClean(measure, retries, async (failed) => {
            ctx.log(
              `  paired ${rate}/s round ${k + 1}: ${spec.id} failed ${failed} calls: again in ${afterFailedMs / 1000} s`,
            );
            await sleep(afterFailedMs);
          });
          runs[spec.id].push(point);
          await park(box, ctx.loadCore);
          const notes: string[] = [];
          if (point.failed > 0) notes.push(`${point.failed} failed`);
          if (point.earlierFailed) notes.push(`after a run with ${point.earlierFailed} failed`);
          parts.push(
            `${spec.id} ${point.cpuPerCallUs ?? '–'}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`,
          );
        }
        ctx.log(`  paired ${rate}/s round ${k + 1}: ${parts.join(', ')} µs/call`);
      }
    }
    return {
      rounds: ctx.rounds,
      retries,
      seconds: ctx.seconds,
      rates: ctx.rates,
      runs,
      ratios: pairs.map((p) => pairRatio(p, runs, ctx.rates, ctx.rounds)),
    };
  } finally {
    ctx.scraper.stop();
    for (const { box } of started) await stop(box.proc, 'SIGTERM', 3000);
    await stop(uas, 'SIGTERM', 2000);
  }
}

/**
 * One box's run of a round: measured again, up to `retries` times, while it fails calls, with
 * `beforeRetry` (a wait) in between. A few failed calls in a box's 20,000 (the relay at 4000
 * calls/s: 48 and 9 in two of three rounds, 2026-12-06 11:44) left a ratio judged on one round.
 * What it returns is the last run, with the failed calls of those it replaced.
 */
export async function runUntilClean(
  measure: () => Promise<PairedRun>,
  retries: number,
  beforeRetry: (failed: number) => Promise<void>,
): Promise<PairedRun> {
  let point = await measure();
  let earlierFailed = 0;
  for (let attempt = 0; point.failed > 0 && attempt < retries; attempt++) {
    earlierFailed += point.failed;
    await beforeRetry(point.failed);
    point = await measure();
  }
  return earlierFailed > 0 ? { ...point, earlierFailed } : point;
}

/** Once the box has gone quiet after its run (15 s at most), off to the load core. */
async function park(box: Box, core: string): Promise<void> {
  for (let waited = 0; waited < 15_000; waited += QUIET_WINDOW_MS) {
    const c0 = cpuSeconds(box.proc.pid);
    await sleep(QUIET_WINDOW_MS);
    if (cpuSeconds(box.proc.pid) - c0 <= QUIET_CPU_S) break;
  }
  pinTree(box.proc.pid, core);
}

/** Quiet: at most one clock tick (10 ms) of CPU in half a second. */
const QUIET_WINDOW_MS = 500;
const QUIET_CPU_S = 0.01;

/** A run whose CPU figure counts: every call completed (runs recorded before systemPerCallUs have none). */
function clean(run: PairedRun | undefined, figure: Figure = 'cpuPerCallUs'): number | null {
  return run === undefined || run.failed > 0 ? null : (run[figure] ?? null);
}

type Figure = 'cpuPerCallUs' | 'systemPerCallUs';

/** Median (nearest rank: of two, the lower) of the figures that are there; null when none is. */
function median(values: (number | null)[]): number | null {
  return round(
    quantile(
      values.filter((v): v is number => v !== null),
      0.5,
    ),
    2,
  );
}

/** A box's CPU per call (or its kernel part) at a rate: the median of its clean runs. */
export function boxMedian(runs: PairedRun[], rate: number, figure: Figure = 'cpuPerCallUs'): number | null {
  return median(runs.filter((r) => r.rate === rate).map((r) => clean(r, figure)));
}

/** A ratio per round (null where either side failed calls or has no figure) and their median. */
export function pairRatio(
  pair: PairSpec,
  runs: Record<string, PairedRun[]>,
  rates: number[],
  rounds: number,
): PairedRatio {
  const perRate = rates.map((rate) => {
    const at = (id: string, k: number) => runs[id]?.find((r) => r.rate === rate && r.round === k);
    const ratios: (number | null)[] = [];
    for (let k = 0; k < rounds; k++) {
      const x = clean(at(pair.a, k));
      const y = clean(at(pair.b, k));
      ratios.push(x === null || y === null || y === 0 ? null : round(x / y, 2));
    }
    return { rate, rounds: ratios, median: median(ratios) };
  });
  return { ...pair, perRate };
}
