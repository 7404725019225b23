/**
 * A scrape rendered family by family, the loop free between families, is the
 * text prom-client's registry.metrics() renders in one go: Prometheus text
 * and OpenMetrics (counter families without _total, their samples with it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { renderInSteps } from '../../../src/sinks/metrics/render-in-steps.ts';
import { RouteMetrics } from '../../../src/sinks/metrics/route-metrics.ts';
import { completed, forwardedEvent, transactionRecord } from '../../support/records.ts';

function routeWithTraffic(): RouteMetrics {
  const r = new RouteMetrics('sip-gateway', 'node-1', {
    activeCalls: () => 3,
    pendingTransactions: () => 2,
    tcpConnections: () => 1,
    udpReceiveDrops: async () => 0,
  });
  for (let i = 0; i < 50; i++) r.forwarded(forwardedEvent({ proxySeconds: 0.00001 * i }));
  r.forwarded(forwardedEvent({ isRequest: false, status: 200, proxySeconds: 0.0002 }));
  for (const method of ['INVITE', 'BYE', 'OPTIONS']) {
    const times = { requestOut: 100.2, firstResponseIn: 104, finalResponseIn: 110, finalResponseOut: 110.1 };
    r.transactionEnded(completed(transactionRecord({ method }), times));
  }
  return r;
}

describe('scrape rendered in steps', () => {
  test('Prometheus text and OpenMetrics equal what the registry renders at once', async () => {
    const r = routeWithTraffic();
    for (const registry of [r.text, r.openMetrics]) {
      const stepped = await renderInSteps(registry);
      assert.equal(stepped, await registry.metrics());
      // Twice: the OpenMetrics counter names are settled on the first scrape, as prom-client settles them.
      assert.equal(await renderInSteps(registry), stepped);
    }
    assert.match(await renderInSteps(r.openMetrics), /^# TYPE sipspan_\w+ counter$/m);
    assert.match(await renderInSteps(r.openMetrics), /# EOF\n$/);
  });

  test('the event loop runs between families', async () => {
    const r = routeWithTraffic();
    let turns = 0;
    let rendering = true;
    const count = async () => {
      while (rendering) {
        turns++;
        await nextTurn();
      }
    };
    const counting = count();
    await renderInSteps(r.text);
    rendering = false;
    await counting;
    assert.ok(r.text.getMetricsAsArray().length > 10);
    assert.ok(turns >= r.text.getMetricsAsArray().length / 2, `${turns} turns`);
  });
});
