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
 * All boxes run at once, pinned to the box core and sending to one UAS. Only
 * the box under load works (the others idle), and a run starts only when the
 * core is quiet but for that box.
 */
import { type Box, type BoxContext, type BoxKind, startBox } from './boxes.ts';
import type { LoadDriver, UacResult } from './load-driver.ts';
import { cpuSeconds, freePort, type Started, stop } from './procs.ts';
import { quantile, round } from './stats.ts';

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
}

export interface PairedRun {
  rate: number;
  round: number;
  calls: number;
  failed: number;
  cpuPerCallUs: number | null;
}

export interface PairedRatio extends PairSpec {
  perRate: { rate: number; rounds: (number | null)[]; median: number | null }[];
}

export interface PairedCpu {
  rounds: number;
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
  /** sipspan with telemetry on has its /metrics scraped, as in its path run. */
  watchMetrics: (ports: number[]) => void;
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
    for (const spec of boxes) started.push({ spec, box: await startBox(spec.kind, uasPort, 'udp', ctx.box) });
    ctx.watchMetrics(started.flatMap((s) => s.box.metricsPorts));
    const run = (box: Box, rate: number, seconds: number): Promise<UacResult> =>
      ctx.driver.runUac(box.port, rate, Math.max(1, Math.round(rate * seconds)), 'udp', ctx.loadCore);
    for (const { spec, box } of started) {
      const w = await run(box, ctx.warmup.rate, ctx.warmup.seconds);
      ctx.log(`  ${spec.id} warm-up ${ctx.warmup.rate}/s: ok ${w.ok} failed ${w.failed}`);
    }
    const runs: Record<string, PairedRun[]> = Object.fromEntries(boxes.map((b) => [b.id, []]));
    for (const rate of ctx.rates) {
      for (let k = 0; k < ctx.rounds; k++) {
        // Rotate who goes first: a box that always followed another would always meet its leftovers.
        const order = started.map((_, i) => started[(i + k) % started.length]);
        const parts: string[] = [];
        for (const { spec, box } of order) {
          await ctx.settle(box.proc.pid);
          const c0 = cpuSeconds(box.proc.pid);
          const r = await run(box, rate, ctx.seconds);
          const cpu = cpuSeconds(box.proc.pid) - c0;
          const point: PairedRun = {
            rate,
            round: k,
            calls: r.ok,
            failed: r.failed,
            cpuPerCallUs: r.ok > 0 ? round((cpu * 1e6) / r.ok) : null,
          };
          runs[spec.id].push(point);
          parts.push(`${spec.id} ${point.cpuPerCallUs ?? '–'}${r.failed > 0 ? ` (${r.failed} failed)` : ''}`);
        }
        ctx.log(`  paired ${rate}/s round ${k + 1}: ${parts.join(', ')} µs/call`);
      }
    }
    return {
      rounds: ctx.rounds,
      seconds: ctx.seconds,
      rates: ctx.rates,
      runs,
      ratios: pairs.map((p) => pairRatio(p, runs, ctx.rates, ctx.rounds)),
    };
  } finally {
    ctx.watchMetrics([]);
    for (const { box } of started) await stop(box.proc, 'SIGTERM', 3000);
    await stop(uas, 'SIGTERM', 2000);
  }
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
      const x = at(pair.a, k);
      const y = at(pair.b, k);
      const cleanRuns = x !== undefined && y !== undefined && x.failed === 0 && y.failed === 0;
      const xs = cleanRuns ? x.cpuPerCallUs : null;
      const ys = cleanRuns ? y.cpuPerCallUs : null;
      ratios.push(xs === null || ys === null || ys === 0 ? null : round(xs / ys, 2));
    }
    const judged = ratios.filter((q): q is number => q !== null);
    return { rate, rounds: ratios, median: round(quantile(judged, 0.5), 2) };
  });
  return { ...pair, perRate };
}
