/**
 * Where each box's CPU goes, per call, by kind of work: `perf record -g` of the box under SIPp load.
 *   npm run bench:perf [-- --boxes relay,sipspan-off,sipspan-on,kamailio-stateless] [--rate 2000]
 *                      [--seconds 5] [--warmup-calls 20000] [--top 12] [--script-dir DIR] [--json]
 *
 * Each box in turn: SIPp's UAS on core 0, the box on core 1 with Node's --perf-basic-prof (so
 * that perf can name JavaScript functions), a warm-up at `rate` (20,000 calls: V8 has compiled what
 * it will; after 3,000 its compiler threads still took 11 µs per call of sipspan all on), then
 * `perf record -F 2000 -g` of the box's processes (Kamailio's workers are children of its main
 * process) for `seconds` in the middle of a run at `rate`. `--script-dir` keeps each box's
 * `perf script` output there (DIR/<box>.perf.txt), for a closer look than the table's.
 * Each sample is 0.5 ms of one thread's CPU; divided by the calls of the window, µs per call:
 *   - JavaScript (the box's own, and Node's JavaScript it calls), the Node.js and V8 runtime under
 *     it (builtins, N-API, libuv), V8's garbage collection on the event loop's thread, libc, the
 *     native module (sipspan's batched UDP); a box that is not Node.js (Kamailio) has its own code
 *     as one kind;
 *   - the kernel's send path (on loopback it includes delivering the datagram and waking SIPp),
 *     a stream's sends apart (all on: the OTLP exports), its receive path, epoll, other kernel work;
 *   - threads other than the event loop's (V8's compiler and GC helpers).
 * Then each box's event loop in user space by the innermost function of its own JavaScript (Node's
 * JavaScript and the runtime under it count for the function that called them) and, for sipspan, by
 * the layer (src/<layer>/) that function belongs to. The CPU per call that /proc gives for the same
 * window is shown beside: the samples account for less of it (a fifth less here), so compare boxes
 * by the kinds of one run rather than with the figures of `npm run bench`.
 *
 * Needs perf (Debian linux-perf) and the right to record another process
 * (kernel.perf_event_paranoid ≤ 1, or root).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type BoxKind, kamailioInstalled, startBox } from './lib/boxes.ts';
import { chooseDriver } from './lib/load-driver.ts';
import { type Breakdown, breakdown, parseSamples, SAMPLE_KINDS } from './lib/perf-samples.ts';
import { cpuTimes, freePort, hasCommand, pinSelf, processTree, runMain, sleep, stop } from './lib/procs.ts';
import { round } from './lib/stats.ts';
import { Scraper, startOtlpReceiver } from './lib/telemetry.ts';

const { values } = parseArgs({
  options: {
    boxes: { type: 'string', default: 'relay,sipspan-off,sipspan-on' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '5' },
    'warmup-calls': { type: 'string', default: '20000' },
    top: { type: 'string', default: '12' },
    'script-dir': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const log = (s: string) => process.stderr.write(`${s}\n`);
const CORE_LOAD = '0';
const CORE_BOX = '1';
const FREQUENCY_HZ = 2000;
const BOX_KINDS: readonly BoxKind[] = ['relay', 'sipspan-off', 'sipspan-on', 'kamailio-stateless'];
const USAGE =
  'usage: npm run bench:perf [-- --boxes relay,sipspan-off,sipspan-on,kamailio-stateless] [--rate 2000] [--seconds 5] [--warmup-calls 20000] [--top 12] [--script-dir DIR] [--json]';

export interface BoxBreakdown {
  box: BoxKind;
  calls: number;
  /** /proc's utime + stime of the box over the same window, per call. */
  procUsPerCall: number;
  /** All samples, per call. */
  perfUsPerCall: number;
  kinds: Record<string, number>;
  layers: Record<string, number>;
  functions: [string, number][];
  /** The samples with no JavaScript on the stack, by innermost symbol (the `top` largest). */
  outsideJavaScript: [string, number][];
}

/** The `top` largest counts, as µs per call. */
function largest(counts: Record<string, number>, top: number, calls: number): [string, number][] {
  return Object.entries(counts)
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([k, v]) => [k, perCall(v, calls)]);
}

/** Samples of a window, as µs per call. */
function perCall(samples: number, calls: number): number {
  return round((samples * 1e6) / FREQUENCY_HZ / calls, 1) ?? 0;
}

async function measure(
  kind: BoxKind,
  rate: number,
  seconds: number,
  warmupCalls: number,
  top: number,
  ctx: { dir: string; otlpPort: number; scriptDir: string | null },
  driver: ReturnType<typeof chooseDriver>,
): Promise<BoxBreakdown> {
  const uasPort = await freePort();
  const uas = await driver.startUas(uasPort, 'udp', CORE_LOAD);
  const box = await startBox(kind, uasPort, 'udp', { core: CORE_BOX, dir: ctx.dir, otlpPort: ctx.otlpPort });
  const pid = box.proc.pid;
  const data = join(ctx.dir, `${kind}.perf.data`);
  // All telemetry on as `npm run bench` has it: the route's /metrics scraped every second.
  const scraper = new Scraper();
  scraper.watch(box.metricsPorts);
  try {
    log(`${kind}: warm-up, ${warmupCalls} calls at ${rate} calls/s`);
    await driver.runUac(box.port, rate, warmupCalls, 'udp', CORE_LOAD);
    log(`${kind}: ${rate} calls/s, perf record over ${seconds} s of it`);
    // The window starts 2 s into the run (the rate settled) and ends 2 s before it does.
    const load = driver.runUac(box.port, rate, rate * (seconds + 4), 'udp', CORE_LOAD);
    await sleep(2000);
    const before = cpuTimes(pid).total;
    const recorded = await new Promise<number | null>((resolve) => {
      const p = spawn(
        'perf',
        [
          'record',
          '-F',
          String(FREQUENCY_HZ),
          '-g',
          '-p',
          processTree(pid).join(','),
          '-o',
          data,
          '--',
          'sleep',
          String(seconds),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let err = '';
      p.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      p.on('exit', (code) => {
        if (code !== 0) log(`perf record: ${err.trim().slice(-300)}`);
        resolve(code);
      });
    });
    const after = cpuTimes(pid).total;
    const result = await load;
    if (recorded !== 0) throw new Error(`perf record failed for ${kind}`);
    if (result.failed > 0) log(`${kind}: ${result.failed} failed calls in the run`);
    // While the box runs: perf names its JavaScript from /tmp/perf-<pid>.map.
    const script = spawnSync('perf', ['script', '-i', data, '-F', 'comm,pid,tid,time,event,ip,sym,dso'], {
      encoding: 'latin1',
      maxBuffer: 1 << 30,
    });
    if (script.status !== 0) throw new Error(`perf script: ${script.stderr.slice(-300)}`);
    if (ctx.scriptDir !== null)
      writeFileSync(join(ctx.scriptDir, `${kind}.perf.txt`), script.stdout, 'latin1');
    const calls = rate * seconds;
    const b: Breakdown = breakdown(parseSamples(script.stdout));
    const toPerCall = (counts: Record<string, number>) =>
      Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, perCall(v, calls)]));
    return {
      box: kind,
      calls,
      procUsPerCall: round(((after - before) * 1e6) / calls, 1) ?? 0,
      perfUsPerCall: perCall(b.samples, calls),
      kinds: toPerCall(b.kinds),
      layers: toPerCall(b.layers),
      functions: largest(b.functions, top, calls),
      outsideJavaScript: largest(b.outsideJavaScript, top, calls),
    };
  } finally {
    scraper.stop();
    await stop(box.proc);
    await stop(uas);
    rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
}

function table(rows: BoxBreakdown[], rate: number, seconds: number): string {
  const cell = (v: number | undefined) => (v === undefined || v === 0 ? '–' : v.toFixed(1));
  const lines = [
    `CPU per call at ${rate} calls/s, µs (perf record -F ${FREQUENCY_HZ} -g over ${seconds} s; the box on core ${CORE_BOX})`,
    '',
    `| kind | ${rows.map((r) => r.box).join(' | ')} |`,
    `|---|${rows.map(() => '---:').join('|')}|`,
    ...SAMPLE_KINDS.map((k) => `| ${k} | ${rows.map((r) => cell(r.kinds[k])).join(' | ')} |`),
    `| **all samples** | ${rows.map((r) => cell(r.perfUsPerCall)).join(' | ')} |`,
    `| /proc, the same window | ${rows.map((r) => cell(r.procUsPerCall)).join(' | ')} |`,
  ];
  for (const r of rows) {
    lines.push(
      '',
      `${r.box}, the event loop in user space by the innermost frame of the box's own JavaScript, µs per call: ${Object.entries(
        r.layers,
      )
        .sort((x, y) => y[1] - x[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
      `  functions: ${r.functions.map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `  with no JavaScript on the stack, by innermost symbol: ${r.outsideJavaScript.map(([k, v]) => `${k} ${v}`).join(', ')}`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const boxes = values.boxes.split(',') as BoxKind[];
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const warmupCalls = Number(values['warmup-calls']);
  const top = Number(values.top);
  if (
    boxes.some((b) => !BOX_KINDS.includes(b)) ||
    !(rate > 0 && seconds > 0 && warmupCalls >= 0 && Number.isInteger(top) && top >= 0)
  ) {
    log(USAGE);
    return 2;
  }
  if (boxes.includes('kamailio-stateless') && !kamailioInstalled()) {
    log('kamailio-stateless needs Kamailio (Debian kamailio)');
    return 2;
  }
  if (!hasCommand('perf')) {
    log('perf (Debian linux-perf) is needed');
    return 2;
  }
  pinSelf(CORE_LOAD);
  const driver = chooseDriver(log, false);
  if (driver.name !== 'sipp') {
    log('SIPp (Debian sip-tester) is needed: the figures are per SIPp call');
    return 2;
  }
  const scriptDir = values['script-dir'] === undefined ? null : resolve(values['script-dir']);
  if (scriptDir !== null) mkdirSync(scriptDir, { recursive: true });
  // Inherited by every box: Node writes /tmp/perf-<pid>.map, for perf to name JavaScript frames.
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --perf-basic-prof`.trim();
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-perf-'));
  // With --perf-basic-prof, V8 also writes an isolate-*.log into its working directory: the boxes
  // inherit this one, which goes with the run.
  const cwd = process.cwd();
  process.chdir(dir);
  const otlp = boxes.includes('sipspan-on') ? await startOtlpReceiver() : null;
  const rows: BoxBreakdown[] = [];
  try {
    for (const kind of boxes)
      rows.push(
        await measure(
          kind,
          rate,
          seconds,
          warmupCalls,
          top,
          { dir, otlpPort: otlp?.port ?? 0, scriptDir },
          driver,
        ),
      );
  } finally {
    await otlp?.close();
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
  if (values.json)
    process.stdout.write(`${JSON.stringify({ rate, seconds, frequencyHz: FREQUENCY_HZ, rows }, null, 2)}\n`);
  else process.stdout.write(`${table(rows, rate, seconds)}\n`);
  return 0;
}

runMain('perf breakdown', main);
