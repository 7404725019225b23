/**
 * Per-hop latency of one sipspan from a loopback capture, as the bench measures it, for A/B runs of
 * two trees without the whole bench:
 *   node bench/capture-latency.ts [--tree DIR] [--sinks none|all] [--rate 500] [--seconds 10]
 *
 * SIPp's uas and uac (core 0) around `bench/sink-cost.ts` of DIR (core 1, default: this tree), a
 * 2 s warm-up at 1000 calls/s, then dumpcap on the two legs while SIPp runs at the rate. Prints the
 * p50/p99 of every message's time through the hop, and the p50 of requests and of responses apart.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startCapture } from './lib/capture.ts';
import { SippDriver } from './lib/load-driver.ts';
import { freePort, isUdpBound, killAll, start, stop, waitFor } from './lib/procs.ts';
import { quantile } from './lib/stats.ts';

const CORE_LOAD = '0';
const CORE_BOX = '1';

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
const sipp = new SippDriver();
const [uasPort, boxPort] = [await freePort(), await freePort()];

const uas = await sipp.startUas(uasPort, 'udp', CORE_LOAD);
const box = start(
  process.execPath,
  [
    'bench/sink-cost.ts',
    '--sinks',
    values.sinks!,
    '--listen',
    String(boxPort),
    '--upstream',
    String(uasPort),
  ].concat(['--log-file', join(tmpdir(), 'sipspan-capture-latency.log')]),
  { core: CORE_BOX, cwd: values.tree, env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } },
);
try {
  if (!(await waitFor(() => box.exited() || isUdpBound(boxPort), 10_000)) || box.exited())
    throw new Error(`sipspan did not start: ${box.output().slice(-500)}`);
  await sipp.runUac(boxPort, 1000, 2000, 'udp', CORE_LOAD);
  const capture = await startCapture(
    [boxPort, uasPort],
    mkdtempSync(join(tmpdir(), 'sipspan-lat-')),
    CORE_LOAD,
  );
  await sipp.runUac(boxPort, rate, rate * seconds, 'udp', CORE_LOAD);
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
  await stop(box);
  await stop(uas, 'SIGKILL');
  killAll();
}
