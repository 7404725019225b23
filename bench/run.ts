/**
 * npm run bench [-- --short] [-- --json] [-- --paths id,id] [-- --out DIR] [-- --loadgen]
 *
 * Drives a load generator (SIPp; the built-in one where SIPp is absent) from
 * core 0 through each path, with the box in the middle pinned to core 1:
 *
 *   direct             UAC → UAS, no box: the load generator's own ceiling
 *   relay              a bare node:dgram relay (bench/relay/dgram-relay.ts): the floor for a proxy on node:dgram
 *   sipspan-off        sipspan, telemetry off
 *   sipspan-off-dgram  the same with UDP read through node:dgram (udp_io: dgram), not in batches
 *   sipspan-on         sipspan, all telemetry on (spans 100% sampled to a local OTLP receiver,
 *                      /metrics scraped every second, one log line per transaction to a file)
 *   series             two sipspan routes in series (two hops in one process), telemetry on
 *   direct-tcp         UAC → UAS over TCP
 *   sipspan-tcp-on     sipspan over TCP, all telemetry on
 *   kamailio           Kamailio 5 stateless forward (bench/kamailio/stateless.cfg), when installed
 *   kamailio-stateful  Kamailio with tm's t_relay (bench/kamailio/stateful.cfg), when installed
 *
 * Per path: CPU time per call of the box at fixed rates (/proc utime+stime),
 * added latency per hop at fixed rates from a loopback capture (and sipspan's
 * own sipspan_proxy_seconds over the same run, for comparison), the highest
 * rate with 0 failed calls (step up, then bisect), peak RSS (VmHWM).
 *
 * Then the CPU ratios of the targets in paired rounds (lib/paired-rounds.ts):
 * the boxes of each ratio alternated at each fixed rate, several rounds, so
 * that the machine's drift over minutes falls on both sides of a ratio.
 *
 * Writes bench/results/<date>.json, .md and .svg (--short: a temporary
 * directory unless --out). Progress on stderr; the table (or --json, the
 * report) on stdout. Every process it starts is stopped at the end, on
 * failure and on SIGINT/SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Box, type BoxKind, fileBytes, kamailioInstalled, startBox } from './lib/boxes.ts';
import { canCapture, type HopSamples, startCapture } from './lib/capture.ts';
import { chooseDriver, type LoadDriver, type Transport, type UacResult } from './lib/load-driver.ts';
import { measurePairs, type PairedBox, type PairedCpu } from './lib/paired-rounds.ts';
import {
  coreBusySeconds,
  cpuSeconds,
  freePort,
  hasCommand,
  killAll,
  peakRssMb,
  pinSelf,
  type Started,
  sleep,
  stop,
  waitForQuietCore,
} from './lib/procs.ts';
import {
  CPU_PAIRS,
  type CpuPoint,
  checkTargets,
  type LatencyPoint,
  markdown,
  markdownTable,
  type PathResult,
  pairedTable,
  type RateRun,
  type Report,
  type Spread,
  svg,
  targetsTable,
} from './lib/report.ts';
import { diffBuckets, histogramQuantile, quantile, round } from './lib/stats.ts';
import {
  type OtlpReceiver,
  Scraper,
  scrapeHistogram,
  scrapeRuntime,
  startOtlpReceiver,
} from './lib/telemetry.ts';

const USAGE = `usage: npm run bench [-- options]
  --short        a quick check that every short path runs (CI): < 60 s
  --json         print the report as JSON on stdout (the table otherwise)
  --paths LIST   comma-separated path ids (default: all; --short: direct,sipspan-off,sipspan-on)
  --out DIR      where the results go (default bench/results; --short: a temporary directory)
  --loadgen      use the built-in load generator even where SIPp is installed
`;

const { values } = parseArgs({
  options: {
    short: { type: 'boolean' },
    json: { type: 'boolean' },
    paths: { type: 'string' },
    out: { type: 'string' },
    loadgen: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const SHORT = values.short === true;
const CORE_LOAD = '0';
const CORE_BOX = '1';
const root = join(import.meta.dirname, '..');
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Fixed rates for CPU per call, and for latency against load; seconds per run. */
const CPU_RATES = SHORT ? [200] : [500, 2000, 4000];
const CPU_SECONDS = SHORT ? 2 : 5;
const LATENCY_RATES = SHORT ? [200] : [500, 1000, 2000, 4000];
/**
 * Latency runs at the target's rates last 10 s: a 3 s run at 500 calls/s held
 * zero to a few of the collector's pauses (2026-12-04: scavenges of 3–9 ms every
 * 0.5–1.5 s, a mark-compact of 13–16 ms every ~4 s), and its p99 read 0.7 to 8 ms
 * from one full run to the next; three 10 s runs in a row read 0.84–1.25 ms.
 * The pauses have since shrunk (2026-12-07, --trace-gc, 10 s at 500 calls/s
 * after 30,000 calls: all on scavenged for 0.45–0.63 ms every ~2.5 s, no
 * mark-compact); what moves a 10 s window's p99 now is the machine's hour.
 */
const latencySeconds = (rate: number) => (SHORT ? 1.5 : rate <= 1000 ? 10 : 3);
/** Highest-rate search: steps up from the best fixed rate that passed, then bisection. */
const STEP_RATE = SHORT ? 200 : 1000;
const STEP_CAP = SHORT ? 400 : 20_000;
const STEP_SECONDS = SHORT ? 1.5 : 3;
const BISECT_RESOLUTION = 125;
const QUIET_WAIT_MS = SHORT ? 0 : 60_000;
/**
 * After a fixed-rate run with failed calls, the box still holds their
 * transactions: they end at Timer B (64·T1, 32 s) and linger T4 (5 s), and a
 * proxy that reports them (spans, log lines) does that work then. Measured
 * in the series path: a 500 calls/s latency run started right after an
 * overloaded 4000 calls/s run had a p99 of 21–35 ms (retransmissions
 * included), 3.7 ms after this wait. The next fixed-rate run waits this long;
 * the highest-rate search does not (a bisection step after a failed one may
 * find the box still busy, so that figure errs low).
 */
const AFTER_OVERLOAD_MS = SHORT ? 0 : 64 * 500 + 5000 + 1000;
/**
 * Paired rounds: how many per rate. Five give a median that two drifting rounds cannot move: with
 * three (2026-12-07 14:09), Kamailio's rounds at 500 calls/s read 288, 144 and 152 µs per call, and
 * all on's ratio 1.17, 2.53 and 2.32 — one slow minute more would have decided the target.
 */
const PAIRED_ROUNDS = SHORT ? 1 : 5;
/** A paired run with failed calls runs once more, AFTER_OVERLOAD_MS later, before its round is left out. */
const PAIRED_RETRIES = SHORT ? 0 : 1;
/**
 * A box's warm-up, before its path's runs and before the paired rounds: 30,000 calls, so that what
 * is measured is a long-running proxy, not its first minute. With --trace-opt, all telemetry on
 * still compiled 20 functions in the 10,000 calls at 2000 calls/s after a 6,000-call warm-up (the
 * request and response handlers among them), 2–3 in each of the next three 10,000, none after; in
 * perf, V8's compiler threads took 11 µs per call after 7,000 calls, 1.6 after 20,000. Those
 * threads share the box's one core with the event loop, so they cost CPU and delay messages:
 *   - after a 2,000-call warm-up, sipspan's first paired round at 500 calls/s read 628 and 356 µs
 *     per call (on, off) against 468–400 and 300 in the next two;
 *   - after 2,000 calls (1000 calls/s for 2 s, the paths' warm-up in the runs until 2026-12-07
 *     15:23), all on's first latency run at 500 calls/s had a p99 per hop of 1,008 µs, while the
 *     next, at 1000 calls/s, had 529; by `bench/capture-latency.ts --sinks all --export --scrape`,
 *     alternated, p99 1,619 and 788 µs after 2,000 calls, 477 and 452 after 30,000.
 */
const WARMUP = SHORT ? { rate: 200, seconds: 1 } : { rate: 2000, seconds: 15 };

interface PathSpec {
  id: string;
  name: string;
  transport: Transport;
  box: BoxKind | null;
  /** The direct path whose ceiling this one is compared with. */
  baseline: string;
}

const PATHS: PathSpec[] = [
  { id: 'direct', name: 'direct (UAC → UAS)', transport: 'udp', box: null, baseline: 'direct' },
  { id: 'relay', name: 'node:dgram relay (baseline)', transport: 'udp', box: 'relay', baseline: 'direct' },
  {
    id: 'sipspan-off',
    name: 'sipspan, telemetry off',
    transport: 'udp',
    box: 'sipspan-off',
    baseline: 'direct',
  },
  {
    id: 'sipspan-off-dgram',
    name: 'sipspan, telemetry off, UDP through node:dgram',
    transport: 'udp',
    box: 'sipspan-off-dgram',
    baseline: 'direct',
  },
  {
    id: 'sipspan-on',
    name: 'sipspan, all telemetry on',
    transport: 'udp',
    box: 'sipspan-on',
    baseline: 'direct',
  },
  {
    id: 'series',
    name: 'sipspan, two routes in series, telemetry on',
    transport: 'udp',
    box: 'sipspan-series-on',
    baseline: 'direct',
  },
  { id: 'direct-tcp', name: 'direct over TCP', transport: 'tcp', box: null, baseline: 'direct-tcp' },
  {
    id: 'sipspan-tcp-on',
    name: 'sipspan over TCP, all telemetry on',
    transport: 'tcp',
    box: 'sipspan-on',
    baseline: 'direct-tcp',
  },
  {
    id: 'kamailio',
    name: 'Kamailio, stateless forward',
    transport: 'udp',
    box: 'kamailio-stateless',
    baseline: 'direct',
  },
  {
    id: 'kamailio-stateful',
    name: 'Kamailio, stateful (tm) forward',
    transport: 'udp',
    box: 'kamailio-stateful',
    baseline: 'direct',
  },
];
const SHORT_PATHS = ['direct', 'sipspan-off', 'sipspan-on'];

interface Context {
  driver: LoadDriver;
  dir: string;
  otlp: OtlpReceiver;
  scraper: Scraper;
  capture: boolean;
  results: PathResult[];
}

function passed(r: UacResult, rate: number): boolean {
  return r.failed === 0 && r.ok === r.asked && r.achievedRate >= 0.95 * rate;
}

function rateRun(r: UacResult, rate: number): RateRun {
  return {
    rate,
    asked: r.asked,
    ok: r.ok,
    failed: r.failed,
    achievedRate: Math.round(r.achievedRate),
    retransmissions: r.retransmissions,
    passed: passed(r, rate),
  };
}

function spread(us: number[]): Spread {
  return { p50Us: round(quantile(us, 0.5)), p99Us: round(quantile(us, 0.99)), samples: us.length };
}

/** Each kind of message over every hop. */
function spreadByMessage(hops: HopSamples[]): Record<string, Spread> {
  const merged = new Map<string, number[]>();
  for (const h of hops)
    for (const [kind, us] of h.byMessage) merged.set(kind, [...(merged.get(kind) ?? []), ...us]);
  return Object.fromEntries([...merged].map(([kind, us]) => [kind, spread(us)]));
}

async function measurePath(spec: PathSpec, ctx: Context): Promise<PathResult> {
  const result: PathResult = {
    id: spec.id,
    name: spec.name,
    transport: spec.transport,
    hops: 0,
    status: 'measured',
    note: null,
    maxRate: null,
    cpu: [],
    latency: [],
    peakRssMb: null,
    telemetry: null,
  };
  const uasPort = await freePort();
  let uas: Started | null = null;
  let box: Box | null = null;
  try {
    uas = await ctx.driver.startUas(uasPort, spec.transport, CORE_LOAD);
    if (spec.box !== null) {
      box = await startBox(spec.box, uasPort, spec.transport, {
        core: CORE_BOX,
        dir: ctx.dir,
        otlpPort: ctx.otlp.port,
      });
      result.hops = box.hops;
    }
    const target = box?.port ?? uasPort;
    const run = (rate: number, seconds: number) =>
      ctx.driver.runUac(target, rate, Math.max(1, Math.round(rate * seconds)), spec.transport, CORE_LOAD);
    const otlp0 = { requests: ctx.otlp.requests, bytes: ctx.otlp.bytes };
    const scrapes0 = ctx.scraper.scrapes;
    if (box !== null) ctx.scraper.watch(box.metricsPorts);
    let bestFixed = 0;
    let overloaded = false;
    const settle = async () => {
      if (overloaded && AFTER_OVERLOAD_MS > 0) {
        log(
          `  the last run failed calls: waiting ${AFTER_OVERLOAD_MS / 1000} s for their transactions to end`,
        );
        await sleep(AFTER_OVERLOAD_MS);
      }
      overloaded = false;
      await waitForQuietCore(CORE_BOX, box?.proc.pid ?? null, QUIET_WAIT_MS, log);
    };

    if (box !== null) {
      const w = await run(WARMUP.rate, WARMUP.seconds);
      log(`  warm-up ${WARMUP.rate}/s: ok ${w.ok} failed ${w.failed}`);
      // Latency first, ascending: each run follows a lighter one. Run right after the 4000 calls/s CPU
      // run (its heap still full of ended transactions), sipspan-on's 500 calls/s p99 read 0.7 ms in one
      // run and 8 ms in the next, with GC at 1.5% of that run.
      for (const rate of LATENCY_RATES) {
        await settle();
        const before =
          box.metricsPorts.length > 0
            ? await scrapeHistogram(box.metricsPorts, 'sipspan_proxy_seconds')
            : null;
        const rt0 = box.adminPort === null ? null : await scrapeRuntime(box.adminPort);
        const cap = ctx.capture ? await startCapture(box.legPorts, ctx.dir, CORE_LOAD) : null;
        let r: UacResult;
        const began = performance.now();
        try {
          r = await run(rate, latencySeconds(rate));
        } catch (err) {
          await cap?.abort();
          throw err;
        }
        const c = cap === null ? null : await cap.finish(box.legPorts);
        const after =
          box.metricsPorts.length > 0
            ? await scrapeHistogram(box.metricsPorts, 'sipspan_proxy_seconds')
            : null;
        const rt1 = box.adminPort === null ? null : await scrapeRuntime(box.adminPort);
        const wall = (performance.now() - began) / 1000;
        const point: LatencyPoint = {
          rate,
          ok: r.ok,
          failed: r.failed,
          outside: null,
          inside: null,
          capture: null,
          runtime:
            rt0 === null || rt1 === null
              ? null
              : {
                  gcPct: round(((rt1.gcSeconds - rt0.gcSeconds) / wall) * 100, 1),
                  eventLoopDelayP50Us: rt1.eventLoopDelayP50Us,
                  eventLoopDelayP99Us: rt1.eventLoopDelayP99Us,
                },
        };
        if (c !== null) {
          const req = c.hops.flatMap((h) => h.requestUs);
          const res = c.hops.flatMap((h) => h.responseUs);
          point.outside = {
            ...spread([...req, ...res]),
            requests: spread(req),
            responses: spread(res),
            perHop: c.hops.map((h) => spread([...h.requestUs, ...h.responseUs])),
            byMessage: spreadByMessage(c.hops),
            afterIdle: spread(c.hops.flatMap((h) => h.afterIdleUs)),
            inBurst: spread(c.hops.flatMap((h) => h.inBurstUs)),
          };
          point.capture = {
            packets: c.packets,
            dropped: c.dropped,
            matched: c.matched,
            unmatched: c.unmatched,
          };
        }
        if (before !== null && after !== null) {
          const d = diffBuckets(after, before);
          const n = d.get(Number.POSITIVE_INFINITY) ?? 0;
          const p50 = histogramQuantile(d, 0.5);
          const p99 = histogramQuantile(d, 0.99);
          point.inside = {
            p50Us: p50 === null ? null : round(p50 * 1e6),
            p99Us: p99 === null ? null : round(p99 * 1e6),
            samples: n,
          };
        }
        if (passed(r, rate)) bestFixed = Math.max(bestFixed, rate);
        result.latency.push(point);
        overloaded = r.failed > 0;
        log(
          `  latency ${rate}/s: ok ${r.ok} failed ${r.failed}; per hop p50/p99 ` +
            `${point.outside?.p50Us ?? '–'}/${point.outside?.p99Us ?? '–'} µs outside` +
            (point.inside ? `, ${point.inside.p50Us ?? '–'}/${point.inside.p99Us ?? '–'} µs inside` : '') +
            (c !== null ? ` (${c.packets} packets, ${c.dropped} dropped, ${c.unmatched} unmatched)` : '') +
            (point.runtime
              ? `; GC ${point.runtime.gcPct}% of the run, 100 ms timer interval p99 ${point.runtime.eventLoopDelayP99Us} µs`
              : ''),
        );
      }
      for (const rate of CPU_RATES) {
        await settle();
        const c0 = cpuSeconds(box.proc.pid);
        const b0 = coreBusySeconds(CORE_BOX);
        const t0 = performance.now();
        const r = await run(rate, CPU_SECONDS);
        const wall = (performance.now() - t0) / 1000;
        const cpu = cpuSeconds(box.proc.pid) - c0;
        const busy = coreBusySeconds(CORE_BOX) - b0;
        const point: CpuPoint = {
          rate,
          calls: r.ok,
          cpuSeconds: round(cpu, 3)!,
          cpuPerCallUs: r.ok > 0 ? round((cpu * 1e6) / r.ok) : null,
          foreignLoadOnBoxCorePct: round((Math.max(0, busy - cpu) / wall) * 100, 1),
          failed: r.failed,
        };
        result.cpu.push(point);
        if (passed(r, rate)) bestFixed = Math.max(bestFixed, rate);
        overloaded = r.failed > 0;
        log(
          `  cpu ${rate}/s: ok ${r.ok} failed ${r.failed}, ${point.cpuPerCallUs ?? '–'} µs/call` +
            ` (others on core ${CORE_BOX}: ${point.foreignLoadOnBoxCorePct ?? '–'}%)`,
        );
      }
    }

    // Highest rate with 0 failed calls: step up from the best fixed rate that passed, then bisect.
    const steps: RateRun[] = [];
    let good = 0;
    let bad = 0;
    await waitForQuietCore(CORE_BOX, box?.proc.pid ?? null, QUIET_WAIT_MS, log);
    // Steps of STEP_RATE, widening to ~20% of the rate above 5000/s (the bisection refines).
    const nextStep = (rate: number) =>
      rate + Math.max(STEP_RATE, Math.round((rate * 0.2) / STEP_RATE) * STEP_RATE);
    const first = bestFixed > 0 ? nextStep(bestFixed) : SHORT ? STEP_RATE : 4 * STEP_RATE;
    for (let rate = first; rate <= STEP_CAP; rate = nextStep(rate)) {
      const r = rateRun(await run(rate, STEP_SECONDS), rate);
      steps.push(r);
      log(
        `  step ${rate}/s: ok ${r.ok} failed ${r.failed}, achieved ${r.achievedRate}/s${r.passed ? '' : ' ✗'}`,
      );
      if (r.passed) good = rate;
      else {
        bad = rate;
        break;
      }
      await sleep(500);
    }
    if (good === 0 && bad > 0 && bestFixed > 0) good = bestFixed;
    while (bad > 0 && bad - good > BISECT_RESOLUTION) {
      await sleep(1000);
      const mid = Math.round((good + bad) / 2 / BISECT_RESOLUTION) * BISECT_RESOLUTION;
      if (mid <= good || mid >= bad) break;
      const r = rateRun(await run(mid, STEP_SECONDS), mid);
      steps.push(r);
      log(
        `  bisect ${mid}/s: ok ${r.ok} failed ${r.failed}, achieved ${r.achievedRate}/s${r.passed ? '' : ' ✗'}`,
      );
      if (r.passed) good = mid;
      else bad = mid;
    }
    const baseline = ctx.results.find((x) => x.id === spec.baseline && x.status === 'measured');
    const ceiling = spec.id === spec.baseline ? null : (baseline?.maxRate?.rate ?? null);
    result.maxRate = {
      rate: good,
      limitedBy:
        bad === 0
          ? 'step cap'
          : spec.id === spec.baseline || (ceiling !== null && good >= ceiling)
            ? 'load generator'
            : 'path',
      steps,
    };

    if (box !== null) {
      result.peakRssMb = round(peakRssMb(box.proc.pid), 1);
      if (box.metricsPorts.length > 0 || box.logFile !== null) {
        await sleep(1500); // one more batch export and scrape
        result.telemetry = {
          otlpRequests: ctx.otlp.requests - otlp0.requests,
          otlpBytes: ctx.otlp.bytes - otlp0.bytes,
          logBytes: fileBytes(box.logFile),
          scrapes: ctx.scraper.scrapes - scrapes0,
        };
      }
      if (box.proc.exited())
        throw new Error(`the box exited during the run: ${box.proc.output().slice(-500)}`);
    }
    return result;
  } finally {
    ctx.scraper.stop();
    if (box !== null) await stop(box.proc, 'SIGTERM', 3000);
    await stop(uas, 'SIGTERM', 2000);
  }
}

/**
 * The CPU ratios again in paired rounds, for each pair whose two paths were measured (a short run:
 * one round at its one rate). Null when no pair was; a failure is logged and leaves the path table's
 * ratios to judge.
 */
async function measurePairedRounds(ctx: Context): Promise<PairedCpu | null> {
  const measured = (id: string) => ctx.results.some((r) => r.id === id && r.status === 'measured');
  const pairs = CPU_PAIRS.filter((p) => measured(p.a) && measured(p.b));
  if (pairs.length === 0) return null;
  const ids = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const boxes: PairedBox[] = ids.map((id) => {
    const spec = PATHS.find((p) => p.id === id)!;
    return { id, name: spec.name, kind: spec.box! };
  });
  log(`paired rounds: ${ids.join(', ')}, ${PAIRED_ROUNDS} round(s) at ${CPU_RATES.join(', ')} calls/s`);
  try {
    return await measurePairs(boxes, pairs, {
      driver: ctx.driver,
      box: { core: CORE_BOX, dir: ctx.dir, otlpPort: ctx.otlp.port },
      loadCore: CORE_LOAD,
      rates: CPU_RATES,
      rounds: PAIRED_ROUNDS,
      seconds: CPU_SECONDS,
      warmup: WARMUP,
      settle: (pid) => waitForQuietCore(CORE_BOX, pid, QUIET_WAIT_MS, log),
      retries: PAIRED_RETRIES,
      afterFailedMs: AFTER_OVERLOAD_MS,
      scraper: ctx.scraper,
      log,
    });
  } catch (err) {
    log(`  paired rounds failed: ${(err as Error).message}`);
    return null;
  }
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const began = Date.now();
  const pinnedSelf = pinSelf(CORE_LOAD);
  const driver = chooseDriver(log, values.loadgen === true);
  const wanted =
    values.paths?.split(',').map((s) => s.trim()) ?? (SHORT ? SHORT_PATHS : PATHS.map((p) => p.id));
  const unknown = wanted.filter((w) => !PATHS.some((p) => p.id === w));
  if (unknown.length > 0) {
    log(`unknown path(s): ${unknown.join(', ')}; known: ${PATHS.map((p) => p.id).join(', ')}`);
    return 2;
  }
  const capture = canCapture();
  if (!capture)
    log('dumpcap (Debian tshark) is not installed: no outside latency figures (apt-get install tshark)');
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-bench-'));
  const otlp = await startOtlpReceiver();
  const ctx: Context = { driver, dir, otlp, scraper: new Scraper(), capture, results: [] };
  let paired: PairedCpu | null = null;
  const loadavgStart = loadavg();
  log(
    `sipspan bench${SHORT ? ' (short)' : ''}: ${driver.version} pinned to core ${CORE_LOAD}` +
      `${pinnedSelf ? ' (with this harness)' : ''}, the box in the middle to core ${CORE_BOX}; load average ${loadavgStart}`,
  );
  try {
    for (const spec of PATHS.filter((p) => wanted.includes(p.id))) {
      log(`path ${spec.id}: ${spec.name}`);
      if (spec.box === 'kamailio-stateless' || spec.box === 'kamailio-stateful') {
        if (!kamailioInstalled()) {
          log('  kamailio is not installed: skipped (apt-get install kamailio)');
          ctx.results.push(skipped(spec, 'kamailio not installed'));
          continue;
        }
      }
      try {
        ctx.results.push(await measurePath(spec, ctx));
      } catch (err) {
        log(`  failed: ${(err as Error).message}`);
        ctx.results.push({ ...skipped(spec, (err as Error).message.slice(0, 300)), status: 'failed' });
      }
    }
    paired = await measurePairedRounds(ctx);
  } finally {
    await otlp.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const report: Report = {
    date: new Date(began).toISOString().slice(0, 10),
    startedAt: new Date(began).toISOString(),
    durationSeconds: Math.round((Date.now() - began) / 1000),
    short: SHORT,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      kernel: release(),
      node: process.version,
      load: driver.version,
      pinning: `load generator (UAC and UAS) on core ${CORE_LOAD}, the box in the middle on core ${CORE_BOX} (taskset)`,
      loadavgStart,
      loadavgEnd: loadavg(),
    },
    rates: { cpu: CPU_RATES, latency: LATENCY_RATES, stepSeconds: STEP_SECONDS },
    results: ctx.results,
    paired,
    targets: [],
  };
  // A short run's rates are far below the targets' conditions: shown, not judged.
  report.targets = checkTargets(ctx.results, CPU_RATES, LATENCY_RATES[0], paired).map((t) =>
    SHORT ? { ...t, met: null } : t,
  );
  if (
    hasCommand('kamailio') &&
    ctx.results.some((r) => r.id.startsWith('kamailio') && r.status === 'measured')
  ) {
    report.machine.load += `; ${kamailioVersion()}`;
  }

  const out =
    values.out ??
    (SHORT ? mkdtempSync(join(tmpdir(), 'sipspan-bench-short-')) : join(root, 'bench', 'results'));
  mkdirSync(out, { recursive: true });
  const base = join(out, report.date);
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown(report));
  writeFileSync(`${base}.svg`, svg(report));
  // The results live in the repository, whose `npm run lint` checks bench/ with biome: format them as it would.
  const biome = join(root, 'node_modules', '.bin', 'biome');
  if (existsSync(biome))
    spawnSync(biome, ['format', '--write', `${base}.json`, `${base}.md`], { stdio: 'ignore' });
  log(`results: ${base}.json, .md, .svg (${report.durationSeconds} s)`);
  process.stdout.write(
    values.json
      ? `${JSON.stringify(report, null, 2)}\n`
      : `${markdownTable(report)}\n\n${paired === null ? '' : `${pairedTable(report)}\n\n`}${targetsTable(report.targets, SHORT)}\n`,
  );
  return ctx.results.some((r) => r.status === 'failed') ? 1 : 0;
}

function skipped(spec: PathSpec, note: string): PathResult {
  return {
    id: spec.id,
    name: spec.name,
    transport: spec.transport,
    hops: 0,
    status: 'skipped',
    note,
    maxRate: null,
    cpu: [],
    latency: [],
    peakRssMb: null,
    telemetry: null,
  };
}

function kamailioVersion(): string {
  try {
    const text = spawnSync('kamailio', ['-v'], { encoding: 'latin1' }).stdout;
    return /version: (kamailio [^\s]+)/.exec(text)?.[1] ?? 'kamailio';
  } catch {
    return 'kamailio';
  }
}

// Every process the run started dies with it: normal end, error or signal.
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping every process of the run`);
    killAll();
    process.exit(130);
  });
}
try {
  process.exitCode = await main();
} catch (err) {
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
  killAll();
  process.exitCode = 1;
}
