/**
 * The metrics sink against real peers: SIPp through two routes of one process
 * in series (UAC → sip-gateway → sip-signaling → UAS), scrapes of both route
 * ports and the admin port checked by promtool and ingested by a real
 * Prometheus, and random wire values that must not add series.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { startMetricsSink } from '../../../src/sinks/metrics/metrics-sink.ts';
import { freePort, runSippUac, startSippUas } from '../../support/sipp.ts';
import {
  checkOpenMetrics,
  OPENMETRICS_ACCEPT,
  parseExposition,
  promtoolCheck,
  scrape,
  seriesCount,
  sumOf,
} from './exposition.ts';

const N = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('metrics sink: SIPp through two routes in series', { concurrency: false }, () => {
  let app: Sipspan;
  let gatewayPort: number;
  let uasPort: number;
  let gatewayMetrics: number;
  let signalingMetrics: number;
  let routes: [number, string][];

  before(async () => {
    gatewayPort = await freePort();
    const signalingPort = await freePort();
    uasPort = await freePort();
    gatewayMetrics = await freePort();
    signalingMetrics = await freePort();
    routes = [
      [gatewayMetrics, 'sip-gateway'],
      [signalingMetrics, 'sip-signaling'],
    ];
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
      assert.equal(r.failed, 0);
    } finally {
      await uas.stop();
    }
    // The last BYE's 200 is forwarded before SIPp counts the call: give the sweep a tick.
    await sleep(300);
  });

  after(async () => {
    await app.stop(500);
  });

  test('each route port counts exactly N calls, and every duration histogram counts its transactions', async () => {
    for (const [port, service] of routes) {
      const { text } = await scrape(port);
      assert.equal(sumOf(text, 'sip_calls_processed_total'), N, `${service}: calls processed`);
      assert.equal(sumOf(text, 'sip_calls_processed_total', { outcome: 'answered' }), N);
      assert.equal(sumOf(text, 'sip_session_attempts_total'), N);
      assert.equal(sumOf(text, 'sip_session_attempts_total', { final: '2xx' }), N);
      assert.equal(sumOf(text, 'sip_sessions_completed_total'), N);
      assert.equal(sumOf(text, 'sip_requests_total', { method: 'ACK' }), N);
      assert.equal(sumOf(text, 'sip_session_request_delay_seconds_count', { result: 'success' }), N);
      assert.equal(sumOf(text, 'sip_session_request_delay_seconds_count', { result: 'failure' }), 0);
      assert.equal(sumOf(text, 'sip_session_disconnect_delay_seconds_count'), N);
      assert.equal(sumOf(text, 'sip_session_duration_seconds_count'), N);
      assert.equal(sumOf(text, 'sip_active_calls'), 0);
      assert.equal(sumOf(text, 'sip_pending_transactions'), 0);
      // _count of the duration histogram equals the counter, label set by label set.
      const transactions = parseExposition(text).filter((s) => s.name === 'sip_transactions_total');
      assert.deepEqual(transactions.map((s) => `${s.labels.method}/${s.labels.status_class}`).sort(), [
        'BYE/2xx',
        'INVITE/2xx',
      ]);
      for (const s of transactions) {
        assert.equal(s.value, N, `${service} ${s.labels.method} transactions`);
        const m = { method: s.labels.method, status_class: s.labels.status_class };
        assert.equal(sumOf(text, 'sip_transaction_duration_seconds_count', m), s.value);
        assert.equal(sumOf(text, 'sip_upstream_rtt_seconds_count', { method: s.labels.method }), s.value);
      }
    }
  });

  test('promtool check metrics passes on both route ports and the admin port', async () => {
    for (const port of [gatewayMetrics, signalingMetrics, app.admin.port]) {
      const check = promtoolCheck((await scrape(port)).text);
      // Exit 1 is a parse error, 3 lint findings only. Every series here is ours or prom-client's
      // (its *_total gauges are left out), so neither is tolerated.
      assert.equal(check.status, 0, `port ${port}: ${check.output}`);
    }
  });

  test('every series is exposed exactly once: route series on their own port, process series on admin', async () => {
    const admin = parseExposition((await scrape(app.admin.port)).text);
    const adminNames = new Set(admin.map((s) => s.name));
    assert.ok(adminNames.has('sipspan_build_info'));
    assert.ok(adminNames.has('process_cpu_seconds_total'));
    assert.ok(adminNames.has('nodejs_eventloop_lag_seconds'));
    for (const s of admin) {
      assert.ok(!s.name.startsWith('sip_'), `${s.name} on the admin port`);
      assert.equal(s.labels.service, undefined, `${s.name} carries a service on the admin port`);
    }
    for (const [port, service] of routes) {
      const samples = parseExposition((await scrape(port)).text);
      for (const s of samples) {
        assert.ok(!adminNames.has(s.name), `${s.name} on both the admin and ${service} ports`);
        assert.equal(s.labels.service, service, `${s.name} on the ${service} port`);
        assert.equal(s.labels.node, 'test-node');
      }
      const om = await scrape(port, OPENMETRICS_ACCEPT);
      checkOpenMetrics(om.text);
      const exemplars = parseExposition(om.text).filter((s) => s.exemplar !== null);
      assert.ok(
        exemplars.some(
          (s) => s.name === 'sip_upstream_rtt_seconds_bucket' && /trace_id="[0-9a-f]{32}"/.test(s.exemplar!),
        ),
        `${service}: RTT exemplars`,
      );
      assert.ok(exemplars.some((s) => s.name === 'sip_transaction_duration_seconds_bucket'));
      // Same series in both formats (OpenMetrics only adds exemplars and # EOF).
      assert.equal(seriesCount(om.text), samples.length);
    }
  });

  test('a real Prometheus scrapes all three ports without error and stores the exemplars', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipspan-prometheus-'));
    const promPort = await freePort();
    const targets = (ports: number[]) => `[${ports.map((p) => `'127.0.0.1:${p}'`).join(', ')}]`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, scrape_timeout: 1s }',
        'scrape_configs:',
        `  - { job_name: routes, static_configs: [{ targets: ${targets([gatewayMetrics, signalingMetrics])} }] }`,
        `  - { job_name: admin, static_configs: [{ targets: ${targets([app.admin.port])} }] }`,
        '',
      ].join('\n'),
    );
    let prometheus: ChildProcess | null = null;
    try {
      prometheus = spawn(
        '/usr/bin/prometheus',
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
          // Exemplar storage makes Prometheus ask for OpenMetrics first.
          '--enable-feature=exemplar-storage',
        ],
        { stdio: 'ignore' },
      );
      const spawnError = new Promise<Error>((resolve) => prometheus!.once('error', resolve));
      const api = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/${path}`);
        return ((await res.json()) as { data: unknown }).data;
      };
      type Target = { scrapeUrl: string; health: string; lastError: string };
      let state: Target[] = [];
      let calls: { metric: { service: string }; value: [number, string] }[] = [];
      let exemplars: {
        seriesLabels: Record<string, string>;
        exemplars: { labels: { trace_id?: string } }[];
      }[] = [];
      const deadline = performance.now() + 25_000;
      while (performance.now() < deadline) {
        const failed = await Promise.race([spawnError, sleep(500).then(() => null)]);
        assert.equal(failed, null, 'prometheus could not start (apt-get install prometheus)');
        try {
          state = ((await api('targets')) as { activeTargets: Target[] }).activeTargets;
          const now = Date.now() / 1000;
          exemplars = (await api(
            `query_exemplars?query=sip_upstream_rtt_seconds_bucket&start=${now - 300}&end=${now + 5}`,
          )) as typeof exemplars;
          calls = (
            (await api('query?query=sum+by+(service)+(sip_calls_processed_total)')) as {
              result: typeof calls;
            }
          ).result;
        } catch {
          continue; // not listening yet
        }
        if (
          state.length === 3 &&
          state.every((t) => t.health === 'up') &&
          exemplars.length > 0 &&
          calls.length === 2
        )
          break;
      }
      for (const t of state) assert.equal(t.lastError, '', `${t.scrapeUrl}: ${t.lastError}`);
      assert.equal(state.length, 3);
      assert.ok(
        state.every((t) => t.health === 'up'),
        JSON.stringify(state),
      );
      assert.deepEqual(calls.map((c) => [c.metric.service, Number(c.value[1])]).sort(), [
        ['sip-gateway', N],
        ['sip-signaling', N],
      ]);
      assert.ok(exemplars.length > 0, 'Prometheus stored no exemplar');
      for (const e of exemplars) {
        assert.match(e.seriesLabels.service, /^sip-(gateway|signaling)$/);
        for (const x of e.exemplars) assert.match(x.labels.trace_id ?? '', /^[0-9a-f]{32}$/);
      }
    } finally {
      if (prometheus !== null && prometheus.exitCode === null) {
        const exited = new Promise((r) => prometheus!.once('exit', r));
        prometheus.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('10,000 requests and responses with random methods, status codes and reason phrases add no series', async () => {
    // A raw peer behind the signaling route answers every request with a random status and reason.
    const uas = createSocket('udp4');
    await new Promise<void>((r) => uas.bind(uasPort, '127.0.0.1', () => r()));
    uas.on('message', (buf, rinfo) => {
      const text = buf.toString('latin1');
      const keep = text.split('\r\n').filter((l) => /^(via|from|to|call-id|cseq):/i.test(l));
      const codes = [100, 180, 200, 302, 404, 486, 500, 503, 603, 699, 4294967301, 99, 1000];
      const code = codes[Math.floor(Math.random() * codes.length)];
      const reason = Math.random().toString(36).repeat(3);
      uas.send(
        `SIP/2.0 ${code} ${reason}\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`,
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
          ? ['INVITE', 'OPTIONS', 'MESSAGE'][(i / 3) % 3]
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
      let n = 0;
      for (const [port] of routes) n += seriesCount((await scrape(port)).text);
      return n;
    };
    const burst = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        send(i);
        if (i % 200 === 0) await sleep(20);
      }
      await sleep(300);
    };
    try {
      await burst(0, 2000);
      const seen = await countSeries();
      await burst(2000, 12_000);
      assert.equal(await countSeries(), seen, 'random input added metric series');
      const text = (await scrape(signalingMetrics)).text;
      assert.ok(!/4294967301|random-|card-/.test(text), 'a wire value reached a label');
      assert.ok(
        sumOf(text, 'sipspan_messages_dropped_total', { reason: 'bad-status-code' }) > 0,
        'the out-of-range status was not dropped',
      );
    } finally {
      client.close();
      await new Promise<void>((r) => uas.close(() => r()));
    }
  });
});
