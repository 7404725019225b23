/**
 * What the time a message spends in a box costs the box's own CPU, on this machine.
 *   npm run bench:wake [-- --holds 0,5,10,20] [-- --rate 2000] [-- --rounds 3] [-- --seconds 5]
 *                      [-- --warmup-seconds 5] [-- --json]
 *
 * The relay of `npm run bench` holds each message H µs (a busy wait: user time
 * only) before it sends it on; sipspan with telemetry off runs beside it. All
 * in paired rounds (lib/paired-rounds.ts): SIPp on core 0, the box under load
 * on core 1. Per box: CPU per call, the part of it in the kernel, and what the
 * hold cost beyond itself: CPU per call − the relay's without a hold − 6·H
 * (six messages of SIPp's call cross the box).
 *
 * Why: a UDP send on loopback wakes the receiving process. A receiver still
 * running wakes cheaply; an idle core is woken with an inter-processor
 * interrupt, and on a virtual machine sending one traps to the hypervisor,
 * inside the sender's sendmsg (`sock_def_readable` in `perf record -g`). The
 * longer a box holds a message, the likelier SIPp has gone idle meanwhile: a
 * box pays for its own latency in kernel time, on top of the work that makes
 * the latency. This is part of why sipspan's CPU ratios against the relay and
 * Kamailio, which hold a message for less time, move with the machine's state.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chooseDriver } from './lib/load-driver.ts';
import { boxMedian, measurePairs, type PairedBox } from './lib/paired-rounds.ts';
import { pinSelf, runMain, waitForQuietCore } from './lib/procs.ts';
import { round } from './lib/stats.ts';
import { Scraper } from './lib/telemetry.ts';

const { values } = parseArgs({
  options: {
    holds: { type: 'string', default: '0,5,10,20' },
    rate: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    'warmup-seconds': { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const log = (s: string) => process.stderr.write(`${s}\n`);
const CORE_LOAD = '0';
const CORE_BOX = '1';
/** SIPp's uac/uas call: INVITE, 180, 200, ACK, BYE, 200 cross the box. */
const MESSAGES_PER_CALL = 6;

export interface WakeCostRow {
  box: string;
  holdUs: number | null;
  cpuPerCallUs: number | null;
  systemPerCallUs: number | null;
  /** CPU per call − the relay's without a hold − MESSAGES_PER_CALL·hold; null for sipspan. */
  beyondHoldUs: number | null;
}

async function main(): Promise<number> {
  const holds = values.holds.split(',').map(Number);
  const rate = Number(values.rate);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const warmupSeconds = Number(values['warmup-seconds']);
  if (
    holds.some((h) => !Number.isFinite(h) || h < 0) ||
    !(rate > 0 && rounds > 0 && seconds > 0 && warmupSeconds > 0)
  ) {
    log(
      'usage: npm run bench:wake [-- --holds 0,5,10,20] [--rate 2000] [--rounds 3] [--seconds 5] [--warmup-seconds 5] [--json]',
    );
    return 2;
  }
  if (!holds.includes(0)) holds.unshift(0);
  pinSelf(CORE_LOAD);
  const driver = chooseDriver(log, false);
  if (driver.name !== 'sipp') {
    // The built-in UAS answers 100 Trying too: another message per call, another wake-up pattern.
    log('SIPp (Debian sip-tester) is needed: the figures are per SIPp call');
    return 2;
  }
  const boxes: PairedBox[] = holds.map((h) => ({
    id: `relay-hold-${h}`,
    name: `relay, hold ${h} µs`,
    kind: 'relay',
    relayHoldUs: h,
  }));
  boxes.push({ id: 'sipspan-off', name: 'sipspan, telemetry off', kind: 'sipspan-off' });
  log(
    `wake cost: ${boxes.map((b) => b.id).join(', ')}; ${rounds} round(s) at ${rate} calls/s, ${seconds} s each`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-wake-'));
  let rows: WakeCostRow[];
  try {
    const cpu = await measurePairs(boxes, [], {
      driver,
      box: { core: CORE_BOX, dir, otlpPort: 0 },
      loadCore: CORE_LOAD,
      rates: [rate],
      rounds,
      seconds,
      warmup: { rate: 2000, seconds: warmupSeconds },
      settle: (pid) => waitForQuietCore(CORE_BOX, pid, 30_000, log),
      scraper: new Scraper(),
      log,
    });
    const base = boxMedian(cpu.runs['relay-hold-0'], rate);
    rows = boxes.map((b) => {
      const total = boxMedian(cpu.runs[b.id], rate);
      const hold = b.relayHoldUs ?? null;
      return {
        box: b.name,
        holdUs: hold,
        cpuPerCallUs: total,
        systemPerCallUs: boxMedian(cpu.runs[b.id], rate, 'systemPerCallUs'),
        beyondHoldUs:
          hold === null || total === null || base === null
            ? null
            : round(total - base - MESSAGES_PER_CALL * hold, 1),
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ rate, rounds, seconds, messagesPerCall: MESSAGES_PER_CALL, rows }, null, 2)}\n`,
    );
    return 0;
  }
  const cell = (v: number | null) => (v === null ? '–' : String(v));
  const lines = [
    `CPU per call at ${rate} calls/s, median of ${rounds} paired round(s), µs`,
    '',
    '| box | CPU per call | of it, kernel | the hold beyond 6·hold |',
    '|---|---:|---:|---:|',
    ...rows.map(
      (r) => `| ${r.box} | ${cell(r.cpuPerCallUs)} | ${cell(r.systemPerCallUs)} | ${cell(r.beyondHoldUs)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

runMain('wake cost', main);
