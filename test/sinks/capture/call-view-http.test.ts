/**
 * The call view's HTTP API on the admin listener, against the two-route chain:
 * the list and its filters, one call with its ladder columns and sipspan's
 * edits, lookup by Call-ID, server-sent events, the health counters, the
 * static page with its content types and ETags, and the OTLP relay.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { HttpListener } from '../../../src/admin/http-listener.ts';
import type { CapturedEvent } from '../../../src/observe/records.ts';
import type { CallDetail } from '../../../src/sinks/capture/call-detail.ts';
import type { CallSummary } from '../../../src/sinks/capture/call-summary.ts';
import { CallViewHttp } from '../../../src/sinks/capture/call-view-http.ts';
import { DEFAULT_UI_DIR } from '../../../src/sinks/capture/capture-sink.ts';
import { HealthCounters } from '../../../src/sinks/capture/health-counters.ts';
import { MessageStore } from '../../../src/sinks/capture/message-store.ts';
import { type Chain, startChain } from './capture-rig.ts';

interface ListBody {
  calls: CallSummary[];
  matched: number;
  total: number;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `${url}: ${res.status}`);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return (await res.json()) as T;
}

/** Reads server-sent events from a fetch body until `until` says stop or the time is up. */
async function readEvents(
  url: string,
  until: (events: { event: string; data: string }[]) => boolean,
  timeoutMs: number,
  onOpen: () => void | Promise<void> = () => {},
): Promise<{ event: string; data: string }[]> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const res = await fetch(url, { signal: ctrl.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const events: { event: string; data: string }[] = [];
  const decoder = new TextDecoder();
  let text = '';
  let opened = false;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      let i = text.indexOf('\n\n');
      while (i !== -1) {
        const block = text.slice(0, i);
        text = text.slice(i + 2);
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data !== '') events.push({ event, data });
        i = text.indexOf('\n\n');
      }
      if (!opened && events.some((e) => e.event === 'hello')) {
        opened = true;
        await onOpen();
      }
      if (until(events)) break;
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
  return events;
}

function rawInvite(port: number, target: number, callId: string, user: string, maxForwards: number): Buffer {
  return Buffer.from(
    [
      `INVITE sip:bob@127.0.0.1:${target} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-${randomBytes(6).toString('hex')};rport`,
      `Max-Forwards: ${maxForwards}`,
      `From: <sip:${user}@127.0.0.1:${port}>;tag=${randomBytes(4).toString('hex')}`,
      'To: <sip:bob@127.0.0.1>',
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:${user}@127.0.0.1:${port}>`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

describe('call view API on the two-route chain', () => {
  let chain: Chain;
  let raw: Socket;
  let answeredIds: string[] = [];
  before(async () => {
    chain = await startChain();
    answeredIds = (await chain.place(5, 30, 100)).map((c) => c.callId);
    raw = createSocket('udp4');
    await new Promise<void>((r) => raw.bind(0, '127.0.0.1', () => r()));
    const port = raw.address().port;
    // Max-Forwards 1: sipspan forwards it with 0 and the gateway answers 483 (a failed call that never reaches signaling).
    raw.send(
      rawInvite(port, chain.gatewayRoutePort, 'blocked-1@test', 'blocked', 1),
      chain.gatewayRoutePort,
      '127.0.0.1',
    );
    // The same datagram twice: a retransmission at each hop.
    const again = rawInvite(port, chain.gatewayRoutePort, 'again-1@test', 'again', 70);
    raw.send(again, chain.gatewayRoutePort, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    raw.send(again, chain.gatewayRoutePort, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
  });
  after(async () => {
    raw?.close();
    await chain?.stop();
  });

  test('the list: every call newest first, with users, outcome, setup per hop and ids', async () => {
    const body = await getJson<ListBody>(`${chain.adminUrl}/api/capture/calls`);
    assert.equal(body.total, 7);
    assert.equal(body.calls.length, 7);
    const starts = body.calls.map((c) => c.start_ms);
    assert.deepEqual(
      starts,
      [...starts].sort((a, b) => b - a),
    );
    for (const id of answeredIds) {
      const c = body.calls.find((x) => x.call_ids.includes(id));
      assert.ok(c !== undefined);
      assert.equal(c.outcome, 'answered');
      assert.equal(c.status, 200);
      assert.match(c.from_user ?? '', /^caller\d+$/);
      assert.equal(c.to_user, 'service');
      assert.match(c.trace_id, /^[0-9a-f]{32}$/);
      assert.deepEqual(
        c.hops.map((x) => x.name),
        ['sip-gateway', 'sip-signaling'],
      );
      // The first hop's setup covers the second's, which covers its upstream's.
      assert.ok(c.setup_ms !== null && c.hops[1].setup_ms !== null && c.hops[1].client_ms !== null);
      assert.ok(c.setup_ms >= c.hops[1].setup_ms && c.hops[1].setup_ms >= c.hops[1].client_ms);
      assert.ok((c.hops[0].rtt_ms ?? -1) >= 0);
      assert.equal(c.messages, 28);
    }
    const blocked = body.calls.find((x) => x.call_ids.includes('blocked-1@test'))!;
    assert.equal(blocked.outcome, 'failed_4xx');
    assert.equal(blocked.status, 483);
    assert.deepEqual(
      blocked.hops.map((x) => x.name),
      ['sip-gateway'],
    );
    const again = body.calls.find((x) => x.call_ids.includes('again-1@test'))!;
    assert.ok(again.retransmissions >= 4, `retransmissions ${again.retransmissions}`);
  });

  test('filters: service, outcome, minimum setup time, search by user, Call-ID and trace id', async () => {
    const list = async (q: string) =>
      (await getJson<ListBody>(`${chain.adminUrl}/api/capture/calls?${q}`)).calls;
    assert.equal((await list('service=sip-signaling')).length, 6);
    assert.equal((await list('service=sip-gateway')).length, 7);
    assert.deepEqual(
      (await list('outcome=failed_4xx')).map((c) => c.call_ids[0]),
      ['blocked-1@test'],
    );
    assert.equal((await list('outcome=failed')).length, 1);
    assert.equal((await list('outcome=answered')).length, 6);
    assert.equal((await list('min_setup_ms=600000')).length, 0);
    const all = await list('');
    const slowest = Math.max(...all.map((c) => c.setup_ms ?? 0));
    assert.ok((await list(`min_setup_ms=${slowest}`)).every((c) => (c.setup_ms ?? 0) >= slowest));
    assert.equal((await list('q=BLOCKED')).length, 1);
    assert.deepEqual(
      (await list(`q=${encodeURIComponent(answeredIds[0].slice(0, 10))}`)).map((c) => c.call_ids[0]),
      [answeredIds[0]],
    );
    const one = all[3];
    assert.deepEqual(
      (await list(`q=${one.trace_id.slice(0, 16)}`)).map((c) => c.trace_id),
      [one.trace_id],
    );
    assert.equal((await list('limit=2')).length, 2);
  });

  test('a filter that cannot be right is a 400 saying what is expected, never ignored', async () => {
    const bad = async (q: string) => {
      const r = await fetch(`${chain.adminUrl}/api/capture/calls?${q}`);
      return [r.status, ((await r.json()) as { error: string }).error];
    };
    assert.deepEqual(await bad('limit=abc'), [
      400,
      'limit: expected a whole number from 1 to 5000, got "abc"',
    ]);
    for (const q of ['limit=0', 'limit=-5', 'limit=2.5', 'limit=5001', 'min_setup_ms=abc', 'min_setup_ms=-1'])
      assert.equal((await bad(q))[0], 400, q);
    assert.deepEqual(await bad('outcome=bogus'), [
      400,
      'outcome: expected one of answered, redirected, failed, failed_4xx, failed_5xx, failed_6xx, cancelled, timeout, in_progress, got "bogus"',
    ]);
    assert.deepEqual(await bad('service=bogus'), [
      400,
      'service: expected a route name (sip-gateway, sip-signaling), got "bogus"',
    ]);
  });

  test('a trace id is found whatever the case of its hex digits', async () => {
    const call = chain.capture.store.findByCallId(answeredIds[0])!;
    const upper = call.traceId.toUpperCase();
    const d = await getJson<CallDetail>(`${chain.adminUrl}/api/capture/calls/${upper}`);
    assert.equal(d.summary.trace_id, call.traceId);
    assert.equal((await fetch(`${chain.adminUrl}/api/capture/calls/${upper}/pcap`)).status, 200);
  });

  test('one call: ladder columns from addresses, one entry per stored message, sipspan edits marked', async () => {
    const call = chain.capture.store.findByCallId(answeredIds[0])!;
    const d = await getJson<CallDetail>(`${chain.adminUrl}/api/capture/calls/${call.traceId}`);
    assert.deepEqual(
      d.columns.map((c) => [c.id, c.kind, c.label, c.callee]),
      [
        ['caller', 'caller', 'caller', false],
        ['sipspan:0', 'sipspan', 'sipspan sip-gateway', false],
        ['service:0', 'service', 'sip-gateway', false],
        ['sipspan:1', 'sipspan', 'sipspan sip-signaling', false],
        ['service:1', 'service', 'sip-signaling', true],
      ],
    );
    assert.equal(d.messages.length, call.messages.length);
    for (const m of d.messages) {
      if (m.direction === 'in') assert.equal(m.to, `sipspan:${m.hop}`);
      else assert.equal(m.from, `sipspan:${m.hop}`);
      assert.ok(m.offset_ms >= 0);
    }
    // The path of the INVITE: caller → gw → gateway service → sig → signaling service.
    const invites = d.messages
      .filter((m) => m.is_request && m.method === 'INVITE')
      .map((m) => `${m.from}>${m.to}`);
    assert.deepEqual(invites, [
      'caller>sipspan:0',
      'sipspan:0>service:0',
      'service:0>sipspan:1',
      'sipspan:1>service:1',
    ]);
    const fwd = d.messages.find((m) => m.direction === 'out' && m.method === 'INVITE' && m.hop === 0)!;
    const added = fwd.edits.filter((e) => e.kind === 'added').map((e) => fwd.raw.slice(e.start, e.end));
    assert.ok(added.some((t) => t.startsWith('traceparent: 00-') && t.includes(call.traceId)));
    assert.ok(added.includes(`X-Trace-Id: ${call.traceId}`));
    assert.ok(added.some((t) => t.startsWith('Via: SIP/2.0/UDP ')));
    // Byte ranges agree with the text (ASCII here).
    for (const e of fwd.edits) assert.deepEqual([e.byte_start, e.byte_end], [e.start, e.end]);
    assert.equal(fwd.pair, d.messages.find((m) => m.seq === fwd.pair)!.seq);
    // A response coming back into hop 0 loses sipspan's own Via.
    const ringingIn = d.messages.find((m) => m.direction === 'in' && m.status === 180 && m.hop === 0)!;
    const removed = ringingIn.edits.map((e) => ringingIn.raw.slice(e.start, e.end));
    assert.equal(removed.length, 1);
    assert.match(removed[0], /^Via: SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK-/);
    // By Call-ID too; unknown ids are 404.
    const byCallId = await getJson<CallDetail>(
      `${chain.adminUrl}/api/capture/calls/${encodeURIComponent(answeredIds[0])}`,
    );
    assert.equal(byCallId.summary.trace_id, call.traceId);
    assert.equal((await fetch(`${chain.adminUrl}/api/capture/calls/${'0'.repeat(32)}`)).status, 404);
    assert.equal((await fetch(`${chain.adminUrl}/api/capture/calls/${call.traceId}/nope`)).status, 404);
  });

  test('retransmissions are marked at every hop', async () => {
    const call = chain.capture.store.findByCallId('again-1@test')!;
    const d = await getJson<CallDetail>(`${chain.adminUrl}/api/capture/calls/${call.traceId}`);
    const retx = d.messages.filter((m) => m.retransmission && m.method === 'INVITE' && m.is_request);
    assert.deepEqual(
      retx.map((m) => `${m.hop}${m.direction}`),
      ['0in', '0out', '1in', '1out'],
    );
  });

  test('server-sent events announce new calls', async () => {
    let placed: string[] = [];
    const events = await readEvents(
      `${chain.adminUrl}/api/capture/events`,
      (evs) =>
        placed.length > 0 &&
        evs.some(
          (e) => e.event === 'call' && (JSON.parse(e.data) as CallSummary).call_ids.includes(placed[0]),
        ),
      10_000,
      async () => {
        placed = (await chain.place(1, 30, 50)).map((c) => c.callId);
      },
    );
    assert.equal(events[0].event, 'hello');
    const mine = events
      .filter((e) => e.event === 'call')
      .map((e) => JSON.parse(e.data) as CallSummary)
      .filter((s) => s.call_ids.includes(placed[0]));
    assert.ok(mine.length > 0, 'the new call was announced');
  });

  test('health: calls, outcomes and RTT per hop in the current minute', async () => {
    const hr = await getJson<{
      minutes: number[];
      hops: {
        name: string;
        calls: number[];
        outcomes: Record<string, number[]>;
        rtt_avg_ms: (number | null)[];
      }[];
      store: { calls: number };
    }>(`${chain.adminUrl}/api/capture/health`);
    assert.equal(hr.minutes.length, 15);
    const gw = hr.hops.find((x) => x.name === 'sip-gateway')!;
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    assert.ok(sum(gw.calls) >= 7);
    assert.ok(sum(gw.outcomes.answered) >= 6);
    assert.equal(sum(gw.outcomes.failed_4xx), 1);
    assert.ok(gw.rtt_avg_ms.some((v) => v !== null && v > 0));
    assert.ok(hr.store.calls >= 7);
  });

  test('static page: HTML for / and /calls/<id>, assets with their types, ETag revalidation', async () => {
    for (const path of ['/', `/calls/${'a'.repeat(32)}`]) {
      const res = await fetch(`${chain.adminUrl}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.match(await res.text(), /<script type="module" src="\/ui\/app\.js">/);
    }
    const types: Record<string, string> = {
      '/ui/app.js': 'text/javascript; charset=utf-8',
      '/ui/style.css': 'text/css; charset=utf-8',
      '/ui/favicon.svg': 'image/svg+xml',
    };
    for (const [path, type] of Object.entries(types)) {
      const res = await fetch(`${chain.adminUrl}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), type);
      const etag = res.headers.get('etag');
      assert.ok(etag !== null);
      await res.arrayBuffer();
      const again = await fetch(`${chain.adminUrl}${path}`, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
    }
    assert.equal((await fetch(`${chain.adminUrl}/ui/../app.ts`)).status, 404);
    assert.equal((await fetch(`${chain.adminUrl}/ui/nope.js`)).status, 404);
  });

  test('OTLP: relayed from the span store when there is one, 404 otherwise', async () => {
    const call = chain.capture.store.findByCallId(answeredIds[0])!;
    const res = await fetch(`${chain.adminUrl}/api/capture/calls/${call.traceId}/otlp`);
    if (chain.hasTracing) {
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json');
      const body = (await res.json()) as { resourceSpans?: unknown[] };
      assert.ok(Array.isArray(body.resourceSpans) && body.resourceSpans.length > 0);
    } else {
      assert.equal(res.status, 404);
    }
  });
});

describe('call view events without a proxy', () => {
  let admin: HttpListener;
  let store: MessageStore;
  let http: CallViewHttp;
  before(async () => {
    admin = new HttpListener('127.0.0.1', 0);
    store = new MessageStore({ maxCalls: 2 });
    http = new CallViewHttp({
      store,
      health: new HealthCounters(['a']),
      node: 'unit',
      topology: () => [],
      adminBase: () => `http://127.0.0.1:${admin.port}`,
      uiDir: DEFAULT_UI_DIR,
    });
    http.register(admin);
    await admin.listen();
  });
  after(async () => {
    http.close();
    await admin.close();
  });

  test('changes are collected only while a stream is open; evicted calls are announced', async () => {
    assert.equal(store.onChange, null, 'nothing collected before anyone listens');
    const traces = [0, 1, 2].map(() => randomBytes(16).toString('hex'));
    const add = (traceId: string, i: number) => {
      const e: CapturedEvent = {
        route: { index: 0, name: 'a' },
        callId: `c${i}`,
        traceId,
        direction: 'in',
        transport: 'udp',
        source: '127.0.0.1:1',
        destination: '127.0.0.1:2',
        at: performance.now(),
        bytes: Buffer.from(
          `OPTIONS sip:x@y SIP/2.0\r\nCall-ID: c${i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
        ),
      };
      store.add(e);
    };
    const events = await readEvents(
      `http://127.0.0.1:${admin.port}/api/capture/events`,
      (evs) => evs.some((e) => e.event === 'evict'),
      5000,
      () => traces.forEach(add),
    );
    const calls = events
      .filter((e) => e.event === 'call')
      .map((e) => (JSON.parse(e.data) as CallSummary).trace_id);
    assert.deepEqual(calls.sort(), traces.slice(1).sort(), 'the live calls, not the evicted one');
    assert.deepEqual(
      events.filter((e) => e.event === 'evict').map((e) => JSON.parse(e.data).trace_id),
      [traces[0]],
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(store.onChange, null, 'the last stream closed: collection stops');
  });
});

describe('call view without its page files', () => {
  test('the API still answers; the page says what is missing', async () => {
    const admin = new HttpListener('127.0.0.1', 0);
    const http = new CallViewHttp({
      store: new MessageStore(),
      health: new HealthCounters(['a']),
      node: 'unit',
      topology: () => [],
      adminBase: () => '',
      uiDir: '/nonexistent/admin/ui',
    });
    http.register(admin);
    await admin.listen();
    try {
      const page = await fetch(`http://127.0.0.1:${admin.port}/`);
      assert.equal(page.status, 503);
      assert.match(
        ((await page.json()) as { error: string }).error,
        /no index\.html in \/nonexistent\/admin\/ui/,
      );
      const list = await getJson<ListBody>(`http://127.0.0.1:${admin.port}/api/capture/calls`);
      assert.deepEqual(list.calls, []);
    } finally {
      http.close();
      await admin.close();
    }
  });
});
