import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Sipspan } from '../../app.ts';
import { processStats } from '../process-stats.ts';
import { DROPPED_DEFAULT_METRICS, PROCESS_METRICS, type ProcessMetricSpec } from './catalog.ts';

/** The package version (src/ and dist/ both sit two levels under the package root). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8'));
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * How often the event-loop delay is sampled. prom-client's default, 10 ms, is a timer that wakes
 * an idle process 100 times a second: 11 ms of CPU a second here, 22 µs per call at 500 calls/s,
 * where every message is a wake-up of its own (`npm run bench:idle`). The price: a stall shows only
 * when it spans a sample (a 10 ms one, one time in ten), and the series read the interval between
 * samples, so an idle loop reads 0.1 s (the health dashboard subtracts it). Recurring stalls still
 * show in the p99; what each message waited is sipspan_proxy_seconds, from the kernel's stamp.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * Process-wide series for the admin listener: build info, the counters sinks
 * keep about themselves (read from processStats when scraped), the heap guard,
 * and prom-client's default process and runtime metrics. Registered here only,
 * so no route port repeats them. Prometheus text only: it has no exemplars.
 */
export function createProcessRegistry(app: Sipspan): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node: app.config.node });
  const registers = [registry];
  const P = PROCESS_METRICS;
  new Gauge({
    name: P.buildInfo.name,
    help: P.buildInfo.help,
    labelNames: [...P.buildInfo.labels],
    registers,
  })
    .labels(packageVersion(), app.receiveClock.udp)
    .set(1);
  const statCounter = (spec: ProcessMetricSpec, read: () => number) =>
    new Counter({
      name: spec.name,
      help: spec.help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  statCounter(P.spansDropped, () => processStats.spansDropped);
  statCounter(P.spansExported, () => processStats.spansExported);
  statCounter(P.spanExportFailures, () => processStats.spanExportFailures);
  statCounter(P.logLinesDropped, () => processStats.logLinesDropped);
  new Gauge({
    name: P.heapGuard.name,
    help: P.heapGuard.help,
    registers,
    collect() {
      const state = app.heapGuardState;
      this.set(state === 'ok' ? 0 : state === 'soft' ? 1 : 2);
    },
  });
  new Gauge({
    name: P.heapLive.name,
    help: P.heapLive.help,
    registers,
    collect() {
      this.set(app.heapLiveBytes);
    },
  });
  const MiB = 1024 * 1024;
  const heapLimits = new Gauge({
    name: P.heapLimit.name,
    help: P.heapLimit.help,
    labelNames: [...P.heapLimit.labels],
    registers,
  });
  heapLimits.labels('guard_soft').set(app.heapLimits.softMb * MiB);
  heapLimits.labels('guard_hard').set(app.heapLimits.hardMb * MiB);
  heapLimits.labels('v8').set(app.heapLimits.v8HeapLimitMb * MiB);
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  return registry;
}
