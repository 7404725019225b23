import type { Sipspan } from '../app.ts';
import { startCaptureSink } from './capture/capture-sink.ts';
import { startLogSink } from './logs/log-sink.ts';
import { startMetricsSink } from './metrics/metrics-sink.ts';
import type { Sink } from './sink.ts';
import { startTracingSink } from './tracing/tracing-sink.ts';

/**
 * Every sink of a production process, started in order (stopped in reverse):
 * logs first so the others' start-up is logged and the last lines are flushed.
 */
export async function startAllSinks(app: Sipspan): Promise<Sink[]> {
  const sinks: Sink[] = [];
  try {
    sinks.push(startLogSink(app));
    sinks.push(startMetricsSink(app));
    sinks.push(startTracingSink(app));
    if (app.config.capture_mb > 0) {
      sinks.push(
        startCaptureSink(app, {
          maxMb: app.config.capture_mb,
          redactUsers: app.config.logs.redact_users,
          redactAuth: app.config.logs.redact_auth,
        }),
      );
    }
  } catch (err) {
    // A sink that cannot start (an unknown exporter) fails the start: the ones already started let go
    // of their channels, timers and files, so the process can exit.
    for (const sink of sinks.reverse()) await sink.shutdown().catch(() => {});
    throw err;
  }
  return sinks;
}
