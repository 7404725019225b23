/**
 * The metrics sink against real peers: SIPp through two routes in series,
 * scrapes of both route ports and the admin port checked by promtool, and
 * random methods, status codes and reason phrases that must not add series.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { startMetricsSink } from '../../../src/sinks/metrics/metrics-sink.ts';
import { freePort, runSippUac, startSippUas } from '../../support/sipp.ts';

function promtoolCheck(text: string): { ok: boolean; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, 'promtool is not installed (apt-get install prometheus)');
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** Sample lines (not comments) of an exposition, as `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function sum(s: Map<string, number>, prefix: string, filter = ''): number {
  let n = 0;
  for (const [k, v] of s) if ((k.startsWith(`${prefix}{`) || k === prefix) && k.includes(filter)) n += v;
  return n;
}

describe('metrics sink', { concurrency: false }, () => {
  let app: Sipspan;
  let gatewayPort: number;
  let gatewayMetrics: number;
  let signalingMetrics: number;
  let uasPort: number;
  const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  before(async () => {
    gatewayPort = await freePort();
    const signalingPort = await freePort();
    uasPort = await freePort();
    gatewayMetrics = await freePort();
    signalingMetrics = await freePort();
    app = await Sipspan.start(
      buildConfig({
        node: 'test-node',
        admin: '127.0.0.1:0',
        routes: [
          {
            name: 'sip-gateway',
            listen: [`udp://127.0.0.1:${gatewayPort}`],
            upstream: `udp://127.0.0.1:${signalingPort}`,
            metrics: `127.0.0.1:${gatewayMetrics}`,
          },
          {
            name: 'sip-signaling',
            listen: [`udp://127.0.0.1:${signalingPort}`],
            upstream: `udp://127.0.0.1:${uasPort}`,
            metrics: `127.0.0.1:${signalingMetrics}`,
          },
        ],
      }),
      { sinks: (a) => [startMetricsSink(a)] },
    );
  });

  after(async () => {
    await app.stop(500);
  });

  test('after N SIPp calls through two routes, each route port counts exactly N processed calls and histograms match transactions', async () => {
    const N = 200;
    const uas = await startSippUas({ port: uasPort });
    try {
      const r = await runSippUac({
        target: `127.0.0.1:${gatewayPort}`,
        port: await freePort(),
        calls: N,
        rate: 100,
        timeoutS: 30,
      });
      assert.equal(r.successful, N, r.stderr);
    } finally {
      await uas.stop();
    }
    await new Promise((res) => setTimeout(res, 200));
    for (const [port, service] of [
      [gatewayMetrics, 'sip-gateway'],
      [signalingMetrics, 'sip-signaling'],
    ] as const) {
      const text = await scrape(port);
      const s = samples(text);
      assert.equal(sum(s, 'sip_calls_processed_total'), N, `${service}: calls processed`);
      assert.equal(sum(s, 'sip_calls_processed_total', 'outcome="answered"'), N);
      assert.equal(sum(s, 'sip_session_attempts_total', 'final="2xx"'), N);
      assert.equal(sum(s, 'sip_sessions_completed_total'), N);
      // Every series of this port belongs to this route; histogram counts equal transaction counts.
      for (const key of s.keys())
        if (key.includes('service=')) assert.ok(key.includes(`service="${service}"`), key);
      for (const method of ['INVITE', 'BYE']) {
        const tx = sum(s, 'sip_transactions_total', `method="${method}"`);
        assert.equal(tx, N, `${service} ${method} transactions`);
        assert.equal(sum(s, 'sip_transaction_duration_seconds_count', `method="${method}"`), tx);
        assert.equal(sum(s, 'sip_upstream_rtt_seconds_count', `method="${method}"`), tx);
      }
      assert.equal(sum(s, 'sip_requests_total', 'method="ACK"'), N);
      assert.equal(sum(s, 'sip_session_request_delay_seconds_count', 'result="success"'), N);
      assert.equal(sum(s, 'sip_session_duration_seconds_count'), N);
      assert.ok(text.includes('le="0.2"'), 'latency buckets include 0.2 s');
      const check = promtoolCheck(text);
      assert.ok(check.ok, check.output);
    }
    const admin = await scrape(app.admin.port);
    assert.ok(!admin.includes('sip_calls_processed_total'), 'route series leak onto the admin port');
    assert.match(admin, /sipspan_build_info\{version="[^"]+",node="test-node"\} 1/);
    assert.match(admin, /process_cpu_seconds_total/);
    assert.match(admin, /nodejs_eventloop_lag_seconds/);
    const check = promtoolCheck(admin);
    assert.ok(check.ok, check.output);
    const gateway = await scrape(gatewayMetrics);
    assert.ok(!gateway.includes('process_cpu_seconds_total'), 'process series leak onto a route port');
  });

  test('10,000 requests and responses with random methods, status codes and reason phrases add no series', async () => {
    // A raw peer behind the signaling route answers every request with a random status and reason.
    const uas = createSocket('udp4');
    await new Promise<void>((r) => uas.bind(uasPort, '127.0.0.1', () => r()));
    uas.on('message', (buf, rinfo) => {
      const text = buf.toString('latin1');
      const via = text.split('\r\n').filter((l) => /^via:/i.test(l));
      const keep = text.split('\r\n').filter((l) => /^(from|to|call-id|cseq):/i.test(l));
      const codes = [100, 180, 200, 302, 404, 486, 500, 503, 603, 699, 4294967301, 99, 1000];
      const code = codes[Math.floor(Math.random() * codes.length)];
      const reason = Math.random().toString(36).repeat(3);
      uas.send(
        `SIP/2.0 ${code} ${reason}\r\n${[...via, ...keep].join('\r\n')}\r\nContent-Length: 0\r\n\r\n`,
        rinfo.port,
        rinfo.address,
      );
    });
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    client.on('message', () => {});
    const send = (i: number) => {
      const method =
        i % 3 === 0
          ? ['INVITE', 'OPTIONS', 'MESSAGE'][i % 3]
          : `X${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
      const msg = [
        `${method} sip:svc@127.0.0.1:${gatewayPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${client.address().port};branch=z9hG4bK-card${i}`,
        'Max-Forwards: 70',
        `From: <sip:a@127.0.0.1>;tag=${i}`,
        'To: <sip:svc@127.0.0.1>',
        `Call-ID: card-${i}-${Math.random()}`,
        `CSeq: 1 ${method}`,
        `User-Agent: random-${Math.random()}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      client.send(msg, gatewayPort, '127.0.0.1');
    };
    const countSeries = async () => {
      const a = samples(await scrape(gatewayMetrics)).size;
      const b = samples(await scrape(signalingMetrics)).size;
      return a + b;
    };
    try {
      for (let i = 0; i < 2000; i++) {
        send(i);
        if (i % 200 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 300));
      const before = await countSeries();
      for (let i = 2000; i < 12_000; i++) {
        send(i);
        if (i % 200 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 300));
      const afterCount = await countSeries();
      assert.equal(afterCount, before, 'random input added metric series');
      const text = await scrape(signalingMetrics);
      assert.ok(!/4294967301|random-|card-/.test(text), 'a wire value reached a label');
      assert.ok(
        sum(samples(text), 'sipspan_messages_dropped_total', 'reason="bad-status-code"') > 0,
        'the out-of-range status was not dropped',
      );
    } finally {
      client.close();
      await new Promise<void>((r) => uas.close(() => r()));
    }
  });
});
