/**
 * The 62 torture-test messages (RFC 4475, RFC 5118) through a running sipspan,
 * over real UDP and TCP sockets on loopback: each one must get the outcome the
 * corpus README names (../shared/sip-corpus/README.md), checked on the wire.
 *
 *   raw client ──udp/tcp──▶ sipspan (one route, udp+tcp) ──▶ raw upstream (udp+tcp, same port)
 *
 * FWD: the upstream gets exactly one message (two for dblreq over a stream),
 * byte-equal to what was sent once sipspan's own changes are taken out.
 * 400/483/505/501/420: the client gets that answer and the upstream nothing.
 * DROP: nobody gets anything and a rejected event with status 0 is published.
 * CLOSE: sipspan closes the TCP connection.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Sipspan } from '../../src/app.ts';
import { buildConfig } from '../../src/config/load-config.ts';
import { channels } from '../../src/observe/channels.ts';
import type { RejectedEvent } from '../../src/observe/records.ts';
import { type CorpusFile, loadCorpus } from '../support/corpus.ts';
import {
  contentLengthOf,
  describeDiff,
  headerValues,
  parseHead,
  RawReceiver,
  RawTcpClient,
  RawUdpClient,
  StreamSplitter,
  statusOf,
  stripProxyChanges,
  waitUntil,
  withoutOwnVia,
} from '../support/raw-peers.ts';
import { freePort } from '../support/sipp.ts';

const HOST = '127.0.0.1';
/** How long to keep listening after the expected event, so an extra message would be seen. */
const SETTLE_MS = 60;
const WAIT_MS = 2000;
/** RFC 3261 §18.1.1: larger requests must not go on over UDP. */
const UDP_MTU_LIMIT = 1300;

type Outcome =
  /**
   * Forwarded byte-for-byte except sipspan's own changes. `thenClose`: the stream
   * goes on with bytes that cannot be framed, so the connection is closed after.
   */
  | { kind: 'fwd'; thenClose?: boolean }
  /** Answered statelessly with `status`, not forwarded. */
  | { kind: 'answer'; status: number }
  /** The README allows either: answered with `status`, or discarded. */
  | { kind: 'answer-or-drop'; status: number }
  /** Discarded and counted (rejected event with status 0). */
  | { kind: 'drop' }
  /** The TCP connection is closed (an answer before closing is allowed). */
  | { kind: 'close' };

const FWD: Outcome = { kind: 'fwd' };
const DROP: Outcome = { kind: 'drop' };
const CLOSE: Outcome = { kind: 'close' };
const answer = (status: number): Outcome => ({ kind: 'answer', status });
const both = (o: Outcome) => ({ udp: o, tcp: o });

/** Every corpus file, its outcome per transport; comments quote the README's "Proxy should" column. */
const EXPECTED: Readonly<Record<string, { udp: Outcome; tcp: Outcome }>> = {
  // ── RFC 4475 §3.1.1 valid messages ──
  /** FWD. Folded lines, compact forms, odd LWS and `;;,,` in an unknown header. Insert Via before the first Via line. */
  'rfc4475/wsinv': both(FWD),
  /** FWD. Unknown method token (NUL and high bytes). */
  'rfc4475/intmeth': both(FWD),
  /** FWD. Never unescape. */
  'rfc4475/esc01': both(FWD),
  /** FWD. Do not decode `%00`. */
  'rfc4475/escnull': both(FWD),
  /** FWD. `RE%47IST%45R` is an unknown method, not REGISTER. */
  'rfc4475/esc02': both(FWD),
  /** FWD */
  'rfc4475/lwsdisp': both(FWD),
  /** FWD. 3515 bytes: size limits must not reject it; over 1300 bytes the next hop is TCP (RFC 3261 §18.1.1). */
  'rfc4475/longreq': both(FWD),
  /**
   * FWD only the first 300 bytes (UDP: discard the trailing 450 octets). Over TCP the trailing octets are
   * the stream's next bytes: CRLF (ignored, RFC 3261 §7.5), an INVITE framed by its Content-Length 150 (its
   * SDP is 155 bytes), then `C` CRLF CRLF, which has no Content-Length: both messages FWD, then CLOSE.
   */
  'rfc4475/dblreq': { udp: FWD, tcp: { kind: 'fwd', thenClose: true } },
  /** FWD */
  'rfc4475/semiuri': both(FWD),
  /** FWD. Unknown transports in lower Vias. */
  'rfc4475/transports': both(FWD),
  /** FWD. Binary body, Content-Length counts bytes. */
  'rfc4475/mpart01': both(FWD),
  /** FWD (a response: only when its top Via is sipspan's; as archived it is not ours, so it is dropped). */
  'rfc4475/unreason': both(DROP),
  /** FWD (same: dropped as archived, forwarded with sipspan's Via on top, see below). */
  'rfc4475/noreason': both(DROP),
  // ── RFC 4475 §3.1.2 invalid messages ──
  /** 400. The Via is malformed and the proxy uses Via. */
  'rfc4475/badinv01': both(answer(400)),
  /** UDP: 400. TCP: wait for more data up to the read timeout, then CLOSE. */
  'rfc4475/clerr': { udp: answer(400), tcp: CLOSE },
  /** UDP: 400 or discard. TCP: CLOSE, the framing cannot be recovered. */
  'rfc4475/ncl': { udp: { kind: 'answer-or-drop', status: 400 }, tcp: CLOSE },
  /** 400. CSeq > 2^32-1 and Max-Forwards 300. */
  'rfc4475/scalar02': both(answer(400)),
  /** DROP */
  'rfc4475/scalarlg': both(DROP),
  /** FWD unchanged: the proxy does not use To. */
  'rfc4475/quotbal': both(FWD),
  /** 400. A byte-preserving proxy cannot forward it as is. */
  'rfc4475/ltgtruri': both(answer(400)),
  /** 400 */
  'rfc4475/lwsruri': both(answer(400)),
  /** 400 */
  'rfc4475/lwsstart': both(answer(400)),
  /** 400 */
  'rfc4475/trws': both(answer(400)),
  /** 400 */
  'rfc4475/escruri': both(answer(400)),
  /** FWD unchanged: Date is unused. */
  'rfc4475/baddate': both(FWD),
  /** FWD unchanged: Contact is unused. */
  'rfc4475/regbadct': both(FWD),
  /** FWD unchanged. */
  'rfc4475/badaspec': both(FWD),
  /** 400; no final CRLF, so a framing test: UDP 400, TCP timeout then CLOSE. */
  'rfc4475/baddn': { udp: answer(400), tcp: CLOSE },
  /** 505 */
  'rfc4475/badvers': both(answer(505)),
  /** 400 */
  'rfc4475/mismatch01': both(answer(400)),
  /** 501 */
  'rfc4475/mismatch02': both(answer(501)),
  /** DROP. Status 4294967301. */
  'rfc4475/bigcode': both(DROP),
  // ── RFC 4475 §3.2, §3.3, §3.4 ──
  /** FWD. RFC 2543 fallback matching. */
  'rfc4475/badbranch': both(FWD),
  /** 400. No Call-ID, From or To. */
  'rfc4475/insuf': both(answer(400)),
  /** FWD to the configured upstream. Never route on To. */
  'rfc4475/unkscm': both(FWD),
  /** FWD */
  'rfc4475/novelsc': both(FWD),
  /** FWD */
  'rfc4475/unksm2': both(FWD),
  /** 420 with `Unsupported:` listing the Proxy-Require values. */
  'rfc4475/bext01': both(answer(420)),
  /** FWD */
  'rfc4475/invut': both(FWD),
  /** FWD, Authorization unmodified. */
  'rfc4475/regaut01': both(FWD),
  /** 400. Call-ID, CSeq and Max-Forwards duplicated. */
  'rfc4475/multi01': both(answer(400)),
  /** UDP: 400. TCP: CLOSE. */
  'rfc4475/mcl01': { udp: answer(400), tcp: CLOSE },
  /** DROP. Never send to a broadcast or multicast address. */
  'rfc4475/bcast': both(DROP),
  /** 483 */
  'rfc4475/zeromf': both(answer(483)),
  /** FWD */
  'rfc4475/cparam01': both(FWD),
  /** FWD */
  'rfc4475/cparam02': both(FWD),
  /** FWD */
  'rfc4475/regescrt': both(FWD),
  /** FWD */
  'rfc4475/sdp01': both(FWD),
  /** FWD (no branch, From tag, Content-Length or Max-Forwards: add `Max-Forwards: 70`). Over TCP there is no Content-Length to frame it: CLOSE. */
  'rfc4475/inv2543': { udp: FWD, tcp: CLOSE },
  /** 400 or DROP: no SIP-Version in the request line. */
  'rfc4475/test': both({ kind: 'answer-or-drop', status: 400 }),
  // ── RFC 5118 (wire form: CRLF, header section closed, Content-Length recomputed) ──
  /** FWD */
  'rfc5118/ipv6-good': both(FWD),
  /** 400. R-URI `sip:2001:db8::10` has no brackets. */
  'rfc5118/ipv6-bad': both(answer(400)),
  /** FWD. Do not "fix" `[2001:db8::10:5070]`. */
  'rfc5118/port-ambiguous': both(FWD),
  /** FWD */
  'rfc5118/port-unambiguous': both(FWD),
  /** FWD */
  'rfc5118/via-received-param-with-delim': both(FWD),
  /** FWD */
  'rfc5118/via-received-param-no-delim': both(FWD),
  /** FWD */
  'rfc5118/ipv6-in-sdp': both(FWD),
  /** FWD. The Vias mix IPv6 and IPv4. */
  'rfc5118/mult-ip-in-header': both(FWD),
  /** FWD */
  'rfc5118/mult-ip-in-sdp': both(FWD),
  /** FWD */
  'rfc5118/ipv4-mapped-ipv6': both(FWD),
  /** FWD byte-for-byte. Do not rewrite `:::`. */
  'rfc5118/ipv6-bug-abnf-3-colons': both(FWD),
  /** FWD */
  'rfc5118/ipv6-correct-abnf-2-colons': both(FWD),
};

/** The messages a correct receiver frames out of these bytes: one per datagram (§18.3), or every one in a stream. */
function framedMessages(bytes: Buffer, transport: 'udp' | 'tcp'): Buffer[] {
  if (transport === 'tcp') return new StreamSplitter().push(bytes);
  const head = parseHead(bytes);
  const cl = contentLengthOf(bytes, head);
  return [typeof cl === 'number' && !Number.isNaN(cl) ? bytes.subarray(0, head.bodyStart + cl) : bytes];
}

function callIdOf(bytes: Buffer): string | null {
  return headerValues(bytes, 'call-id')[0] ?? null;
}

// ───────────────────────────── the rig ─────────────────────────────

interface Rig {
  app: Sipspan;
  port: number;
  upstream: RawReceiver;
  /** Where responses with sipspan's Via on top go next (their received/rport point here). */
  downstream: RawReceiver;
  events: RejectedEvent[];
}

let rig: Rig;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
const onRejected = (m: unknown) => rig.events.push({ ...(m as RejectedEvent) });

async function routePort(): Promise<number> {
  // Ports the corpus itself names (mpart01 Routes to 127.0.0.1:5080, its Via is 127.0.0.1:5070).
  for (;;) {
    const p = await freePort(HOST);
    if (p !== 5060 && p !== 5070 && p !== 5080) return p;
  }
}

before(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const upstream = await RawReceiver.start(HOST);
  const downstream = await RawReceiver.start(HOST);
  const port = await routePort();
  const app = await Sipspan.start(
    buildConfig(
      {
        node: 'test',
        admin: `${HOST}:0`,
        routes: [
          {
            name: 'corpus',
            listen: [`udp://${HOST}:${port}`, `tcp://${HOST}:${port}`],
            upstream: `udp://${HOST}:${upstream.port}`,
          },
        ],
        limits: { tcp_read_message_ms: 300 },
      },
      {},
      {},
    ),
  );
  rig = { app, port, upstream, downstream, events: [] };
  channels.messageRejected.subscribe(onRejected);
});

after(async () => {
  channels.messageRejected.unsubscribe(onRejected);
  await rig?.app.stop(200);
  await rig?.upstream.close();
  await rig?.downstream.close();
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});

/** What one message sent from a fresh client produced. */
interface Exchange {
  transport: 'udp' | 'tcp';
  clientPort: number;
  responses: Buffer[];
  tcp: RawTcpClient | null;
  close(): Promise<void>;
}

async function send(transport: 'udp' | 'tcp', bytes: Buffer): Promise<Exchange> {
  rig.upstream.clear();
  rig.downstream.clear();
  rig.events.length = 0;
  if (transport === 'udp') {
    const c = await RawUdpClient.open(HOST);
    await c.send(bytes, rig.port, HOST);
    return { transport, clientPort: c.port, responses: c.received, tcp: null, close: () => c.close() };
  }
  const c = await RawTcpClient.connect(HOST, rig.port);
  c.write(bytes);
  return {
    transport,
    clientPort: c.localPort,
    responses: c.received,
    tcp: c,
    close: async () => c.close(),
  };
}

function eventsText(): string {
  return JSON.stringify(rig.events.map((e) => ({ status: e.status, reason: e.reason })));
}

/** FWD: each framed message reaches the upstream once, equal to what was sent but for sipspan's own changes. */
async function expectForwarded(
  x: Exchange,
  expected: Buffer[],
  label: string,
  thenClose = false,
): Promise<void> {
  const up = rig.upstream.arrivals;
  await waitUntil(() => up.length >= expected.length, WAIT_MS);
  await sleep(SETTLE_MS);
  assert.equal(
    up.length,
    expected.length,
    `${label}: upstream got ${up.length} messages, want ${expected.length}; rejected: ${eventsText()}; client got ${x.responses.length} responses ${x.responses.map(statusOf).join(',')}`,
  );
  for (let i = 0; i < expected.length; i++) {
    const a = up[i];
    const s = stripProxyChanges(a.bytes, expected[i], {
      proxy: { host: HOST, port: rig.port },
      source: { address: HOST, port: x.clientPort },
      mayAddContentLength: a.transport === 'tcp',
    });
    assert.deepEqual(s.problems, [], `${label}: message ${i}`);
    assert.equal(s.ownVias, 1, `${label}: message ${i}: sipspan's Via lines`);
    assert.ok(s.ownViaOnTop, `${label}: message ${i}: sipspan's Via must be the top Via`);
    assert.ok(
      s.traceparents.length <= 1 && s.traceIds.length <= 1,
      `${label}: at most one trace header each`,
    );
    assert.ok(
      s.restored.equals(expected[i]),
      `${label}: message ${i} differs from what was sent beyond sipspan's own changes: ${describeDiff(s.restored, expected[i])}`,
    );
    // RFC 5658 double Record-Route when the transport changes across the hop: the entry on top faces the
    // next hop (the upstream's route set starts there), the one below faces the sender.
    const rr = (t: 'udp' | 'tcp') => `<sip:${HOST}:${rig.port}${t === 'tcp' ? ';transport=tcp' : ''};lr>`;
    if (s.recordRoutes.length > 0 && a.transport !== x.transport) {
      assert.deepEqual(
        s.recordRoutes,
        [rr(a.transport), rr(x.transport)],
        `${label}: Record-Route across ${x.transport}→${a.transport}`,
      );
    } else {
      assert.ok(
        s.recordRoutes.length <= 1,
        `${label}: one Record-Route of sipspan's when the transport stays: ${s.recordRoutes}`,
      );
    }
    if (a.bytes.length > UDP_MTU_LIMIT) {
      assert.equal(
        a.transport,
        'tcp',
        `${label}: ${a.bytes.length} bytes must leave over TCP (RFC 3261 §18.1.1)`,
      );
    }
  }
  assert.equal(
    x.responses.length,
    0,
    `${label}: a stateless proxy sends the client nothing for a forwarded request`,
  );
  if (thenClose) {
    const tcp = x.tcp!;
    assert.ok(
      await waitUntil(() => tcp.closed, 3000),
      `${label}: the unframable rest of the stream closes it`,
    );
    assert.ok(
      rig.events.every((e) => e.status === 0 && e.reason.startsWith('closed-')),
      `${label}: only the close is reported: ${eventsText()}`,
    );
    return;
  }
  assert.deepEqual(rig.events, [], `${label}: forwarded messages are not rejected`);
  if (x.tcp !== null) assert.equal(x.tcp.closed, false, `${label}: the connection stays open`);
}

async function expectAnswer(x: Exchange, sent: Buffer, status: number, label: string): Promise<void> {
  await waitUntil(() => x.responses.length >= 1 || (x.tcp?.closed ?? false), WAIT_MS);
  await sleep(SETTLE_MS);
  assert.equal(
    x.responses.length,
    1,
    `${label}: want one ${status} answer, got ${x.responses.length} (${x.responses.map(statusOf).join(',')}); rejected: ${eventsText()}; closed: ${x.tcp?.closed}`,
  );
  const r = x.responses[0];
  assert.equal(statusOf(r), status, `${label}: ${JSON.stringify(r.toString('latin1', 0, 40))}`);
  const cid = callIdOf(sent);
  if (cid !== null) assert.equal(callIdOf(r), cid, `${label}: the answer carries the request's Call-ID`);
  assert.equal(rig.upstream.arrivals.length, 0, `${label}: nothing is forwarded`);
  assert.ok(
    rig.events.some((e) => e.status === status),
    `${label}: a rejected event with status ${status}: ${eventsText()}`,
  );
  if (x.tcp !== null)
    assert.equal(x.tcp.closed, false, `${label}: the connection stays open after an answer`);
}

async function expectDrop(x: Exchange, label: string, reason?: string): Promise<void> {
  await waitUntil(() => rig.events.length >= 1, WAIT_MS);
  await sleep(SETTLE_MS);
  assert.equal(x.responses.length, 0, `${label}: no answer to a dropped message`);
  assert.equal(rig.upstream.arrivals.length, 0, `${label}: nothing reaches the upstream`);
  assert.equal(rig.downstream.arrivals.length, 0, `${label}: nothing reaches the next hop`);
  assert.ok(
    rig.events.some((e) => e.status === 0 && (reason === undefined || e.reason === reason)),
    `${label}: want a rejected event with status 0${reason ? ` and reason ${reason}` : ''}, got ${eventsText()}`,
  );
  if (x.tcp !== null)
    assert.equal(x.tcp.closed, false, `${label}: a framed message is dropped, the connection kept`);
}

async function expectAnswerOrDrop(
  x: Exchange,
  sent: Buffer,
  status: number,
  label: string,
  note: (s: string) => void,
): Promise<void> {
  await waitUntil(() => x.responses.length >= 1 || rig.events.length >= 1, WAIT_MS);
  await sleep(SETTLE_MS);
  if (x.responses.length > 0) {
    note(`answered ${statusOf(x.responses[0])}`);
    await expectAnswer(x, sent, status, label);
  } else {
    note(`dropped: ${eventsText()}`);
    await expectDrop(x, label);
  }
}

async function expectClose(x: Exchange, label: string): Promise<void> {
  const tcp = x.tcp!;
  const closed = await waitUntil(() => tcp.closed, 3000);
  await sleep(SETTLE_MS);
  assert.ok(
    closed,
    `${label}: sipspan must close the connection; got ${x.responses.length} responses (${x.responses.map(statusOf).join(',')}), upstream got ${rig.upstream.arrivals.length}; rejected: ${eventsText()}`,
  );
  assert.equal(rig.upstream.arrivals.length, 0, `${label}: nothing is forwarded`);
  assert.ok(x.responses.length <= 1, `${label}: at most one answer before the close`);
  if (x.responses.length === 1)
    assert.equal(statusOf(x.responses[0]), 400, `${label}: the answer before closing`);
}

async function runCase(
  f: CorpusFile,
  transport: 'udp' | 'tcp',
  outcome: Outcome,
  note: (s: string) => void,
): Promise<void> {
  const label = `${f.set}/${f.name}.dat over ${transport.toUpperCase()}`;
  const x = await send(transport, f.wire);
  try {
    switch (outcome.kind) {
      case 'fwd': {
        const expected = framedMessages(f.wire, transport);
        if (f.name === 'dblreq') {
          // RFC 4475 §3.1.1.8: the REGISTER is 300 bytes; over UDP the 450 trailing octets are discarded.
          assert.equal(expected[0].length, 300);
          assert.equal(expected.length, transport === 'udp' ? 1 : 2);
        }
        await expectForwarded(x, expected, label, outcome.thenClose === true);
        if (f.name === 'longreq' && transport === 'udp') {
          assert.equal(rig.upstream.arrivals[0].transport, 'tcp', `${label}: RFC 3261 §18.1.1, on over TCP`);
        }
        return;
      }
      case 'answer':
        await expectAnswer(x, f.wire, outcome.status, label);
        if (outcome.status === 420) {
          const unsupported = headerValues(x.responses[0], 'unsupported')
            .flatMap((v) => v.split(','))
            .map((t) => t.trim());
          const proxyRequire = headerValues(f.wire, 'proxy-require')
            .flatMap((v) => v.split(','))
            .map((t) => t.trim());
          assert.deepEqual(unsupported, proxyRequire, `${label}: Unsupported lists the Proxy-Require tags`);
        }
        return;
      case 'answer-or-drop':
        await expectAnswerOrDrop(x, f.wire, outcome.status, label, note);
        return;
      case 'drop':
        await expectDrop(x, label);
        return;
      case 'close':
        assert.equal(transport, 'tcp');
        await expectClose(x, label);
        return;
    }
  } finally {
    await x.close();
  }
}

// ───────────────────────────── the corpus ─────────────────────────────

const corpus = loadCorpus();

test('the corpus holds the 62 files and the table names each of them once', () => {
  assert.equal(corpus.length, 62);
  assert.deepEqual(corpus.map((f) => `${f.set}/${f.name}`).sort(), Object.keys(EXPECTED).sort());
});

for (const transport of ['udp', 'tcp'] as const) {
  describe(`every corpus message over ${transport.toUpperCase()}`, () => {
    for (const f of corpus) {
      const outcome = EXPECTED[`${f.set}/${f.name}`][transport];
      const what =
        outcome.kind === 'answer'
          ? String(outcome.status)
          : outcome.kind === 'fwd' && outcome.thenClose === true
            ? 'fwd, then close'
            : outcome.kind;
      test(`${f.set}/${f.name}.dat → ${what}`, (t) => runCase(f, transport, outcome, (s) => t.diagnostic(s)));
    }
  });
}

// ───────────────────────────── responses with sipspan's Via on top ─────────────────────────────

/** A Via line as sipspan writes its own. */
function ownViaLine(): Buffer {
  return Buffer.from(
    `Via: SIP/2.0/UDP ${HOST}:${rig.port};branch=z9hG4bK-sS${randomBytes(10).toString('hex')}\r\n`,
    'latin1',
  );
}

/**
 * The response as sipspan would get it back: its Via on top, and the file's own
 * top Via pointing at a loopback receiver (`;received=127.0.0.1;rport=<port>`),
 * so the next hop is never one of the corpus' 192.0.2.x addresses.
 */
function withOwnViaOnTop(raw: Buffer): { message: Buffer; next: Buffer } {
  const head = parseHead(raw);
  const top = head.fields.find((x) => x.name === 'via')!;
  const lineEnd = top.end - 2;
  const next = Buffer.concat([
    raw.subarray(0, lineEnd),
    Buffer.from(`;received=${HOST};rport=${rig.downstream.port}`, 'latin1'),
    raw.subarray(lineEnd),
  ]);
  const message = Buffer.concat([next.subarray(0, top.start), ownViaLine(), next.subarray(top.start)]);
  return { message, next };
}

/**
 * bcast.dat (RFC 4475 §3.3.10): the top Via (192.0.2.198) is that of the element
 * receiving the response, the second one names 255.255.255.255. sipspan plays that
 * element: its Via stands in place of the file's top Via, every other byte as archived,
 * so the next hop is the broadcast address, with no received.
 */
function bcastWithOwnVia(raw: Buffer): Buffer {
  const head = parseHead(raw);
  const top = head.fields.find((x) => x.name === 'via')!;
  return Buffer.concat([raw.subarray(0, top.start), ownViaLine(), raw.subarray(top.end)]);
}

/** bcast.dat with its second Via's sent-by a multicast group instead of the broadcast address. */
function toMulticast(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  assert.ok(text.includes('UDP 255.255.255.255;'));
  return Buffer.from(text.replace('UDP 255.255.255.255;', 'UDP 239.255.255.250;'), 'latin1');
}

for (const transport of ['udp', 'tcp'] as const) {
  describe(`corpus responses whose top Via is sipspan's, over ${transport.toUpperCase()}`, () => {
    const byName = (n: string) => corpus.find((f) => f.set === 'rfc4475' && f.name === n)!;

    for (const name of ['unreason', 'noreason']) {
      test(`rfc4475/${name}.dat is forwarded to the next Via with sipspan's Via removed, every other byte equal`, async () => {
        const { message, next } = withOwnViaOnTop(byName(name).wire);
        const x = await send(transport, message);
        try {
          const down = rig.downstream.arrivals;
          await waitUntil(() => down.length >= 1, WAIT_MS);
          await sleep(SETTLE_MS);
          assert.equal(down.length, 1, `the next hop got ${down.length} messages; rejected: ${eventsText()}`);
          assert.equal(down[0].transport, 'udp', 'the next Via says UDP');
          assert.equal(down[0].port, rig.port, 'sent from the route port');
          assert.ok(down[0].bytes.equals(next), describeDiff(down[0].bytes, next));
          assert.ok(
            withoutOwnVia(message, { host: HOST, port: rig.port }).equals(next),
            'the only change is the removed Via',
          );
          assert.equal(rig.upstream.arrivals.length, 0);
          assert.deepEqual(rig.events, []);
        } finally {
          await x.close();
        }
      });
    }

    const drops: [string, string, (raw: Buffer) => Buffer][] = [
      // §3.1.2.19: status 4294967301.
      ['bigcode', 'bad-status-code', (raw) => withOwnViaOnTop(raw).message],
      // §3.1.2.5: "simply discard" (CSeq 9292394834772304023312).
      ['scalarlg', 'bad-cseq', (raw) => withOwnViaOnTop(raw).message],
      // §3.3.10: never toward a broadcast address.
      ['bcast', 'broadcast-via', bcastWithOwnVia],
    ];
    for (const [name, reason, build] of drops) {
      test(`rfc4475/${name}.dat with sipspan's Via on top is dropped: ${reason}`, async () => {
        const x = await send(transport, build(byName(name).wire));
        try {
          await expectDrop(x, `${name} over ${transport}`, reason);
        } finally {
          await x.close();
        }
      });
    }

    test('rfc4475/bcast.dat toward a multicast group (239.255.255.250) instead is dropped too: broadcast-via', async () => {
      const x = await send(transport, bcastWithOwnVia(toMulticast(byName('bcast').wire)));
      try {
        await expectDrop(x, `bcast to a multicast group over ${transport}`, 'broadcast-via');
      } finally {
        await x.close();
      }
    });
  });
}

// ───────────────────────────── still serving ─────────────────────────────

function validInvite(transport: 'udp' | 'tcp', clientPort: number): Buffer {
  const tag = randomBytes(4).toString('hex');
  const body =
    'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  return Buffer.from(
    `INVITE sip:service@${HOST}:${rig.port} SIP/2.0\r\n` +
      `Via: SIP/2.0/${transport.toUpperCase()} ${HOST}:${clientPort};branch=z9hG4bK${tag}after;rport\r\n` +
      'Max-Forwards: 70\r\n' +
      `From: <sip:caller@${HOST}>;tag=${tag}\r\n` +
      `To: <sip:service@${HOST}>\r\n` +
      `Call-ID: after-corpus-${tag}@${HOST}\r\n` +
      'CSeq: 1 INVITE\r\n' +
      `Contact: <sip:caller@${HOST}:${clientPort}>\r\n` +
      'Content-Type: application/sdp\r\n' +
      `Content-Length: ${body.length}\r\n\r\n${body}`,
    'latin1',
  );
}

describe('after the whole corpus', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    test(`a valid INVITE over ${transport.toUpperCase()} still goes through`, async () => {
      rig.upstream.clear();
      rig.downstream.clear();
      rig.events.length = 0;
      if (transport === 'udp') {
        const c = await RawUdpClient.open(HOST);
        try {
          const invite = validInvite('udp', c.port);
          await c.send(invite, rig.port, HOST);
          await expectForwarded(
            { transport, clientPort: c.port, responses: c.received, tcp: null, close: async () => {} },
            [invite],
            'INVITE over UDP',
          );
        } finally {
          await c.close();
        }
      } else {
        const c = await RawTcpClient.connect(HOST, rig.port);
        try {
          const invite = validInvite('tcp', c.localPort);
          c.write(invite);
          await expectForwarded(
            { transport, clientPort: c.localPort, responses: c.received, tcp: c, close: async () => {} },
            [invite],
            'INVITE over TCP',
          );
        } finally {
          c.close();
        }
      }
    });
  }

  test('no uncaught exception happened', () => {
    assert.deepEqual(uncaught, []);
  });
});
