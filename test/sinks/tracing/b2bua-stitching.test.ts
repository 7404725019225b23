/**
 * A back-to-back user agent between the two routes starts a new dialog for
 * every call: new Call-ID, new tags, none of the caller's headers (so no trace
 * headers). sipspan's leg correlation must still put both legs in one trace:
 *
 *   SIPp UAC ─▶ sip-gateway route ─▶ B2BUA stand-in ─▶ sip-signaling route ─▶ UAS
 *              (leg A: Call-ID a)                      (leg B: Call-ID b)
 *
 * Everything real: SIPp, sockets, the app, the tracing sink and its store.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { channels } from '../../../src/observe/channels.ts';
import type { TransactionRecord } from '../../../src/observe/records.ts';
import { samplerFromEnv } from '../../../src/observe/sampler.ts';
import { ATTR } from '../../../src/sinks/tracing/semconv.ts';
import { startTracingSink, type TracingSink } from '../../../src/sinks/tracing/tracing-sink.ts';
import { B2buaStandin } from '../../../src/standins/b2bua-standin.ts';
import { UasStandin } from '../../../src/standins/uas-standin.ts';
import { freePort, runSippUac } from '../../support/sipp.ts';
import { twoRouteConfig } from '../../support/two-routes.ts';

const CALLS = 20;
const LOAD_CALLS = 400;

interface Chain {
  app: Sipspan;
  /** SIPp's default call flow through the gateway route; every call must succeed. */
  place(calls: number, rate: number): Promise<void>;
  store: NonNullable<TracingSink['store']>;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** UAS stand-in, B2BUA stand-in and sipspan with both routes and the span store, as drawn above. */
async function startChain(onBridge?: (aCallId: string, bCallId: string) => void): Promise<Chain> {
  const uas = await new UasStandin({
    host: '127.0.0.1',
    port: await freePort(),
    ringMs: 20,
    answerMs: 60,
  }).start();
  const gatewayPort = await freePort();
  const signalingPort = await freePort();
  const b2bua = await new B2buaStandin({
    host: '127.0.0.1',
    port: await freePort(),
    next: { transport: 'udp', host: '127.0.0.1', port: signalingPort },
    onBridge,
  }).start();
  const env = { OTEL_BSP_SCHEDULE_DELAY: '100' };
  let sink: TracingSink | null = null;
  const app = await Sipspan.start(
    twoRouteConfig({
      gateway: gatewayPort,
      gatewayUpstream: b2bua.port,
      signaling: signalingPort,
      signalingUpstream: uas.port,
    }),
    {
      sampler: samplerFromEnv(env),
      sinks: (a) => {
        sink = startTracingSink(a, { env, store: true });
        return [sink];
      },
    },
  );
  const tracing = sink as unknown as TracingSink;
  return {
    app,
    async place(calls, rate) {
      const r = await runSippUac({
        target: `127.0.0.1:${gatewayPort}`,
        port: await freePort(),
        calls,
        rate,
        timeoutS: 30,
      });
      assert.equal(r.failed, 0, r.stderr);
      assert.equal(r.successful, calls);
    },
    store: tracing.store!,
    async flush() {
      await new Promise((res) => setTimeout(res, 200));
      await tracing.flush(2000);
    },
    async stop() {
      await app.stop(1000);
      await b2bua.stop();
      await uas.stop();
    },
  };
}

describe('B2BUA between the hops', () => {
  test('both legs of every call end up in one trace: the signaling leg hangs under the gateway CLIENT span', async () => {
    const chain = await startChain();
    try {
      await chain.place(CALLS, 10);
      await chain.flush();
      const store = chain.store;

      assert.equal(store.size, CALLS, `one trace per call, not one per leg: ${store.size} traces`);
      for (const t of store.recent(CALLS)) {
        assert.equal(t.callIds.length, 2, `trace ${t.traceId}: the Call-IDs of both legs (${t.callIds})`);
        const invites = t.spans.filter(
          (s) =>
            s.attributes[ATTR.SIP_METHOD] === 'INVITE' &&
            (s.kind === SpanKind.SERVER || s.kind === SpanKind.CLIENT),
        );
        const at = (route: string, kind: SpanKind) =>
          invites.find((s) => s.attributes[ATTR.ROUTE] === route && s.kind === kind);
        const gatewayClient = at('sip-gateway', SpanKind.CLIENT);
        const signalingServer = at('sip-signaling', SpanKind.SERVER);
        assert.ok(
          gatewayClient !== undefined && signalingServer !== undefined,
          `trace ${t.traceId}: both hops`,
        );
        assert.equal(
          signalingServer.parentSpanContext?.spanId,
          gatewayClient.spanContext().spanId,
          'the B leg at the second hop is a child of the A leg leaving the first',
        );
        assert.ok(
          typeof signalingServer.attributes[ATTR.STITCHED_BY] === 'string',
          'the stitched span says how it was matched',
        );
        // Both legs hang up in the same trace too.
        const byes = t.spans.filter(
          (s) => s.attributes[ATTR.SIP_METHOD] === 'BYE' && s.kind === SpanKind.SERVER,
        );
        assert.deepEqual(
          byes.map((s) => s.attributes[ATTR.ROUTE]).sort(),
          ['sip-gateway', 'sip-signaling'],
          `trace ${t.traceId}: the BYE of each leg`,
        );
      }
      process.stdout.write(
        `# b2bua: ${CALLS} calls, ${store.size} traces, stitched by ${store.recent(1)[0].spans.find((s) => s.attributes[ATTR.STITCHED_BY] !== undefined)?.attributes[ATTR.STITCHED_BY]}\n`,
      );
    } finally {
      await chain.stop();
    }
  });

  test('under load with one SDP o= line and the same users on every call, no leg joins another call', async () => {
    // SIPp's calls differ only in Call-ID and tags: the weak keys are shared by every call, and at
    // 200 calls/s several legs A wait for their answer at once. A leg B that matches legs of more than
    // one call starts a trace of its own; it never joins a call that is not its own.
    const pairs: [string, string][] = [];
    const chain = await startChain((a, b) => pairs.push([a, b]));
    // The transactions say so too (for sipspan_b2bua_legs_total): count the INVITEs marked ambiguous.
    let markedAmbiguous = 0;
    const onEnd = (m: unknown) => {
      if ((m as TransactionRecord).stitchAmbiguous) markedAmbiguous++;
    };
    channels.transactionEnd.subscribe(onEnd);
    try {
      await chain.place(LOAD_CALLS, 200);
      await chain.flush();
      const traceOf = new Map<string, { traceId: string; callIds: readonly string[] }>();
      for (const t of chain.store.recent(LOAD_CALLS * 2)) for (const c of t.callIds) traceOf.set(c, t);
      assert.equal(pairs.length, LOAD_CALLS);
      let joined = 0;
      for (const [a, b] of pairs) {
        const ta = traceOf.get(a);
        const tb = traceOf.get(b);
        assert.ok(ta !== undefined && tb !== undefined, `both legs traced: ${a}, ${b}`);
        if (ta === tb) joined++;
        else assert.deepEqual(tb.callIds, [b], `leg ${b} (of ${a}) is in the trace of ${tb.callIds}`);
      }
      // Every leg B could join its own call: those left alone are the ones counted as ambiguous.
      assert.equal(joined + chain.app.observer.ambiguousLegCount, LOAD_CALLS);
      assert.equal(markedAmbiguous, chain.app.observer.ambiguousLegCount);
      process.stdout.write(
        `# b2bua under load: ${LOAD_CALLS} calls, ${joined} with both legs in one trace\n`,
      );
    } finally {
      await chain.stop();
    }
  });

  test('legs are matched only between routes that both correlate: with fewer, no INVITE keys are kept', async () => {
    const route = async (name: string, b2bua_correlation: boolean) => ({
      name,
      listen: [`udp://127.0.0.1:${await freePort()}`],
      upstream: 'udp://127.0.0.1:5060',
      b2bua_correlation,
    });
    const cases = [
      { routes: [await route('sip-gateway', true), await route('sip-signaling', true)], correlates: true },
      { routes: [await route('sip-gateway', true), await route('sip-signaling', false)], correlates: false },
      { routes: [await route('sip-gateway', true)], correlates: false },
    ];
    for (const { routes, correlates } of cases) {
      const app = await Sipspan.start(buildConfig({ node: 'test-node', admin: '127.0.0.1:0', routes }), {
        sinks: () => [],
      });
      try {
        assert.equal(
          app.observer.correlatesLegs,
          correlates,
          `${routes.filter((r) => r.b2bua_correlation).length} of ${routes.length} routes correlating`,
        );
      } finally {
        await app.stop(1000);
      }
    }
  });
});
