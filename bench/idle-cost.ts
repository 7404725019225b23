/**
 * What each box costs with no traffic: CPU time and wake-ups per second.
 *   npm run bench:idle [-- --boxes relay,sipspan-off,sipspan-on] [-- --seconds 20] [-- --json]
 *
 * Each box is started alone on core 1 as `npm run bench` starts it (telemetry on: spans to an
 * OTLP receiver in this process, nothing scraped), left to settle, then watched for the given
 * seconds: utime + stime of its process tree, and the voluntary context switches of every thread
 * of that tree (/proc/PID/task/TID/status): each is a sleep the thread woke from.
 *
 * Why: at a low call rate every message is a wake-up of its own, and a timer that fires between
 * messages is one more. What a box spends idle per second is spread over the calls of that
 * second: 5 ms/s is 10 µs per call at 500 calls/s, and nothing at 4000.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BoxKind, kamailioInstalled, startBox } from './lib/boxes.ts';
import { cpuTimes, freePort, pinSelf, processTree, runMain, sleep, stop } from './lib/procs.ts';
import { startOtlpReceiver } from './lib/telemetry.ts';

const { values } = parseArgs({
  options: {
    boxes: { type: 'string' },
    seconds: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
  },
});
const USAGE = 'usage: npm run bench:idle [-- --boxes KIND[,KIND...]] [--seconds 20] [--json]';
const KINDS: readonly BoxKind[] = ['relay', 'sipspan-off', 'sipspan-on', 'kamailio-stateless'];
/** After start-up: the sinks' first timers and start-up compilation are done. */
const SETTLE_MS = 3000;
const log = (s: string) => process.stderr.write(`${s}\n`);

export interface IdleCostRow {
  box: BoxKind;
  /** CPU time of the box's process tree, ms per second of wall time. */
  cpuMsPerS: number;
  /** Voluntary context switches of all the tree's threads per second: their wake-ups. */
  wakeupsPerS: number;
}

function wakeups(pid: number): number {
  let n = 0;
  for (const p of processTree(pid)) {
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const status = readFileSync(`/proc/${p}/task/${task}/status`, 'latin1');
        n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      }
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

async function main(): Promise<number> {
  const defaults = KINDS.filter((k) => k !== 'kamailio-stateless' || kamailioInstalled());
  const kinds = values.boxes === undefined ? defaults : (values.boxes.split(',') as BoxKind[]);
  const seconds = Number(values.seconds);
  if (kinds.some((k) => !KINDS.includes(k)) || !(seconds > 0)) {
    log(USAGE);
    return 2;
  }
  pinSelf('0');
  const dir = mkdtempSync(join(tmpdir(), 'sipspan-idle-'));
  const otlp = await startOtlpReceiver();
  const rows: IdleCostRow[] = [];
  try {
    for (const kind of kinds) {
      // Nothing listens there: no message is ever sent.
      const box = await startBox(kind, await freePort(), 'udp', { core: '1', dir, otlpPort: otlp.port });
      try {
        await sleep(SETTLE_MS);
        const cpu0 = cpuTimes(box.proc.pid).total;
        const wake0 = wakeups(box.proc.pid);
        const t0 = performance.now();
        await sleep(seconds * 1000);
        const wall = (performance.now() - t0) / 1000;
        const row: IdleCostRow = {
          box: kind,
          cpuMsPerS: ((cpuTimes(box.proc.pid).total - cpu0) * 1000) / wall,
          wakeupsPerS: (wakeups(box.proc.pid) - wake0) / wall,
        };
        log(`${kind}: ${row.cpuMsPerS.toFixed(2)} ms/s CPU, ${row.wakeupsPerS.toFixed(1)} wake-ups/s`);
        rows.push(row);
      } finally {
        await stop(box.proc);
      }
    }
  } finally {
    await otlp.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ seconds, rows }, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `Each box idle on core 1 for ${seconds} s (/proc)`,
    '',
    '| box | CPU, ms/s | wake-ups of its threads, /s | the CPU spread over 500 calls/s, µs per call |',
    '|---|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.box} | ${r.cpuMsPerS.toFixed(1)} | ${r.wakeupsPerS.toFixed(1)} | ${((r.cpuMsPerS * 1000) / 500).toFixed(1)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

runMain('idle-cost', main);
