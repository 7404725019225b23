/**
 * Cardinality and log safety: outsiders choose method tokens, status codes
 * and reason phrases, so none of them may become a label value, a new metric
 * series or an unescaped byte in a log line.
 *
 *   random requests ──▶ sipspan ──▶ upstream that answers each with a random status and reason
 *   random responses (incl. 4294967301, 99, 700) ──▶ sipspan
 *
 * Checked on the observe channels (every label-like field in a closed set,
 * nothing an outsider sent in one), and, when the sinks are present, on the
 * Prometheus exposition (no new series after the first batch, no outsider's
 * token in any series) and on the log output (one valid JSON object per line,
 * bounded length).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { channels } from '../../src/observe/channels.ts';
import type {
  ForwardedEvent,
  LimitEvent,
  RejectedEvent,
  TransactionRecord,
} from '../../src/observe/records.ts';
import { KNOWN_METHODS } from '../../src/wire/methods.ts';
import { waitUntil } from '../support/raw-peers.ts';
import {
  CountingPeer,
  collect,
  HOST,
  MiniUac,
  mulberry32,
  paced,
  responseTo,
  type StartedProxy,
  sipRequest,
  startProxy,
} from './support/harness.ts';
import { checkLogLine } from './support/network-fuzz.ts';
import { combineSinks, type LogsProbe, logsProbe, type MetricsProbe, metricsProbe } from './support/sinks.ts';

const METHOD_LABELS = new Set<string>([...KNOWN_METHODS, 'other']);
const STATUS_CLASSES = new Set(['1xx', '2xx', '3xx', '4xx', '5xx', '6xx', 'timeout']);
const TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~";
/** Reason-phrase bytes an outsider might use to break a log line or a label: quotes, backslashes, braces, UTF-8, controls. */
const REASON_CHARS = [
  '"',
  '\\',
  '{',
  '}',
  '\u2028',
  'é',
  '\u0000',
  '\t',
  '$',
  'a',
  'Z',
  ' ',
  '<',
  '>',
  '%0d%0a',
  '\u0007',
];
/** Outsider-chosen values seen in this run, so none may appear anywhere as a label. */
const outsiderTokens: string[] = [];

function randomMethod(rnd: () => number): string {
  let s = 'X';
  const n = 3 + Math.floor(rnd() * 20);
  for (let i = 0; i < n; i++) s += TOKEN_CHARS[Math.floor(rnd() * TOKEN_CHARS.length)];
  return s;
}

function randomReason(rnd: () => number): string {
  let s = 'R';
  const n = 4 + Math.floor(rnd() * 40);
  for (let i = 0; i < n; i++) s += REASON_CHARS[Math.floor(rnd() * REASON_CHARS.length)];
  return s;
}

describe('cardinality and log safety', { concurrency: false }, () => {
  let proxy: StartedProxy;
  let upstream: CountingPeer;
  const metrics: MetricsProbe = metricsProbe();
  const logs: LogsProbe = logsProbe();
  const rnd = mulberry32(42);
  const events = {
    start: collect<TransactionRecord>(channels.transactionStart, 50_000),
    end: collect<TransactionRecord>(channels.transactionEnd, 50_000),
    rejected: collect<RejectedEvent>(channels.messageRejected, 50_000),
    limits: collect<LimitEvent>(channels.limitHit, 50_000),
  };
  const forwarded: { methodLabel: string; status: number }[] = [];
  const onForwarded = (m: unknown) => {
    const e = m as ForwardedEvent;
    if (forwarded.length < 50_000) forwarded.push({ methodLabel: e.methodLabel, status: e.status });
  };

  before(async () => {
    channels.messageForwarded.subscribe(onForwarded);
    upstream = await CountingPeer.start({ tcp: false });
    // The upstream answers every request with a random status (100..699) and a hostile reason phrase.
    upstream.onDatagram = (b, r) => {
      if (b.toString('latin1', 0, 4) === 'SIP/' || b.toString('latin1', 0, 4) === 'ACK ') return;
      const status = 100 + Math.floor(rnd() * 600);
      const reason = randomReason(rnd);
      outsiderTokens.push(reason);
      upstream.send(
        Buffer.from(
          responseTo(b, status, reason)
            .toString('latin1')
            .replace(/^SIP\/2\.0 \d+ [^\r]*/, `SIP/2.0 ${status} ${reason}`),
          'utf8',
        ),
        r.port,
      );
    };
    proxy = await startProxy({
      routes: [{ name: 'cardinality', upstream: `udp://${HOST}:${upstream.port}`, metrics: true }],
      timers: { t1_ms: 20 },
      logs: logs.config,
      sinks: combineSinks([metrics.factory, logs.factory]),
    });
  });

  after(async () => {
    channels.messageForwarded.unsubscribe(onForwarded);
    for (const c of Object.values(events)) c.stop();
    await proxy.stop();
    await upstream.close();
    await logs?.cleanup();
  });

  /** One batch: random methods through the proxy, answered with random statuses; stray responses with bad codes. */
  async function batch(n: number, tag: string): Promise<void> {
    const uac = await MiniUac.open();
    try {
      await paced(n, 2000, (i) => {
        const method = randomMethod(rnd);
        outsiderTokens.push(method);
        uac.send(
          sipRequest({
            method,
            viaPort: uac.port,
            branch: `z9hG4bK-${tag}${i}`,
            callId: `${tag}-${i}@x`,
            extra: [`X-Junk: ${randomReason(rnd)}`],
          }),
          proxy.ports[0],
        );
        if (i % 5 === 0) {
          // A response with an impossible status code, our Via on top.
          const code = ['4294967301', '99', '700', '1000', '0200', '-200', '2OO'][i % 7];
          outsiderTokens.push(code);
          const stray = [
            `SIP/2.0 ${code} ${randomReason(rnd)}`,
            `Via: SIP/2.0/UDP ${HOST}:${proxy.ports[0]};branch=z9hG4bK-sS0123456789ab01234567`,
            `Via: SIP/2.0/UDP ${HOST}:${uac.port};branch=z9hG4bK-x${i}`,
            'From: <sip:a@x>;tag=1',
            'To: <sip:b@y>;tag=2',
            `Call-ID: ${tag}-stray-${i}@x`,
            `CSeq: 1 ${method}`,
            'Content-Length: 0',
          ];
          upstream.send(Buffer.from(`${stray.join('\r\n')}\r\n\r\n`, 'utf8'), proxy.ports[0]);
        }
      });
      await waitUntil(() => upstream.udpCount >= n * 0.99, 3000);
      // Transactions answered only with a provisional end at Timer F (64·T1 = 1.28 s): let them, so every
      // status class a batch can produce exists before the series are compared.
      await sleep(64 * 20 + 500);
    } finally {
      await uac.close();
    }
  }

  test('1,000 random methods answered with random statuses and hostile reason phrases, 200 impossible status codes: every label-like field stays in its closed set', async () => {
    await batch(1000, 'a');
    assert.ok(events.start.items.length >= 990, `${events.start.items.length} transactions`);
    for (const t of events.start.items)
      assert.ok(METHOD_LABELS.has(t.methodLabel), `method label ${t.methodLabel}`);
    for (const t of events.end.items) {
      assert.ok(METHOD_LABELS.has(t.methodLabel), `method label ${t.methodLabel}`);
      assert.ok(t.statusClass === null || STATUS_CLASSES.has(t.statusClass), `status class ${t.statusClass}`);
      assert.ok(t.status === 0 || (t.status >= 100 && t.status <= 699), `status ${t.status}`);
    }
    for (const f of forwarded) {
      assert.ok(METHOD_LABELS.has(f.methodLabel), `forwarded method label ${f.methodLabel}`);
      assert.ok(f.status === 0 || (f.status >= 100 && f.status <= 699), `forwarded status ${f.status}`);
    }
    const reasons = new Set(events.rejected.items.map((e) => e.reason));
    const limits = new Set(events.limits.items.map((e) => e.limit));
    for (const label of [...reasons, ...limits]) {
      assert.match(label, /^[a-z0-9_-]{1,40}$/, `reason/limit label ${JSON.stringify(label)}`);
      assert.ok(!outsiderTokens.includes(label), `an outsider's value became a label: ${label}`);
    }
    assert.ok(reasons.size <= 40, `reasons: ${[...reasons]}`);
    const bad = events.rejected.items.filter((e) => e.reason === 'bad-status-code').length;
    assert.ok(bad >= 150, `impossible status codes dropped as bad-status-code: ${bad}`);
  });

  test('Prometheus exposition: a second batch of new random values adds no series, and no outsider value appears in a label', async () => {
    const afterFirst = await metrics.series(proxy.app);
    await batch(1000, 'b');
    const afterSecond = await metrics.series(proxy.app);
    const added = afterSecond.filter((s) => !afterFirst.includes(s));
    assert.deepEqual(added, [], 'series added by the second batch');
    for (const s of afterSecond) {
      for (const tok of outsiderTokens) {
        if (tok.length >= 4) assert.ok(!s.includes(tok), `series ${s} carries outsider value ${tok}`);
      }
    }
  });

  test('log lines: every line one valid JSON object, bounded, with hostile reason phrases escaped', async () => {
    for (const s of proxy.app.sinks) await s.flush(2000);
    const lines = await logs.lines();
    assert.ok(lines.length > 0, 'log lines were written');
    const problems = lines.map((l) => checkLogLine(l, logs.maxLineBytes)).filter((p) => p !== null);
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} bad log lines`);
  });
});
