/**
 * The demo's two-route chain in one process, for the capture and call-view tests:
 *
 *   load generator ─▶ sipspan route sip-gateway ─▶ ForwardStandin (gateway)
 *                 ─▶ sipspan route sip-signaling ─▶ UasStandin (signaling)
 *
 * with the capture sink, and the tracing sink when the tree has one.
 */
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import {
  type CaptureSink,
  type CaptureSinkOptions,
  startCaptureSink,
} from '../../../src/sinks/capture/capture-sink.ts';
import type { Sink } from '../../../src/sinks/sink.ts';
import { startTracingSink } from '../../../src/sinks/tracing/tracing-sink.ts';
import { ForwardStandin } from '../../../src/standins/forward-standin.ts';
import { LoadGenerator, type PlacedCall } from '../../../src/standins/load-generator.ts';
import { UasStandin } from '../../../src/standins/uas-standin.ts';
import { freePort } from '../../support/sipp.ts';

export interface ChainOptions {
  capture?: CaptureSinkOptions;
  /** Start the tracing sink with its span store (default true). */
  tracing?: boolean;
  failRatio?: number;
}

export interface Chain {
  app: Sipspan;
  capture: CaptureSink;
  /** Whether a span store serves /api/traces on the admin listener. */
  hasTracing: boolean;
  adminUrl: string;
  host: string;
  gatewayRoutePort: number;
  place(calls: number, rate?: number, holdMs?: number, transport?: 'udp' | 'tcp'): Promise<PlacedCall[]>;
  stop(): Promise<void>;
}

export async function startChain(opts: ChainOptions = {}): Promise<Chain> {
  const host = '127.0.0.1';
  const ports = {
    gatewayRoute: await freePort(host),
    signalingRoute: await freePort(host),
    gateway: await freePort(host),
    signaling: await freePort(host),
  };
  const signaling = await new UasStandin({
    host,
    port: ports.signaling,
    ringMs: 20,
    answerMs: 60,
    jitterMs: 30,
    failRatio: opts.failRatio ?? 0,
    failStatus: 486,
  }).start();
  const gateway = await new ForwardStandin({
    host,
    port: ports.gateway,
    next: { transport: 'udp', host, port: ports.signalingRoute },
    delayMs: 3,
  }).start();
  const config = buildConfig(
    {
      node: 'test',
      admin: `${host}:0`,
      capture_mb: 16,
      routes: [
        {
          name: 'sip-gateway',
          listen: [`udp://${host}:${ports.gatewayRoute}`, `tcp://${host}:${ports.gatewayRoute}`],
          upstream: `udp://${host}:${ports.gateway}`,
          // Off: each LoadGenerator numbers its callers from 1, and the 'users' leg match would stitch a
          // second batch's calls into the first batch's traces (same From/To users within the window).
          b2bua_correlation: false,
        },
        {
          name: 'sip-signaling',
          listen: [`udp://${host}:${ports.signalingRoute}`, `tcp://${host}:${ports.signalingRoute}`],
          upstream: `udp://${host}:${ports.signaling}`,
          b2bua_correlation: false,
        },
      ],
    },
    {},
    {},
  );
  let capture: CaptureSink | null = null;
  const hasTracing = opts.tracing !== false;
  const app = await Sipspan.start(config, {
    sinks: (a) => {
      const sinks: Sink[] = [];
      if (hasTracing) sinks.push(startTracingSink(a, { store: true }));
      capture = startCaptureSink(a, opts.capture);
      sinks.push(capture);
      return sinks;
    },
  });
  return {
    app,
    capture: capture!,
    hasTracing,
    adminUrl: `http://${host}:${app.admin.port}`,
    host,
    gatewayRoutePort: ports.gatewayRoute,
    async place(calls: number, rate = 25, holdMs = 150, transport: 'udp' | 'tcp' = 'udp') {
      const load = new LoadGenerator({
        target: { transport, host, port: ports.gatewayRoute },
        host,
        rate,
        calls,
        holdMs,
      });
      const results = await load.run();
      // The last BYE's 200 passes both hops after the caller has it.
      await new Promise((r) => setTimeout(r, 150));
      return results;
    },
    async stop() {
      await app.stop(500);
      await gateway.stop();
      await signaling.stop();
    },
  };
}
