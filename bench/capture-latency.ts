/**
 * Per-hop latency of one box from a loopback capture, as the bench measures it, for A/B runs of two
 * trees without the whole bench:
 *   node bench/capture-latency.ts [--tree DIR] [--box sipspan|relay] [--sinks none|metrics|all]
 *                                 [--receive-clock kernel|event_loop]
 *                                 [--rate 500] [--seconds 10] [--warmup-calls 30000] [--export] [--scrape]
 *
 * SIPp's uas and uac (core 0) around the box of DIR (core 1, default: this tree): `bench/sink-cost.ts`
 * with the chosen sinks, or the node:dgram relay. A warm-up at 2000 calls/s (30,000 calls, as the bench
 * gives each box: V8 done compiling, bench/run.ts WARMUP), then dumpcap on the
 * two legs while SIPp runs at the rate. Prints the p50/p99/p99.9/max of every message's time through
 * the hop (a collector pause shows past p99: at 500 calls/s, 3,000 messages a second, a 5 ms pause holds ~15),
 * the p50 of requests and of responses apart, of the messages that found the box idle for a millisecond
 * (its wake-up and cold caches) and of those inside a burst, and each kind of message (INVITE, 180 INVITE, ...).
 * With the metrics sink on, also sipspan's own sipspan_proxy_seconds over the same run, as the bench
 * compares them. `--export` sends the spans (100% sampled) over OTLP/HTTP to a receiver in this
 * process, and `--scrape` reads /metrics every second, as the bench's all-on path does; without them
 * spans are built and dropped, and /metrics is read only before and after.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { IDLE_US, startCapture } from './lib/capture.ts';
import { SippDriver } from './lib/load-driver.ts';
import { freePort, isUdpBound, killAll, pinSelf, start, stop, waitFor } from './lib/procs.ts';
import { type Buckets, diffBuckets, histogramQuantile, quantile } from './lib/stats.ts';
import { Scraper, scrapeHistogram, startOtlpReceiver } from './lib/telemetry.ts';

const CORE_LOAD = '0';
const CORE_BOX = '1';
const PROXY_HISTOGRAM = 'sipspan_proxy_seconds';
/** sipspan_proxy_seconds of every message, then of requests and of responses (its `kind` label). */
const INSIDE_SERIES = [undefined, 'kind="request"', 'kind="response"'] as const;

const { values } = parseArgs({
  options: {
    tree: { type: 'string', default: resolve(import.meta.dirname, '..') },
    box: { type: 'string', default: 'sipspan' },
    sinks: { type: 'string', default: 'none' },
    'receive-clock': { type: 'string', default: 'kernel' },
    rate: { type: 'string', default: '500' },
    'warmup-calls': { type: 'string', default: '30000' },
    seconds: { type: 'string', default: '10' },
    export: { type: 'boolean', default: false },
    scrape: { type: 'boolean', default: false },
  },
});
if (values.box !== 'sipspan' && values.box !== 'relay') throw new Error('--box: sipspan or relay');
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const isRelay = values.box === 'relay';
const withMetrics = !isRelay && (values.sinks === 'all' || values.sinks!.split(',').includes('metrics'));
pinSelf(CORE_LOAD);
const sipp = new SippDriver();
const [uasPort, boxPort, metricsPort] = [await freePort(), await freePort(), await freePort()];

const ports = ['--listen', String(boxPort), '--upstream', String(uasPort)];
const boxArgs = isRelay
  ? ['bench/relay/dgram-relay.ts', ...ports]
  : ['bench/sink-cost.ts', '--sinks', values.sinks!, ...ports]
      // Only when asked: trees from before the option refuse it.
      .concat(values['receive-clock'] === 'kernel' ? [] : ['--receive-clock', values['receive-clock']!])
      .concat(['--log-file', join(tmpdir(), 'sipspan-capture-latency.log')])
      .concat(withMetrics ? ['--metrics', String(metricsPort)] : []);

/** The proxy-time histogram's series now, or nulls without the metrics sink. */
const scrapeInside = () =>
  Promise.all(
    INSIDE_SERIES.map((label) =>
      withMetrics ? scrapeHistogram([metricsPort], PROXY_HISTOGRAM, label) : Promise.resolve(null),
    ),
  );

const otlp = values.export ? await startOtlpReceiver() : null;
const exporting: NodeJS.ProcessEnv =
  otlp === null
    ? { OTEL_TRACES_EXPORTER: 'none' }
    : {
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlp.port}`,
        OTEL_TRACES_SAMPLER: 'always_on',
      };
const scraper = new Scraper();
const uas = await sipp.startUas(uasPort, 'udp', CORE_LOAD);
const box = start(process.execPath, boxArgs, {
  core: CORE_BOX,
  cwd: values.tree,
  env: { ...process.env, ...exporting },
});
try {
  if (!(await waitFor(() => box.exited() || isUdpBound(boxPort), 10_000)) || box.exited())
    throw new Error(`${values.box} did not start: ${box.output().slice(-500)}`);
  const warmupCalls = Number(values['warmup-calls']);
  if (warmupCalls > 0) await sipp.runUac(boxPort, 2000, warmupCalls, 'udp', CORE_LOAD);
  const capture = await startCapture(
    [boxPort, uasPort],
    mkdtempSync(join(tmpdir(), 'sipspan-lat-')),
    CORE_LOAD,
  );
  const before = await scrapeInside();
  if (values.scrape && withMetrics) scraper.watch([metricsPort]);
  await sipp.runUac(boxPort, rate, rate * seconds, 'udp', CORE_LOAD);
  scraper.stop();
  const { hops } = await capture.finish([boxPort, uasPort]);
  const after = await scrapeInside();

  const requests = hops.flatMap((h) => h.requestUs);
  const responses = hops.flatMap((h) => h.responseUs);
  const all = [...requests, ...responses];
  const us = (xs: number[], q: number) => quantile(xs, q).toFixed(0);
  const out = [
    `${values.tree} (${values.box}): ${all.length} messages, per hop p50 ${us(all, 0.5)} µs, ` +
      `p99 ${us(all, 0.99)} µs, p99.9 ${us(all, 0.999)} µs, max ${us(all, 1)} µs; requests p50 ${us(requests, 0.5)} µs, responses p50 ${us(responses, 0.5)} µs`,
  ];
  const { afterIdleUs, inBurstUs } = hops[0];
  out.push(
    `  after ≥ ${IDLE_US / 1000} ms idle ${String(afterIdleUs.length).padStart(6)} messages, p50 ${us(afterIdleUs, 0.5)} µs, p90 ${us(afterIdleUs, 0.9)} µs; ` +
      `in a burst ${inBurstUs.length} messages, p50 ${us(inBurstUs, 0.5)} µs, p90 ${us(inBurstUs, 0.9)} µs; ` +
      `${((afterIdleUs.length + inBurstUs.length) / Math.max(1, afterIdleUs.length)).toFixed(1)} messages per burst`,
  );
  for (const [kind, xs] of hops[0].byMessage)
    out.push(
      `  ${kind.padEnd(12)} ${String(xs.length).padStart(6)} messages, p50 ${us(xs, 0.5)} µs, p90 ${us(xs, 0.9)} µs`,
    );

  const [inside, insideRequests, insideResponses] = before.map((b, i) => {
    const a = after[i];
    return b === null || a === null ? null : diffBuckets(a, b);
  });
  if (inside && insideRequests && insideResponses) {
    const q = (d: Buckets, p: number) => ((histogramQuantile(d, p) ?? Number.NaN) * 1e6).toFixed(0);
    out.push(
      `  ${PROXY_HISTOGRAM} over the run: p50 ${q(inside, 0.5)} µs, p99 ${q(inside, 0.99)} µs; ` +
        `requests p50 ${q(insideRequests, 0.5)} µs, responses p50 ${q(insideResponses, 0.5)} µs`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  scraper.stop();
  await stop(box);
  await stop(uas, 'SIGKILL');
  await otlp?.close();
  killAll();
}
