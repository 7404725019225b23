/**
 * Byte-level transparency: a whole call (INVITE, 100/180/200, ACK, BYE, 200)
 * from a raw UAC through sipspan to a raw UAS, compared byte for byte.
 *
 *   raw UAC ──▶ sipspan ──▶ raw UAS (answers 100/180/200, copies Via/From/To/Call-ID/CSeq and Record-Route)
 *
 * Every request the UAS gets must equal what the UAC sent except sipspan's own
 * changes (its Via, Record-Route, Max-Forwards, received/rport, trace headers;
 * and the Route entry naming sipspan, which is its own Record-Route coming back
 * and which RFC 3261 §16.4 has it pop). Every response the UAC gets must equal
 * what the UAS sent with sipspan's Via removed, and nothing else changed.
 * Over UDP and TCP on 127.0.0.1, and UDP on ::1. Then the trace headers: one
 * traceparent and one X-Trace-Id leave whatever came in, and a route that does
 * not trust inbound trace headers lets none of their values through.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { Sipspan } from '../../src/app.ts';
import { buildConfig } from '../../src/config/load-config.ts';
import { channels } from '../../src/observe/channels.ts';
import type { TransactionRecord } from '../../src/observe/records.ts';
import { parseTraceparent } from '../../src/wire/read-trace-context.ts';
import {
  type Arrival,
  describeDiff,
  fieldValue,
  headerValues,
  parseHead,
  RawReceiver,
  RawTcpClient,
  RawUas,
  RawUdpClient,
  removeFields,
  statusOf,
  stripProxyChanges,
  waitUntil,
  withoutOwnVia,
} from '../support/raw-peers.ts';
import { freePort } from '../support/sipp.ts';

const WAIT_MS = 3000;

interface Rig {
  host: string;
  transport: 'udp' | 'tcp';
  app: Sipspan;
  port: number;
  uas: RawUas;
  stop(): Promise<void>;
}

async function startRig(
  host: string,
  transport: 'udp' | 'tcp',
  trust = true,
  upstreamTransport: 'udp' | 'tcp' = transport,
): Promise<Rig> {
  const bracket = host.includes(':') ? `[${host}]` : host;
  const receiver = await RawReceiver.start(host);
  const uas = new RawUas(receiver);
  const port = await freePort(host);
  const app = await Sipspan.start(
    buildConfig(
      {
        node: 'test',
        admin: '127.0.0.1:0',
        routes: [
          {
            name: 'transparency',
            listen: [`udp://${bracket}:${port}`, `tcp://${bracket}:${port}`],
            upstream: `${upstreamTransport}://${bracket}:${receiver.port}`,
            trust_trace_headers: trust,
          },
        ],
      },
      {},
      {},
    ),
  );
  return {
    host,
    transport,
    app,
    port,
    uas,
    async stop() {
      await app.stop(200);
      await receiver.close();
    },
  };
}

/** The calling side: raw bytes out, raw messages in, over one UDP socket or one TCP connection. */
class Uac {
  readonly sent: Buffer[] = [];
  readonly received: Buffer[];
  readonly localPort: number;
  private readonly rig: Rig;
  private readonly udp: RawUdpClient | null;
  private readonly tcp: RawTcpClient | null;

  private constructor(rig: Rig, udp: RawUdpClient | null, tcp: RawTcpClient | null) {
    this.rig = rig;
    this.udp = udp;
    this.tcp = tcp;
    this.received = udp !== null ? udp.received : tcp!.received;
    this.localPort = udp !== null ? udp.port : tcp!.localPort;
  }

  static async open(rig: Rig): Promise<Uac> {
    if (rig.transport === 'udp') return new Uac(rig, await RawUdpClient.open(rig.host), null);
    return new Uac(rig, null, await RawTcpClient.connect(rig.host, rig.port));
  }

  async send(bytes: Buffer): Promise<void> {
    this.sent.push(bytes);
    if (this.udp !== null) await this.udp.send(bytes, this.rig.port, this.rig.host);
    else this.tcp!.write(bytes);
  }

  async close(): Promise<void> {
    if (this.udp !== null) await this.udp.close();
    else this.tcp!.close();
  }
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

const SDP =
  'v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n' +
  'm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

interface CallIds {
  callId: string;
  fromTag: string;
  via: string;
  contact: string;
}

function ids(rig: Rig, uac: Uac): CallIds {
  const host = rig.host.includes(':') ? `[${rig.host}]` : rig.host;
  return {
    callId: `${hex(8)}@${host}`,
    fromTag: hex(4),
    via: `SIP/2.0/${rig.transport.toUpperCase()} ${host}:${uac.localPort}`,
    contact: `<sip:alice@${host}:${uac.localPort}${rig.transport === 'tcp' ? ';transport=tcp' : ''}>`,
  };
}

/**
 * A realistic INVITE with what a careless parser would change: a compact and
 * folded Via, compact forms, odd casing, a folded Subject, an unknown header
 * with odd separators, and a body. `extra` lines go before the body.
 */
function invite(c: CallIds, extra = ''): Buffer {
  return Buffer.from(
    'INVITE sip:bob@biloxi.example.com SIP/2.0\r\n' +
      `v: ${c.via}\r\n ;branch=z9hG4bK${hex(6)};rport\r\n` +
      'MAX-FORWARDS: 70\r\n' +
      `f: "Alice, A." <sip:alice@atlanta.example.com>;tag=${c.fromTag}\r\n` +
      't:   Bob <sip:bob@biloxi.example.com>\r\n' +
      `i: ${c.callId}\r\n` +
      'cSeq: 1 INVITE\r\n' +
      `m: ${c.contact}\r\n` +
      'Subject: a subject that is\r\n\tfolded onto a second line\r\n' +
      'X-Unknown-Header:  ;;,, odd ;value ,,\r\n' +
      'Allow: INVITE, ACK, BYE, CANCEL\r\n' +
      extra +
      'c: application/sdp\r\n' +
      `l: ${SDP.length}\r\n\r\n${SDP}`,
    'latin1',
  );
}

/** An in-dialog request along the route set (RFC 3261 §12.2.1.1): Request-URI = remote target, Route = the RR set. */
function inDialog(
  c: CallIds,
  method: 'ACK' | 'BYE',
  cseq: number,
  ok: Buffer,
  maxForwards: string | null,
  extra = '',
): Buffer {
  const target = headerValues(ok, 'contact')[0].replace(/^<|>$/g, '');
  const to = headerValues(ok, 'to')[0];
  const routes = headerValues(ok, 'record-route')
    .reverse()
    .map((r) => `Route: ${r}\r\n`)
    .join('');
  return Buffer.from(
    `${method} ${target} SIP/2.0\r\n` +
      `Via: ${c.via};branch=z9hG4bK${hex(6)};rport\r\n` +
      routes +
      (maxForwards === null ? '' : `${maxForwards}\r\n`) +
      `From: "Alice, A." <sip:alice@atlanta.example.com>;tag=${c.fromTag}\r\n` +
      `To: ${to}\r\n` +
      `Call-ID: ${c.callId}\r\n` +
      `CSeq: ${cseq} ${method}\r\n` +
      extra +
      'Content-Length: 0\r\n\r\n',
    'latin1',
  );
}

interface Dialog {
  uac: Uac;
  /** The requests the UAS got, in order: INVITE, ACK, BYE. */
  atUas: Arrival[];
}

/** INVITE → 100/180/200 → ACK → BYE → 200, each step awaited (bounded). */
async function runDialog(
  rig: Rig,
  opts: { inviteExtra?: string; ackExtra?: string; byeExtra?: string } = {},
): Promise<Dialog> {
  const uac = await Uac.open(rig);
  const arrivals = rig.uas.receiver.arrivals;
  try {
    const c = ids(rig, uac);
    await uac.send(invite(c, opts.inviteExtra));
    assert.ok(
      await waitUntil(() => uac.received.some((r) => statusOf(r) === 200), WAIT_MS),
      `no 200 for the INVITE; UAC got ${uac.received.map(statusOf).join(',')}, UAS got ${arrivals.length}`,
    );
    const ok = uac.received.find((r) => statusOf(r) === 200)!;
    await uac.send(inDialog(c, 'ACK', 1, ok, 'max-forwards: 70', opts.ackExtra));
    assert.ok(await waitUntil(() => arrivals.length >= 2, WAIT_MS), 'the ACK did not reach the UAS');
    // No Max-Forwards at all: sipspan adds one (RFC 3261 §16.6 step 3).
    await uac.send(inDialog(c, 'BYE', 2, ok, null, `X-Unknown-Header: in the BYE\r\n${opts.byeExtra ?? ''}`));
    assert.ok(
      await waitUntil(() => uac.received.length >= 4, WAIT_MS),
      `no 200 for the BYE; UAC got ${uac.received.map(statusOf).join(',')}`,
    );
    return { uac, atUas: arrivals.slice() };
  } catch (err) {
    await uac.close();
    throw err;
  }
}

const TRACE_FIELDS = new Set(['traceparent', 'tracestate', 'x-trace-id', 'x-traceparent']);

/** What the UAS should get, before sipspan's own changes: the request less its trace lines and the Route naming sipspan. */
function expectedAtUas(sent: Buffer, ownRecordRoutes: readonly string[]): Buffer {
  return removeFields(
    sent,
    (f) => TRACE_FIELDS.has(f.name) || (f.name === 'route' && ownRecordRoutes.includes(fieldValue(sent, f))),
  );
}

/**
 * `recordRoutes`: sipspan's Record-Route values the INVITE must carry, top first, when the test
 * knows them exactly; by default one entry of sipspan's (the transport stays the same).
 */
function checkDialog(rig: Rig, d: Dialog, recordRoutes?: string[]): void {
  const proxy = { host: rig.host, port: rig.port };
  const { uac, atUas } = d;
  assert.equal(uac.sent.length, 3);
  assert.equal(atUas.length, 3, `the UAS got ${atUas.length} requests, want INVITE, ACK, BYE`);
  let ownRecordRoutes: string[] = [];
  const methods = ['INVITE', 'ACK', 'BYE'];
  for (let i = 0; i < 3; i++) {
    const got = atUas[i].bytes;
    const want = expectedAtUas(uac.sent[i], ownRecordRoutes);
    const s = stripProxyChanges(got, want, {
      proxy,
      source: { address: rig.host, port: uac.localPort },
      mayAddContentLength: false,
    });
    const label = `${methods[i]} at the UAS`;
    assert.ok(got.toString('latin1').startsWith(`${methods[i]} `), label);
    assert.deepEqual(s.problems, [], label);
    assert.equal(s.ownVias, 1, `${label}: one Via of sipspan's`);
    assert.ok(s.ownViaOnTop, `${label}: sipspan's Via on top`);
    assert.equal(s.traceparents.length, 1, `${label}: exactly one traceparent`);
    assert.equal(s.traceIds.length, 1, `${label}: exactly one X-Trace-Id`);
    assert.ok(
      parseTraceparent(s.traceparents[0]) !== null,
      `${label}: a valid traceparent ${s.traceparents[0]}`,
    );
    assert.equal(
      s.traceIds[0],
      s.traceparents[0].slice(3, 35),
      `${label}: X-Trace-Id is the traceparent's trace-id`,
    );
    if (i === 0 && recordRoutes !== undefined)
      assert.deepEqual(s.recordRoutes, recordRoutes, `${label}: Record-Route`);
    else
      assert.equal(
        s.recordRoutes.length,
        i === 0 ? 1 : 0,
        `${label}: Record-Route only on the dialog-creating INVITE`,
      );
    assert.ok(s.restored.equals(want), `${label}: ${describeDiff(s.restored, want)}`);
    if (i === 0) ownRecordRoutes = s.recordRoutes;
  }
  // Responses: 100, 180, 200 to the INVITE and 200 to the BYE, each equal to what the UAS sent less sipspan's Via.
  const sent = rig.uas.sent;
  assert.equal(sent.length, 4, 'the UAS sent 100, 180, 200, 200');
  assert.equal(uac.received.length, 4, `the UAC got ${uac.received.map(statusOf).join(',')}`);
  for (let i = 0; i < 4; i++) {
    const want = withoutOwnVia(sent[i].bytes, proxy);
    assert.ok(
      want.length < sent[i].bytes.length,
      `response ${i}: its top Via (as the UAS sent it) is sipspan's`,
    );
    const got = uac.received[i];
    assert.ok(got.equals(want), `response ${i} (${statusOf(got)}): ${describeDiff(got, want)}`);
  }
  // The call's requests share one trace.
  assert.equal(
    new Set(atUas.map((a) => headerValues(a.bytes, 'x-trace-id')[0])).size,
    1,
    'one trace per call',
  );
}

for (const v of [
  { name: 'UDP on 127.0.0.1', host: '127.0.0.1', transport: 'udp' as const },
  { name: 'TCP on 127.0.0.1', host: '127.0.0.1', transport: 'tcp' as const },
  { name: 'UDP on ::1', host: '::1', transport: 'udp' as const },
]) {
  describe(`a whole call through sipspan, byte for byte: ${v.name}`, () => {
    test("every request reaches the UAS unchanged but for sipspan's own changes; every response comes back less sipspan's Via only; peers reported as host:port ([v6]:port)", async () => {
      const rig = await startRig(v.host, v.transport);
      let d: Dialog | null = null;
      // The addresses sipspan reports (log lines, spans) in the form RFC 3986 gives them: [v6]:port.
      const peers: string[] = [];
      const onEnd = (m: unknown) => {
        const tx = m as TransactionRecord;
        peers.push(tx.downstream, tx.upstream);
      };
      channels.transactionEnd.subscribe(onEnd);
      try {
        d = await runDialog(rig);
        checkDialog(rig, d);
        for (const a of d.atUas)
          assert.equal(a.transport, v.transport, 'to the upstream over its configured transport');
        // Ended transactions are reported in groups, at most MAX_WAIT_MS after the end.
        await waitUntil(() => peers.length >= 6, 1000);
        assert.ok(peers.length >= 6, `${peers.length} addresses reported`);
        const form = v.host === '::1' ? /^\[::1\]:\d+$/ : /^127\.0\.0\.1:\d+$/;
        for (const p of peers) assert.match(p, form);
      } finally {
        channels.transactionEnd.unsubscribe(onEnd);
        await d?.uac.close();
        await rig.stop();
      }
    });
  });
}

describe('a whole call through sipspan, byte for byte: TCP caller, UDP service', () => {
  test('RFC 5658 double Record-Route: the top entry faces the service (UDP), the next the caller (TCP)', async () => {
    const rig = await startRig('127.0.0.1', 'tcp', true, 'udp');
    let d: Dialog | null = null;
    try {
      d = await runDialog(rig);
      checkDialog(rig, d, [`<sip:127.0.0.1:${rig.port};lr>`, `<sip:127.0.0.1:${rig.port};transport=tcp;lr>`]);
      for (const a of d.atUas) assert.equal(a.transport, 'udp');
    } finally {
      await d?.uac.close();
      await rig.stop();
    }
  });
});

// ───────────────────────────── trace headers ─────────────────────────────

const T1 = `4bf92f3577b34da6a3ce929d0e0e${hex(2)}`;
const S1 = `00f067aa0ba9${hex(2)}`;
const T2 = hex(16);
const S2 = hex(8);
const T3 = hex(16);
const S3 = hex(8);

function traceLines(bytes: Buffer): {
  traceparent: string[];
  traceId: string[];
  xTraceparent: string[];
  tracestate: string[];
} {
  return {
    traceparent: headerValues(bytes, 'traceparent'),
    traceId: headerValues(bytes, 'x-trace-id'),
    xTraceparent: headerValues(bytes, 'x-traceparent'),
    tracestate: headerValues(bytes, 'tracestate'),
  };
}

describe('trace headers', () => {
  test('two traceparent lines and an X-Traceparent in: exactly one traceparent and one X-Trace-Id reach the UAS', async () => {
    const rig = await startRig('127.0.0.1', 'udp');
    let d: Dialog | null = null;
    try {
      d = await runDialog(rig, {
        inviteExtra:
          `traceparent: 00-${T1}-${S1}-01\r\n` +
          `traceparent: 00-${T2}-${S2}-01\r\n` +
          `X-Traceparent: 00-${T3}-${S3}-01\r\n`,
      });
      checkDialog(rig, d);
      for (const a of d.atUas) {
        const t = traceLines(a.bytes);
        assert.equal(t.traceparent.length, 1);
        assert.equal(t.traceId.length, 1);
        assert.deepEqual(t.xTraceparent, [], 'X-Traceparent is read, not passed on');
      }
    } finally {
      await d?.uac.close();
      await rig.stop();
    }
  });

  test('on a trusted route one inbound traceparent is continued: same trace-id, a new parent span', async () => {
    const rig = await startRig('127.0.0.1', 'udp', true);
    let d: Dialog | null = null;
    try {
      d = await runDialog(rig, { inviteExtra: `traceparent: 00-${T1}-${S1}-01\r\n` });
      checkDialog(rig, d);
      const t = traceLines(d.atUas[0].bytes);
      assert.equal(t.traceparent[0].slice(3, 35), T1, 'the trace goes on');
      assert.notEqual(t.traceparent[0].slice(36, 52), S1, "the parent is sipspan's span");
      assert.deepEqual(t.traceId, [T1]);
    } finally {
      await d?.uac.close();
      await rig.stop();
    }
  });

  test('with trust_trace_headers: false no inbound trace value appears in what the UAS gets', async () => {
    const rig = await startRig('127.0.0.1', 'udp', false);
    let d: Dialog | null = null;
    const state = `vendor${hex(3)}=opaque${hex(3)}`;
    const inbound = `traceparent: 00-${T1}-${S1}-01\r\ntracestate: ${state}\r\nX-Trace-Id: ${T1}\r\nX-Traceparent: 00-${T3}-${S3}-01\r\n`;
    try {
      d = await runDialog(rig, { inviteExtra: inbound, ackExtra: inbound, byeExtra: inbound });
      checkDialog(rig, d);
      for (const a of d.atUas) {
        const text = a.bytes.toString('latin1');
        for (const value of [T1, S1, T3, S3, state]) {
          assert.ok(!text.includes(value), `${JSON.stringify(value)} reached the UAS:\n${text}`);
        }
        const t = traceLines(a.bytes);
        assert.equal(t.traceparent.length, 1);
        assert.equal(t.traceId.length, 1);
      }
    } finally {
      await d?.uac.close();
      await rig.stop();
    }
  });
});

test('the parser of this file sees the folded and compact fields it sends', () => {
  // Guards the helpers the comparisons rely on.
  const c: CallIds = { callId: 'x@h', fromTag: 't', via: 'SIP/2.0/UDP 127.0.0.1:1', contact: '<sip:a@h>' };
  const b = invite(c);
  const head = parseHead(b);
  assert.deepEqual(
    head.fields.map((f) => f.name),
    [
      'via',
      'max-forwards',
      'from',
      'to',
      'call-id',
      'cseq',
      'contact',
      'subject',
      'x-unknown-header',
      'allow',
      'content-type',
      'content-length',
    ],
  );
  assert.equal(b.length - head.bodyStart, SDP.length);
});
