/**
 * Per-hop latency of one sipspan from a loopback capture, as the bench measures it, for A/B runs of
 * two trees without the whole bench:
 *   node bench/capture-latency.ts [--tree DIR] [--sinks none|all] [--rate 500] [--seconds 10]
 *
 * SIPp's uas and uac (core 0) around `bench/sink-cost.ts` of DIR (core 1, default: this tree), a
 * 2 s warm-up at 1000 calls/s, then dumpcap on the two legs while SIPp runs at the rate. Prints the
 * p50/p99 of every message's time through the hop, and the p50 of requests and of responses apart.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startCapture } from './lib/capture.ts';
import { freePort, sleep } from './lib/procs.ts';
import { quantile } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    tree: { type: 'string', default: resolve(import.meta.dirname, '..') },
    sinks: { type: 'string', default: 'none' },
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const [uasPort, boxPort, uacPort] = [await freePort(), await freePort(), await freePort()];
const sipp = ['-i', '127.0.0.1', '-t', 'u1', '-nostdin', '-buff_size', String(4 * 1024 * 1024)];
const uac = (r: number, calls: number) =>
  spawnSync(
    'taskset',
    [
      '-c',
      '0',
      'sipp',
      '-sn',
      'uac',
      `127.0.0.1:${boxPort}`,
      '-p',
      String(uacPort),
      '-m',
      String(calls),
    ].concat(['-r', String(r), '-l', String(r * 4), '-recv_timeout', '4000', ...sipp]),
    { stdio: 'ignore' },
  );

const children: ChildProcess[] = [
  spawn('taskset', ['-c', '0', 'sipp', '-sn', 'uas', '-p', String(uasPort), ...sipp], { stdio: 'ignore' }),
  spawn(
    'taskset',
    [
      '-c',
      '1',
      process.execPath,
      'bench/sink-cost.ts',
      '--sinks',
      values.sinks!,
      '--listen',
      String(boxPort),
    ].concat(['--upstream', String(uasPort), '--log-file', join(tmpdir(), 'sipspan-capture-latency.log')]),
    { cwd: values.tree, stdio: 'ignore', env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } },
  ),
];
try {
  await sleep(2500);
  uac(1000, 2000);
  await sleep(1000);
  const capture = await startCapture([boxPort, uasPort], mkdtempSync(join(tmpdir(), 'sipspan-lat-')), '0');
  uac(rate, rate * seconds);
  const { hops } = await capture.finish([boxPort, uasPort]);
  const requests = hops.flatMap((h) => h.requestUs);
  const responses = hops.flatMap((h) => h.responseUs);
  const all = [...requests, ...responses];
  const us = (xs: number[], q: number) => quantile(xs, q).toFixed(0);
  process.stdout.write(
    `${values.tree}: ${all.length} messages, per hop p50 ${us(all, 0.5)} µs, p99 ${us(all, 0.99)} µs; ` +
      `requests p50 ${us(requests, 0.5)} µs, responses p50 ${us(responses, 0.5)} µs\n`,
  );
} finally {
  for (const c of children) c.kill('SIGKILL');
}
