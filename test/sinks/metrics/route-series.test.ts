/**
 * The metrics sink fed synthetic records on the diagnostics channels (the
 * records the observer publishes), scraped over HTTP from a running instance:
 * which series each event moves, the RFC 6076 delays, exemplars in OpenMetrics
 * only, and a label space that random input cannot grow.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Sipspan } from '../../../src/app.ts';
import { buildConfig } from '../../../src/config/load-config.ts';
import { channels } from '../../../src/observe/channels.ts';
import { statusClassOf } from '../../../src/observe/observer.ts';
import {
  CallRecord,
  type Direction,
  type LimitEvent,
  type RejectedEvent,
  type RouteInfo,
  type TransactionRecord,
} from '../../../src/observe/records.ts';
import {
  B2BUA_STITCH,
  CALL_OUTCOMES,
  DIRECTIONS,
  FINALS,
  GENERATED_CODES,
  LIMITS,
  METHOD_LABELS,
  PROXY_KINDS,
  REASONS,
  RESULTS,
  STATUS_CLASSES,
  UPSTREAM_ERROR_KINDS,
} from '../../../src/sinks/metrics/catalog.ts';
import { startMetricsSink, wantsOpenMetrics } from '../../../src/sinks/metrics/metrics-sink.ts';
import type { Sink } from '../../../src/sinks/sink.ts';
import type { MethodLabel } from '../../../src/wire/methods.ts';
import { methodLabel } from '../../../src/wire/methods.ts';
import { forwardedEvent, transactionRecord } from '../../support/records.ts';
import { freePort } from '../../support/sipp.ts';
import {
  checkOpenMetrics,
  OPENMETRICS_ACCEPT,
  parseExposition,
  promtoolCheck,
  scrape,
  seriesCount,
  sumOf,
} from './exposition.ts';

const GATEWAY: RouteInfo = { index: 0, name: 'sip-gateway' };
const SIGNALING: RouteInfo = { index: 1, name: 'sip-signaling' };
/** A route without a metrics listener: its events must be ignored, not served anywhere. */
const DARK: RouteInfo = { index: 2, name: 'sip-dark' };
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

let seq = 0;

interface TxShape {
  route?: RouteInfo;
  toTag?: string | null;
  callId?: string;
  status?: number;
  /** ms (performance.now() scale) */
  requestOut?: number;
  firstResponseIn?: number;
  finalResponseIn?: number;
  endedAt?: number;
  outcome?: TransactionRecord['outcome'];
  marks?: { status: number; at: number }[];
  generated?: boolean;
  cancelledAt?: number;
  sampled?: boolean;
  /** Where the request came from: 'upstream' for one the service sent (a callee's BYE). */
  direction?: Direction;
}

/** A transaction record as the observer publishes it on sipspan:transaction:end. */
function transaction(method: string, o: TxShape = {}): TransactionRecord {
  seq++;
  const tx = transactionRecord({
    route: o.route ?? GATEWAY,
    method,
    callId: o.callId ?? `call-${seq}`,
    branch: `z9hG4bK-t${seq}`,
    downstream: '127.0.0.1:5060',
    fromTag: 'from-tag',
    toTag: o.toTag,
    requestIn: 1000,
    direction: o.direction,
  });
  tx.traceId = TRACE;
  tx.sampled = o.sampled ?? true;
  tx.requestOut = o.requestOut ?? 1000;
  if (o.firstResponseIn !== undefined) tx.firstResponseIn = o.firstResponseIn;
  for (const m of o.marks ?? []) tx.addMark(m.status, m.at);
  if (o.cancelledAt !== undefined) tx.cancelledAt = o.cancelledAt;
  if (o.outcome === 'timeout') {
    tx.outcome = 'timeout';
    tx.statusClass = 'timeout';
    tx.endedAt = o.endedAt ?? tx.requestOut + 32_000;
    return tx;
  }
  const status = o.status ?? 200;
  tx.status = status;
  tx.statusClass = statusClassOf(status);
  if (o.generated === true) {
    tx.generatedStatus = status;
    tx.requestOut = -1;
    tx.outcome = 'rejected';
    tx.endedAt = 1000;
    return tx;
  }
  tx.finalResponseIn = o.finalResponseIn ?? tx.requestOut + 50;
  if (tx.firstResponseIn === -1) tx.firstResponseIn = tx.marks[0]?.at ?? tx.finalResponseIn;
  tx.outcome = o.outcome ?? 'completed';
  tx.endedAt = tx.finalResponseIn + 1;
  return tx;
}

function call(over: Partial<CallRecord> & { route?: RouteInfo }): CallRecord {
  seq++;
  const c = new CallRecord(
    `${(over.route ?? GATEWAY).index}|c${seq}`,
    over.route ?? GATEWAY,
    `c${seq}`,
    'from-tag',
    null,
    null,
    TRACE,
    'a3ce929d0e0e4736',
    true,
    true,
    1000,
  );
  Object.assign(c, over);
  return c;
}

function rejected(over: Partial<RejectedEvent>): RejectedEvent {
  return {
    route: GATEWAY,
    isRequest: true,
    status: 0,
    reason: 'bad-start-line',
    transport: 'udp',
    remote: '192.0.2.1:5060',
    method: null,
    callId: null,
    cseq: -1,
    at: 0,
    ...over,
  };
}

const publishTx = (tx: TransactionRecord) => channels.transactionEnd.publish(tx);

describe('metrics sink: series moved by each event', { concurrency: false }, () => {
  let app: Sipspan;
  let sink: Sink;
  let gatewayPort: number;
  let signalingPort: number;

  /** Run `act` between two scrapes of `port`; returns a reader of what changed. */
  async function changes(port: number, act: () => void, accept?: string) {
    const a = (await scrape(port, accept)).text;
    act();
    const b = (await scrape(port, accept)).text;
    return (name: string, match: Record<string, string> = {}) =>
      sumOf(b, name, match) - sumOf(a, name, match);
  }

  before(async () => {
    gatewayPort = await freePort();
    signalingPort = await freePort();
    const listen = [await freePort(), await freePort(), await freePort()];
    const nowhere = await freePort();
    app = await Sipspan.start(
      buildConfig({
        node: 'unit-node',
        admin: '127.0.0.1:0',
        routes: [
          {
            name: GATEWAY.name,
            listen: [`udp://127.0.0.1:${listen[0]}`],
            upstream: `udp://127.0.0.1:${nowhere}`,
            metrics: `127.0.0.1:${gatewayPort}`,
          },
          {
            name: SIGNALING.name,
            listen: [`udp://127.0.0.1:${listen[1]}`],
            upstream: `udp://127.0.0.1:${nowhere}`,
            metrics: `127.0.0.1:${signalingPort}`,
          },
          {
            name: DARK.name,
            listen: [`udp://127.0.0.1:${listen[2]}`],
            upstream: `udp://127.0.0.1:${nowhere}`,
          },
        ],
      }),
      {
        sinks: (a) => {
          sink = startMetricsSink(a);
          return [sink];
        },
      },
    );
  });

  after(async () => {
    await app.stop(200);
  });

  test('a forwarded request and response count on their route only, with their proxy time', async () => {
    const other = (await scrape(signalingPort)).text;
    const d = await changes(gatewayPort, () => {
      channels.messageForwarded.publish(forwardedEvent({ methodLabel: 'INVITE', proxySeconds: 0.00004 }));
      channels.messageForwarded.publish(forwardedEvent({ methodLabel: 'BYE', direction: 'upstream' }));
      channels.messageForwarded.publish(
        forwardedEvent({ isRequest: false, methodLabel: 'INVITE', status: 180, proxySeconds: 0.0002 }),
      );
      channels.messageForwarded.publish(forwardedEvent({ route: DARK, methodLabel: 'INVITE' }));
    });
    assert.equal(d('sip_requests_total', { method: 'INVITE', direction: 'downstream' }), 1);
    assert.equal(d('sip_requests_total', { method: 'BYE', direction: 'upstream' }), 1);
    assert.equal(d('sip_responses_total', { method: 'INVITE', status_class: '1xx' }), 1);
    assert.equal(d('sipspan_proxy_seconds_count', { kind: 'request' }), 2);
    assert.equal(d('sipspan_proxy_seconds_bucket', { kind: 'request', le: '0.00005' }), 2);
    assert.equal(d('sipspan_proxy_seconds_count', { kind: 'response' }), 1);
    assert.equal(d('sipspan_proxy_seconds_bucket', { kind: 'response', le: '0.0001' }), 0);
    assert.equal(d('sipspan_proxy_seconds_bucket', { kind: 'response', le: '0.00025' }), 1);
    assert.equal((await scrape(signalingPort)).text, other, 'another route moved');
  });

  test('an unknown method counts as `other`; an out-of-range status counts in no class', async () => {
    const d = await changes(gatewayPort, () => {
      channels.messageForwarded.publish(forwardedEvent({ methodLabel: methodLabel('RE%47IST%45R') }));
      channels.messageForwarded.publish(forwardedEvent({ methodLabel: 'NOT-A-LABEL' as MethodLabel }));
      for (const status of [0, 99, 700, 4294967301, -200, Number.NaN])
        channels.messageForwarded.publish(forwardedEvent({ isRequest: false, status }));
    });
    assert.equal(d('sip_requests_total', { method: 'other' }), 2);
    assert.equal(d('sip_responses_total'), 0);
    assert.equal(d('sipspan_proxy_seconds_count', { kind: 'response' }), 6);
  });

  test('a completed transaction: count, duration to the final, RTT to the first response', async () => {
    const d = await changes(gatewayPort, () =>
      publishTx(
        transaction('OPTIONS', {
          requestOut: 1000,
          firstResponseIn: 1002,
          finalResponseIn: 1050,
          status: 200,
        }),
      ),
    );
    const m = { method: 'OPTIONS', status_class: '2xx' };
    assert.equal(d('sip_transactions_total', m), 1);
    assert.equal(d('sip_transaction_duration_seconds_count', m), 1);
    assert.ok(Math.abs(d('sip_transaction_duration_seconds_sum', m) - 0.05) < 1e-9);
    assert.equal(d('sip_transaction_duration_seconds_bucket', { ...m, le: '0.025' }), 0);
    assert.equal(d('sip_transaction_duration_seconds_bucket', { ...m, le: '0.05' }), 1);
    assert.equal(d('sip_upstream_rtt_seconds_count', { method: 'OPTIONS' }), 1);
    assert.equal(d('sip_upstream_rtt_seconds_bucket', { method: 'OPTIONS', le: '0.001' }), 0);
    assert.equal(d('sip_upstream_rtt_seconds_bucket', { method: 'OPTIONS', le: '0.0025' }), 1);
  });

  test("a request the service sent toward a caller (its BYE) counts its transaction but is not the service's RTT", async () => {
    const bye = transaction('BYE', {
      toTag: 'to',
      requestOut: 1000,
      firstResponseIn: 1300,
      finalResponseIn: 1300,
      direction: 'upstream',
    });
    const d = await changes(gatewayPort, () => publishTx(bye));
    assert.equal(d('sip_transactions_total', { method: 'BYE', status_class: '2xx' }), 1);
    assert.equal(d('sip_transaction_duration_seconds_count', { method: 'BYE', status_class: '2xx' }), 1);
    assert.equal(
      d('sip_upstream_rtt_seconds_count', { method: 'BYE' }),
      0,
      'a slow caller is not a slow service',
    );
  });

  test('a timeout counts with status_class="timeout" and lasts until it was declared', async () => {
    const d = await changes(gatewayPort, () =>
      publishTx(transaction('MESSAGE', { outcome: 'timeout', requestOut: 1000, endedAt: 33_000 })),
    );
    const m = { method: 'MESSAGE', status_class: 'timeout' };
    assert.equal(d('sip_transactions_total', m), 1);
    assert.equal(d('sip_transaction_duration_seconds_count', m), 1);
    assert.equal(d('sip_transaction_duration_seconds_bucket', { ...m, le: '32' }), 1);
    assert.equal(d('sip_upstream_rtt_seconds_count', { method: 'MESSAGE' }), 0, 'no response, no RTT');
  });

  test('answers sipspan generated count as transactions without duration or RTT; 2xx ACKs do not count', async () => {
    const ack = transaction('ACK', { toTag: 'to' });
    ack.outcome = 'forwarded';
    const d = await changes(gatewayPort, () => {
      publishTx(transaction('INVITE', { status: 503, generated: true }));
      publishTx(ack);
    });
    assert.equal(d('sip_transactions_total', { method: 'INVITE', status_class: '5xx' }), 1);
    assert.equal(d('sip_transaction_duration_seconds_count', { method: 'INVITE' }), 0);
    assert.equal(d('sip_upstream_rtt_seconds_count', { method: 'INVITE' }), 0);
    assert.equal(d('sip_session_request_delay_seconds_count'), 0);
    assert.equal(d('sip_transactions_total', { method: 'ACK' }), 0);
  });

  test('exemplars {trace_id} of sampled transactions appear in OpenMetrics only', async () => {
    const tx = transaction('SUBSCRIBE', { requestOut: 1000, firstResponseIn: 1001, finalResponseIn: 1003 });
    publishTx(tx);
    const unsampled = transaction('NOTIFY', { requestOut: 1000, finalResponseIn: 1004, sampled: false });
    publishTx(unsampled);
    const om = await scrape(gatewayPort, OPENMETRICS_ACCEPT);
    assert.match(om.type, /^application\/openmetrics-text; version=1\.0\.0/);
    checkOpenMetrics(om.text);
    const samples = parseExposition(om.text);
    const withExemplar = samples.filter((s) => s.exemplar !== null);
    const rtt = withExemplar.find(
      (s) => s.name === 'sip_upstream_rtt_seconds_bucket' && s.labels.method === 'SUBSCRIBE',
    );
    assert.ok(rtt !== undefined, 'RTT exemplar');
    assert.equal(rtt.labels.le, '0.001', 'the exemplar sits on the bucket its value fell in');
    assert.match(rtt.exemplar!, new RegExp(`^# \\{trace_id="${TRACE}"\\} 0\\.001 \\d+\\.?\\d*$`));
    assert.ok(
      withExemplar.some(
        (s) => s.name === 'sip_transaction_duration_seconds_bucket' && s.labels.method === 'SUBSCRIBE',
      ),
      'duration exemplar',
    );
    assert.ok(!withExemplar.some((s) => s.labels.method === 'NOTIFY'), 'an unsampled trace is no exemplar');
    for (const s of withExemplar)
      assert.ok(/^sip_(upstream_rtt|transaction_duration)_seconds_bucket$/.test(s.name), s.name);
    const text = await scrape(gatewayPort);
    assert.match(text.type, /^text\/plain; version=0\.0\.4/);
    assert.ok(!text.text.includes('trace_id'), 'no exemplar in the Prometheus text format');
  });

  test('an OpenMetrics scrape leaves counter names of later Prometheus text scrapes intact', async () => {
    // prom-client's Registry renames counters (drops `_total`) when it renders OpenMetrics; a shared
    // registry switched per request would then serve `sip_requests{...}` as text ever after.
    await scrape(gatewayPort, OPENMETRICS_ACCEPT);
    await scrape(app.admin.port, OPENMETRICS_ACCEPT);
    const text = (await scrape(gatewayPort)).text;
    assert.match(text, /^sip_requests_total\{/m);
    assert.match(text, /^# TYPE sip_requests_total counter$/m);
    assert.doesNotMatch(text, /^sip_requests\{/m);
    const admin = (await scrape(app.admin.port)).text;
    assert.match(admin, /^process_cpu_seconds_total\{/m);
    assert.match(admin, /^sipspan_spans_dropped_total\{/m);
  });

  test('RFC 6076 §4.3 SRD: to the first non-100 provisional, else the final; result by the final answer', async () => {
    const invite = (o: TxShape) => transaction('INVITE', { requestOut: 1000, ...o });
    const d = await changes(gatewayPort, () => {
      // 100 then 180 at +30 ms then 200: success at the 180.
      publishTx(
        invite({
          marks: [
            { status: 100, at: 1001 },
            { status: 180, at: 1030 },
          ],
          status: 200,
          finalResponseIn: 3000,
        }),
      );
      // Only a 100, then 200 at +8 ms: success at the 200.
      publishTx(invite({ marks: [{ status: 100, at: 1001 }], status: 200, finalResponseIn: 1008 }));
      // 486 at +4 ms: failure.
      publishTx(invite({ status: 486, finalResponseIn: 1004 }));
      // No sample: a redirect, an auth challenge, a cancelled attempt, a timeout.
      publishTx(invite({ status: 302, finalResponseIn: 1004 }));
      publishTx(invite({ status: 407, finalResponseIn: 1004 }));
      publishTx(
        invite({
          marks: [
            { status: 180, at: 1010 },
            { status: -1, at: 1500 },
          ],
          cancelledAt: 1500,
          status: 487,
          finalResponseIn: 1502,
        }),
      );
      publishTx(invite({ outcome: 'timeout' }));
      // An in-dialog INVITE (re-INVITE) is no session request.
      publishTx(invite({ toTag: 'to', status: 200 }));
    });
    assert.equal(d('sip_session_request_delay_seconds_count', { result: 'success' }), 2);
    assert.ok(Math.abs(d('sip_session_request_delay_seconds_sum', { result: 'success' }) - 0.038) < 1e-9);
    assert.equal(d('sip_session_request_delay_seconds_count', { result: 'failure' }), 1);
    assert.ok(Math.abs(d('sip_session_request_delay_seconds_sum', { result: 'failure' }) - 0.004) < 1e-9);
  });

  test('RFC 6076 §4.4 SDD: BYE to its 2xx; failed disconnects stay out of it', async () => {
    const d = await changes(gatewayPort, () => {
      publishTx(transaction('BYE', { toTag: 'to', requestOut: 1000, status: 200, finalResponseIn: 1003 }));
      publishTx(transaction('BYE', { toTag: 'to', requestOut: 1000, status: 481, finalResponseIn: 1002 }));
      publishTx(transaction('BYE', { toTag: 'to', outcome: 'timeout' }));
    });
    assert.equal(d('sip_session_disconnect_delay_seconds_count'), 1);
    assert.ok(Math.abs(d('sip_session_disconnect_delay_seconds_sum') - 0.003) < 1e-9);
    assert.equal(d('sip_transactions_total', { method: 'BYE' }), 3);
  });

  test('RFC 6076 §4.1 RRD: from the first REGISTER through its 401 challenge to the 2xx; §4.2 failures apart', async () => {
    const d = await changes(gatewayPort, () => {
      publishTx(
        transaction('REGISTER', { callId: 'reg-1', requestOut: 1000, status: 401, finalResponseIn: 1005 }),
      );
      publishTx(
        transaction('REGISTER', { callId: 'reg-1', requestOut: 1010, status: 200, finalResponseIn: 1020 }),
      );
      publishTx(
        transaction('REGISTER', { callId: 'reg-2', requestOut: 1000, status: 200, finalResponseIn: 1002 }),
      );
      publishTx(
        transaction('REGISTER', { callId: 'reg-3', requestOut: 1000, status: 403, finalResponseIn: 1001 }),
      );
      publishTx(
        transaction('REGISTER', { callId: 'reg-4', outcome: 'timeout', requestOut: 1000, endedAt: 33_000 }),
      );
    });
    assert.equal(d('sip_registration_request_delay_seconds_count', { result: 'success' }), 2);
    assert.ok(
      Math.abs(d('sip_registration_request_delay_seconds_sum', { result: 'success' }) - (0.02 + 0.002)) <
        1e-9,
      'the challenged registration is measured from its first REGISTER',
    );
    assert.equal(d('sip_registration_request_delay_seconds_count', { result: 'failure' }), 2);
  });

  test('call outcomes count processed calls and RFC 6076 session attempts by final answer', async () => {
    const d = await changes(gatewayPort, () => {
      const cases: [CallRecord['outcome'], number][] = [
        ['answered', 200],
        ['redirected', 302],
        ['failed_4xx', 486],
        ['failed_4xx', 404],
        ['failed_4xx', 408],
        ['failed_5xx', 503],
        ['failed_5xx', 502],
        ['failed_6xx', 603],
        ['failed_6xx', 606],
        ['cancelled', 487],
        ['timeout', 0],
      ];
      for (const [outcome, finalStatus] of cases)
        channels.callOutcome.publish(call({ outcome, finalStatus }));
    });
    assert.equal(d('sip_calls_processed_total'), 11);
    assert.equal(d('sip_calls_processed_total', { outcome: 'failed_4xx' }), 3);
    const finals: Record<string, number> = {
      '2xx': 1,
      '3xx': 1,
      '486': 1,
      other_4xx: 1,
      '408': 1,
      '503': 1,
      other_5xx: 1,
      '603': 1,
      other_6xx: 1,
      cancelled: 1,
      timeout: 1,
    };
    for (const f of FINALS) assert.equal(d('sip_session_attempts_total', { final: f }), finals[f] ?? 0, f);
  });

  test('B2BUA legs: an INVITE joined to a call on another route counts joined, one left alone as ambiguous', async () => {
    const joined = transaction('INVITE', { status: 200 });
    joined.stitchedBy = 'sdp-origin';
    const d = await changes(gatewayPort, () => {
      publishTx(joined);
      for (let i = 0; i < 2; i++) {
        const alone = transaction('INVITE', { status: 200 });
        alone.stitchAmbiguous = true;
        publishTx(alone);
      }
      // A leg nothing matched is neither.
      publishTx(transaction('INVITE', { status: 200 }));
    });
    assert.equal(d('sipspan_b2bua_legs_total', { stitch: 'joined' }), 1);
    assert.equal(d('sipspan_b2bua_legs_total', { stitch: 'ambiguous' }), 2);
  });

  test('call ends: completed sessions and RFC 6076 §4.5 SDT from the 2xx to the BYE', async () => {
    const d = await changes(gatewayPort, () => {
      channels.callEnd.publish(call({ answeredAt: 2000, byeAt: 62_000, completed: true }));
      channels.callEnd.publish(call({ answeredAt: 2000, byeAt: 4000, completed: false }));
      channels.callEnd.publish(call({ answeredAt: -1, byeAt: -1, completed: false }));
    });
    assert.equal(d('sip_sessions_completed_total'), 1);
    assert.equal(d('sip_session_duration_seconds_count'), 2);
    assert.equal(d('sip_session_duration_seconds_bucket', { le: '1' }), 0);
    assert.equal(d('sip_session_duration_seconds_bucket', { le: '5' }), 1);
    assert.equal(d('sip_session_duration_seconds_bucket', { le: '60' }), 2);
  });

  test('request retransmissions count; final-response retransmissions on the same channel do not', async () => {
    const tx = transaction('INFO', { toTag: 'to' });
    const d = await changes(gatewayPort, () => {
      tx.retransmissions++;
      channels.transactionRetransmission.publish(tx);
      tx.retransmissions++;
      channels.transactionRetransmission.publish(tx);
      tx.responseRetransmissions++;
      channels.transactionRetransmission.publish(tx);
    });
    assert.equal(d('sip_retransmissions_total', { method: 'INFO' }), 2);
  });

  test('drops, parse errors and generated answers by closed reason and code; anything else is `other`', async () => {
    const d = await changes(gatewayPort, () => {
      channels.messageRejected.publish(rejected({ reason: 'bad-start-line' }));
      channels.messageRejected.publish(rejected({ reason: 'closed-body-truncated' }));
      channels.messageRejected.publish(rejected({ reason: 'not-our-via', isRequest: false }));
      channels.messageRejected.publish(rejected({ reason: 'bad-header-line', status: 400 }));
      channels.messageRejected.publish(rejected({ reason: 'too-many-hops', status: 483 }));
      channels.messageRejected.publish(rejected({ reason: 'made-up-by-a-bug <script>', status: 0 }));
      channels.messageRejected.publish(rejected({ reason: 'overloaded', status: 599 }));
    });
    assert.equal(d('sipspan_messages_dropped_total', { reason: 'bad-start-line' }), 1);
    assert.equal(d('sipspan_messages_dropped_total', { reason: 'body-truncated' }), 1);
    assert.equal(d('sipspan_messages_dropped_total', { reason: 'not-our-via' }), 1);
    assert.equal(d('sipspan_messages_dropped_total', { reason: 'other' }), 1);
    assert.equal(d('sipspan_messages_dropped_total'), 4);
    assert.equal(d('sipspan_parse_errors_total', { reason: 'bad-start-line' }), 1);
    assert.equal(d('sipspan_parse_errors_total', { reason: 'body-truncated' }), 1);
    assert.equal(d('sipspan_parse_errors_total', { reason: 'bad-header-line' }), 1);
    assert.equal(d('sipspan_parse_errors_total'), 3, 'proxy reasons are no parse errors');
    assert.equal(d('sipspan_generated_responses_total', { code: '400' }), 1);
    assert.equal(d('sipspan_generated_responses_total', { code: '483' }), 1);
    assert.equal(d('sipspan_generated_responses_total', { code: 'other' }), 1);
  });

  test('limit hits by closed limit; upstream_* limits also count upstream errors by kind', async () => {
    const d = await changes(gatewayPort, () => {
      const hit = (limit: string, route: RouteInfo | null = GATEWAY) =>
        channels.limitHit.publish({ route, limit } satisfies LimitEvent);
      hit('max_transactions');
      hit('upstream_send');
      hit('upstream_resolve');
      hit('upstream_gremlins');
      hit('no_such_limit');
      hit('max_calls', null);
    });
    assert.equal(d('sipspan_limit_hits_total', { limit: 'max_transactions' }), 1);
    assert.equal(d('sipspan_limit_hits_total', { limit: 'upstream_send' }), 1);
    assert.equal(d('sipspan_limit_hits_total', { limit: 'other' }), 2);
    assert.equal(
      d('sipspan_limit_hits_total', { limit: 'max_calls' }),
      0,
      'a limit without route has no route',
    );
    assert.equal(d('sipspan_upstream_errors_total', { kind: 'send' }), 1);
    assert.equal(d('sipspan_upstream_errors_total', { kind: 'resolve' }), 1);
    assert.equal(d('sipspan_upstream_errors_total', { kind: 'other' }), 1);
  });

  test('gauges and zero-initialised ratio terms exist before any traffic; route and process series stay apart', async () => {
    const gw = (await scrape(signalingPort)).text;
    for (const name of ['sip_active_calls', 'sip_pending_transactions', 'sipspan_tcp_connections'])
      assert.match(gw, new RegExp(`^${name}\\{service="sip-signaling",node="unit-node"\\} 0$`, 'm'));
    for (const o of CALL_OUTCOMES)
      assert.match(
        gw,
        new RegExp(
          `^sip_calls_processed_total\\{outcome="${o}",service="sip-signaling",node="unit-node"\\} 0$`,
          'm',
        ),
      );
    for (const f of FINALS) assert.match(gw, new RegExp(`^sip_session_attempts_total\\{final="${f}",`, 'm'));
    const admin = (await scrape(app.admin.port)).text;
    for (const s of parseExposition(admin)) {
      assert.ok(!s.name.startsWith('sip_'), `route series ${s.name} on the admin port`);
      assert.equal(s.labels.service, undefined);
      assert.equal(s.labels.node, 'unit-node');
    }
    assert.match(admin, /^sipspan_build_info\{version="[^"]+",receive_clock="kernel",node="unit-node"\} 1$/m);
    assert.match(admin, /^sipspan_heap_guard_state\{node="unit-node"\} 0$/m);
    assert.match(admin, /^sipspan_heap_live_bytes\{node="unit-node"\} [1-9]\d+$/m);
    for (const limit of ['guard_soft', 'guard_hard', 'v8'])
      assert.match(
        admin,
        new RegExp(`^sipspan_heap_limit_bytes\\{limit="${limit}",node="unit-node"\\} [1-9]\\d+$`, 'm'),
      );
    for (const port of [gatewayPort, signalingPort]) {
      const route = (await scrape(port)).text;
      assert.ok(
        !/^(process_|nodejs_|sipspan_build_info|sipspan_spans_)/m.test(route),
        'process series on a route port',
      );
      const check = promtoolCheck(route);
      assert.equal(check.status, 0, check.output);
    }
  });

  test('the Accept header chooses the format; q=0 refuses OpenMetrics', () => {
    assert.equal(wantsOpenMetrics(undefined), false);
    assert.equal(wantsOpenMetrics('text/plain;version=0.0.4'), false);
    assert.equal(wantsOpenMetrics(OPENMETRICS_ACCEPT), true);
    assert.equal(wantsOpenMetrics('application/openmetrics-text'), true);
    assert.equal(wantsOpenMetrics('Application/OpenMetrics-Text; version=1.0.0'), true);
    assert.equal(wantsOpenMetrics('application/openmetrics-text;q=0,text/plain'), false);
  });

  test('10,000 random events leave the series unchanged once every closed-set combination was seen', async () => {
    // Every combination an event can reach, once.
    for (const route of [GATEWAY, SIGNALING]) {
      for (const method of METHOD_LABELS) {
        for (const direction of DIRECTIONS)
          channels.messageForwarded.publish(forwardedEvent({ route, methodLabel: method, direction }));
        for (let c = 1; c <= 6; c++)
          channels.messageForwarded.publish(
            forwardedEvent({ route, methodLabel: method, isRequest: false, status: c * 100 }),
          );
        const name = method === 'other' ? 'FOO' : method;
        for (const status of [100, 200, 300, 400, 500, 600])
          publishTx(transaction(name, { route, status, toTag: 'to', firstResponseIn: 1001 }));
        publishTx(transaction(name, { route, outcome: 'timeout', toTag: 'to' }));
        const re = transaction(name, { route, toTag: 'to' });
        re.retransmissions = 1;
        channels.transactionRetransmission.publish(re);
      }
      for (const status of [200, 486]) publishTx(transaction('INVITE', { route, status }));
      publishTx(transaction('BYE', { route, status: 200, toTag: 'to' }));
      for (const status of [200, 403]) publishTx(transaction('REGISTER', { route, status }));
      channels.callEnd.publish(call({ route, answeredAt: 1000, byeAt: 2000, completed: true }));
      for (const reason of REASONS) {
        channels.messageRejected.publish(rejected({ route, reason }));
        for (const code of GENERATED_CODES)
          channels.messageRejected.publish(
            rejected({ route, reason, status: code === 'other' ? 999 : Number(code) }),
          );
      }
      for (const limit of LIMITS) channels.limitHit.publish({ route, limit });
      for (const kind of UPSTREAM_ERROR_KINDS)
        channels.limitHit.publish({ route, limit: `upstream_${kind}` });
    }
    const count = async () => {
      let n = 0;
      for (const port of [gatewayPort, signalingPort]) {
        n += seriesCount((await scrape(port)).text);
        n += seriesCount((await scrape(port, OPENMETRICS_ACCEPT)).text);
      }
      return n;
    };
    const seen = await count();

    const junk = () =>
      Math.random()
        .toString(36)
        .slice(2, 2 + Math.floor(Math.random() * 9));
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)];
    const statuses = () =>
      pick([
        100, 180, 183, 200, 202, 302, 401, 404, 407, 481, 486, 487, 500, 503, 603, 699, 0, 99, 700,
        4294967301,
      ]);
    for (let i = 0; i < 10_000; i++) {
      const route = pick([GATEWAY, SIGNALING, DARK]);
      const token = Math.random() < 0.5 ? pick(METHOD_LABELS) : `${junk().toUpperCase()}-${i}`;
      switch (i % 6) {
        case 0:
          channels.messageForwarded.publish(
            forwardedEvent({ route, methodLabel: methodLabel(token), direction: pick(DIRECTIONS) }),
          );
          break;
        case 1:
          channels.messageForwarded.publish(
            forwardedEvent({
              route,
              methodLabel: token as MethodLabel,
              isRequest: false,
              status: statuses(),
            }),
          );
          break;
        case 2: {
          const s = statuses();
          if (s >= 100 && s <= 699)
            publishTx(
              transaction(token, { route, status: s, callId: junk(), marks: [{ status: s, at: 1001 }] }),
            );
          else publishTx(transaction(token, { route, outcome: 'timeout', callId: junk() }));
          break;
        }
        case 3:
          channels.messageRejected.publish(
            rejected({
              route,
              reason: Math.random() < 0.5 ? pick(REASONS) : `closed-${junk()}`,
              status: pick([0, statuses()]),
            }),
          );
          break;
        case 4:
          channels.limitHit.publish({
            route,
            limit: Math.random() < 0.5 ? pick(LIMITS) : `upstream_${junk()}`,
          });
          break;
        default:
          channels.callOutcome.publish(
            call({ route, outcome: pick(CALL_OUTCOMES), finalStatus: statuses() }),
          );
      }
    }
    assert.equal(await count(), seen, 'random input added series');

    const closed: Record<string, readonly string[]> = {
      method: METHOD_LABELS,
      direction: DIRECTIONS,
      status_class: STATUS_CLASSES,
      outcome: CALL_OUTCOMES,
      final: FINALS,
      result: RESULTS,
      stitch: B2BUA_STITCH,
      reason: REASONS,
      code: GENERATED_CODES,
      limit: LIMITS,
      kind: [...UPSTREAM_ERROR_KINDS, ...PROXY_KINDS],
      service: [GATEWAY.name, SIGNALING.name],
      node: ['unit-node'],
    };
    for (const port of [gatewayPort, signalingPort]) {
      const { text } = await scrape(port, OPENMETRICS_ACCEPT);
      checkOpenMetrics(text);
      for (const s of parseExposition(text))
        for (const [k, v] of Object.entries(s.labels))
          if (k !== 'le')
            assert.ok(closed[k]?.includes(v), `${s.name}: ${k}="${v}" is outside its closed set`);
    }
  });

  test('shutdown leaves the channels', async () => {
    await sink.shutdown();
    for (const [name, ch] of Object.entries(channels))
      assert.equal(ch.hasSubscribers, false, `${name} still has a subscriber`);
  });
});
