import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { formatHostPort } from '../config/endpoint.ts';
import { channels } from '../observe/channels.ts';
import { sdpOrigin } from '../observe/leg-correlator.ts';
import type { InboundTrace, Observer } from '../observe/observer.ts';
import {
  type Direction,
  type ObservedTransaction,
  type RouteInfo,
  TransactionRecord,
} from '../observe/records.ts';
import { tableKeyAt } from '../observe/table-key.ts';
import type { Flow, TransportName } from '../transport/flow.ts';
import type { InboundHandler } from '../transport/inbound-handler.ts';
import { ipFamily } from '../transport/ip-family.ts';
import type { TcpConnection, UnsentMessage } from '../transport/tcp-connection.ts';
import type { TcpTransport } from '../transport/tcp-transport.ts';
import type { UdpListener } from '../transport/udp-listener.ts';
import { indexOfBytes, startsWithBytes } from '../wire/byte-search.ts';
import { EditList } from '../wire/edit-list.ts';
import { frameDatagram } from '../wire/frame-datagram.ts';
import { HeaderId } from '../wire/header-names.ts';
import { writeLatin1 } from '../wire/latin1.ts';
import { valueEnd } from '../wire/lws.ts';
import { readCSeq } from '../wire/read-cseq.ts';
import { locateAddress, readTag, readUser } from '../wire/read-name-addr.ts';
import { readSipUri } from '../wire/read-sip-uri.ts';
import { parseSessionId } from '../wire/read-trace-context.ts';
import { emptyVia, lowerTransport, readVia, type ViaValue } from '../wire/read-via.ts';
import type { ScanResult } from '../wire/scan.ts';
import { ScanCode } from '../wire/scan-codes.ts';
import type { SipMessage } from '../wire/sip-message.ts';
import {
  BRANCH_PREFIX,
  BRANCH_PREFIX_BYTES,
  FNV_SEED_1,
  FNV_SEED_2,
  formatBranch,
  hashBytes,
  hashHex,
  loopPartOf,
  MAGIC_COOKIE_BYTES,
} from './branch.ts';
import { isRejection, type RequestFacts, readRequest } from './read-request.ts';
import type { Resolver } from './resolver.ts';
import type { RouteRuntime } from './route-runtime.ts';
import { buildStatelessReply, isAckOfOwnReply } from './stateless-reply.ts';
import { type HeldSend, UdpOutbox } from './udp-outbox.ts';

/** RFC 3261 §18.1.1: above this size a UDP request goes on over a congestion-controlled transport. */
const UDP_MTU_LIMIT = 1300;
const MAX_FORWARDS_70 = Buffer.from('Max-Forwards: 70\r\n', 'latin1');
/** Max-Forwards values 0–254 as bytes, so a decrement allocates nothing. */
const DECIMALS: Buffer[] = [];
for (let i = 0; i < 256; i++) DECIMALS.push(Buffer.from(String(i), 'latin1'));
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

/** "<name>: <value>\r\n" written at `at`; the offset after it. */
function headerLine(out: Buffer, at: number, name: string, value: string): number {
  at = writeLatin1(out, writeLatin1(out, at, name), ': ');
  at = writeLatin1(out, at, value);
  out[at] = 0x0d;
  out[at + 1] = 0x0a;
  return at + 2;
}

/** The bytes headerLine writes. */
function headerLineLength(name: string, value: string): number {
  return name.length + 2 + value.length + 2;
}

/** Names of the trace headers this process reads and writes (configurable). */
export interface TraceHeaderNames {
  traceparent: string;
  tracestate: string;
  traceId: string;
  /** Lowercased, for matching configured names that are not the built-in ones. */
  custom: readonly string[];
  correlation: readonly string[];
}

export interface ProxyOptions {
  traceHeaders: TraceHeaderNames;
  /** Heap guard at its hard level: new INVITEs get 503. */
  shedding: boolean;
}

/**
 * The tag of a request queued on a TCP connection that is still connecting: should the connection
 * fail, the request is answered 503 along the flow it came on (a copy: a UDP listener reuses its own).
 */
class PendingRequest {
  readonly tx: ObservedTransaction | null;
  readonly flow: Flow;
  /** Moved from UDP to TCP for its size (§18.1.1): should TCP fail, it goes over UDP after all. */
  readonly bySize: boolean;
  constructor(tx: ObservedTransaction | null, flow: Flow, bySize: boolean) {
    this.tx = tx;
    this.flow = flow;
    this.bySize = bySize;
  }
}

/** The tag of a response queued on a connecting TCP connection: its loss is counted as a drop. */
const RESPONSE_TAG = Symbol('response');

/** Where a message goes. */
interface Target {
  readonly transport: TransportName;
  readonly host: string;
  readonly port: number;
}

/**
 * RFC 3261 §16 forwarding as a stateless proxy (§16.11), one message at a time:
 *
 *   request  ─▶ validate (§16.3) ─▶ target (§16.4–16.5, §16.12 loose routing)
 *            ─▶ edits: Route pop, received/rport (§18.2.1, RFC 3581), Max-Forwards,
 *               trace headers, Record-Route, our Via (§16.6) ─▶ send
 *   response ─▶ our top Via? (§16.7 step 3) ─▶ remove it ─▶ next Via (§18.2.2) ─▶ send
 *
 * Every failure is an outcome (answer, drop, close) counted through the
 * observer; nothing here throws into the socket loop.
 */
export class ProxyEngine implements InboundHandler {
  private readonly routes: RouteRuntime[];
  private readonly observer: Observer;
  private readonly tcp: TcpTransport;
  private readonly resolver: Resolver;
  private readonly options: ProxyOptions;
  /** Reused for every message: edits are applied before the next message is handled. */
  private readonly edits = new EditList();
  /** A response's top and next Via, read anew for each: nothing of them outlives handleResponse. */
  private readonly responseTopVia = emptyVia();
  private readonly responseNextVia = emptyVia();
  private readonly traceparentHeader: string;
  private readonly tracestateHeader: string;
  private readonly traceIdHeader: string;
  /** Counters for failures that have no transaction to carry them. */
  internalErrors = 0;
  /** Set once the sockets close: deferred sends (after a name lookup) are dropped, not attempted. */
  stopped = false;

  constructor(
    routes: RouteRuntime[],
    observer: Observer,
    tcp: TcpTransport,
    resolver: Resolver,
    options: ProxyOptions,
  ) {
    this.routes = routes;
    this.observer = observer;
    this.tcp = tcp;
    this.resolver = resolver;
    this.options = options;
    this.traceparentHeader = options.traceHeaders.traceparent;
    this.tracestateHeader = options.traceHeaders.tracestate;
    this.traceIdHeader = options.traceHeaders.traceId;
    for (const route of routes) {
      this.requestSent.push((err) => err !== null && this.onUdpSendError(route, err, true));
      this.responseSent.push((err) => err !== null && this.onUdpSendError(route, err, false));
    }
  }

  set shedding(on: boolean) {
    this.options.shedding = on;
  }

  onMessage(
    routeIndex: number,
    flow: Flow,
    result: ScanResult,
    datagram: Buffer | null,
    receivedAt: number,
  ): void {
    const route = this.routes[routeIndex];
    try {
      const msg = result.message;
      if (msg === null) {
        // NAT keepalives (RFC 5626 §4.4.1's CRLF, and the zero bytes some phones send) are routine:
        // counted apart, not logged, not a parse error.
        if (datagram !== null && isKeepalive(datagram)) this.drop(route, flow, null, true, 'keepalive');
        else this.drop(route, flow, null, true, result.code === ScanCode.EMPTY ? 'empty' : result.code);
        return;
      }
      if (msg.isRequest) this.handleRequest(route, flow, result, receivedAt);
      else this.handleResponse(route, flow, result, receivedAt);
    } catch (err) {
      // A bug must cost one message, never the process.
      this.internalErrors++;
      this.drop(route, flow, result.message, result.message?.isRequest ?? true, 'internal-error');
      if (process.env.SIPSPAN_DEBUG) console.error(err);
    }
  }

  onBatchStart(): void {
    this.outbox.batchStart();
    this.observer.batchStart();
  }

  /** The batch's held sends leave first, then the sinks hear what it ended. */
  onBatchEnd(): void {
    this.outbox.batchEnd();
    this.observer.batchEnd();
  }

  onStreamBroken(routeIndex: number, flow: Flow, code: ScanCode): void {
    this.drop(this.routes[routeIndex], flow, null, true, code, true);
  }

  onLimit(routeIndex: number, limit: string): void {
    this.observer.publishLimit(this.routes[routeIndex].info, limit);
  }

  onConnectionFailed(
    routeIndex: number,
    kind: 'connect' | 'reset',
    address: string,
    port: number,
    unsent: UnsentMessage[],
  ): void {
    const route = this.routes[routeIndex];
    // RFC 3261 §18.4: a transport failure is reported to the transaction at once, not left to Timer B,
    // and §16.9: the request is answered as a 503 from the next hop would be.
    // Counted as the service's failure when it was the service's: the route's upstream, or where a
    // request from downstream was going. A caller's address the proxy had to connect back to is not.
    let towardService = address === route.upstreamAddress && port === route.upstream.port;
    for (let i = 0; i < unsent.length; i++) {
      const tag = unsent[i].tag;
      if (tag instanceof PendingRequest) {
        if (tag.tx instanceof TransactionRecord && tag.tx.direction === 'downstream') towardService = true;
        if (!(tag.bySize && this.resendOverUdp(route, tag, unsent[i].chunks, address, port)))
          this.answerForwarded(route, tag.flow, unsent[i].chunks, tag.tx);
      } else if (tag === RESPONSE_TAG) this.dropUnsentResponse(route, formatHostPort(address, port));
    }
    if (towardService) this.upstreamError(route, kind);
  }

  /**
   * RFC 3261 §18.1.1: a request sent over TCP only for its size goes over UDP when the connection is
   * refused (a UDP-only service). Its Via names UDP then, so the answers come back the same way.
   */
  private resendOverUdp(
    route: RouteRuntime,
    tag: PendingRequest,
    chunks: Buffer[],
    address: string,
    port: number,
  ): boolean {
    const buf = Buffer.concat(chunks);
    const at = buf.indexOf(route.viaPrefixTcp, 0, 'latin1');
    if (at === -1) return false;
    const udp = Buffer.concat([
      buf.subarray(0, at),
      Buffer.from(route.viaPrefixUdp, 'latin1'),
      buf.subarray(at + Buffer.byteLength(route.viaPrefixTcp, 'latin1')),
    ]);
    const family = ipFamily(address) === 6 ? 6 : 4;
    const now = performance.now(); // before the send, as in sendRequestTo
    if (!this.transmit(route, tag.flow, address, family, port, 'udp', [udp], tag.tx, true)) return false;
    if (tag.tx !== null) this.observer.onRequestSent(tag.tx, formatHostPort(address, port), 'udp', now);
    return true;
  }

  // ───────────────────────────── requests ─────────────────────────────

  private handleRequest(route: RouteRuntime, flow: Flow, result: ScanResult, receivedAt: number): void {
    const msg = result.message!;
    const cfg = route.config;
    const facts = readRequest(result, cfg.reject_proxy_require, cfg.strict);
    if (isRejection(facts)) {
      if (facts.status === 0) this.drop(route, flow, msg, true, facts.reason);
      else this.replyStateless(route, flow, msg, facts.status, facts.reason, facts.extra, null, receivedAt);
      return;
    }
    const method = facts.method;
    // The ACK of an answer sipspan gave itself (420, 482, 483, 503): the transaction ended here, and
    // the service, which never saw the request, must not get its ACK.
    if (method === 'ACK' && isAckOfOwnReply(msg, facts.toTag)) return;
    const direction: Direction = this.isFromUpstream(route, flow) ? 'upstream' : 'downstream';

    // RFC 3261 §16.3 step 3: Max-Forwards 0 is answered 483, never forwarded.
    if (facts.maxForwards === 0 && method !== 'ACK') {
      this.replyGenerated(route, flow, facts, direction, 483, 'too-many-hops', null, receivedAt);
      return;
    }
    // Heap guard, hard level: shed new calls, keep everything in progress going.
    if (this.options.shedding && method === 'INVITE' && facts.toTag === null) {
      this.replyGenerated(route, flow, facts, direction, 503, 'overloaded', 'Retry-After: 5\r\n', receivedAt);
      return;
    }

    const loop = this.loopHash(msg, facts);
    // RFC 3261 §16.3 step 4: a Via of ours whose loop part matches means the request came back unchanged.
    // An ACK that looped is dropped (never answered): forwarded, it would go round until it outgrew UDP.
    if (method !== 'CANCEL' && this.isLoop(route, msg, loop)) {
      if (method === 'ACK') this.drop(route, flow, msg, true, 'loop-detected');
      else this.replyGenerated(route, flow, facts, direction, 482, 'loop-detected', null, receivedAt);
      return;
    }
    this.transactionHash(route, msg, facts);
    const branch = formatBranch(this.txHash1, this.txHash2, loop);

    const edits = this.edits;
    edits.clear();
    const target = this.chooseTarget(route, msg, facts, direction, edits);
    if (target === null) {
      edits.clear();
      this.replyGenerated(route, flow, facts, direction, 400, 'bad-route', null, receivedAt);
      return;
    }

    const buf = msg.buf;
    const isInitialInvite = method === 'INVITE' && facts.toTag === null;
    let fromUser: string | null = null;
    let toUser: string | null = null;
    let legKeys: string[] | null = null;
    if (isInitialInvite) {
      const fromField = msg.fieldIndex(HeaderId.FROM);
      const toField = msg.fieldIndex(HeaderId.TO);
      fromUser = readUser(buf, msg.fieldValueStart(fromField), msg.fieldValueEnd(fromField));
      toUser = readUser(buf, msg.fieldValueStart(toField), msg.fieldValueEnd(toField));
      if (cfg.b2bua_correlation && this.observer.correlatesLegs)
        legKeys = this.legKeys(msg, fromUser, toUser);
    }
    let inbound: InboundTrace | null = null;
    if (this.hasTraceHeaders(msg)) inbound = this.readInboundTrace(msg);
    const tx = this.observer.onRequest(
      route.info,
      method,
      branch,
      facts.callId,
      facts.cseq.seq,
      facts.fromTag,
      facts.toTag,
      direction,
      flow.transport,
      this.remoteText(flow),
      receivedAt,
      inbound,
      cfg.trust_trace_headers,
      legKeys,
      fromUser,
      toUser,
    );

    // Edits, in message order. Insert point: before the first Via line, so our Via ends up on top.
    const insertAt = msg.fieldLineStart(facts.topViaField);

    // §18.2.1 / RFC 3581: note where the request really came from in the sender's Via.
    this.addReceived(msg, facts.topVia, flow, edits);

    // §16.6 step 3: Max-Forwards decremented, or added as 70.
    if (facts.maxForwards > 0) {
      const i = msg.fieldIndex(HeaderId.MAX_FORWARDS);
      edits.replace(msg.fieldValueStart(i), msg.fieldValueEnd(i), DECIMALS[facts.maxForwards - 1]);
    }

    // Trace context: replace whatever came with exactly one of each header.
    // On an untrusted route they go even when no transaction could be observed (tables full, heap guard):
    // an outsider's context never passes this hop.
    if (inbound !== null && (tx !== null || !cfg.trust_trace_headers)) this.removeTraceHeaders(msg, edits);

    // Size decides the transport (§18.1.1); our own insertions count.
    let transport = target.transport;
    const viaHead = transport === 'tcp' ? route.viaPrefixTcp : route.viaPrefixUdp;
    const traceBytes = tx === null ? 0 : this.traceLinesLength(tx);
    const recordRoute =
      cfg.record_route && facts.toTag === null && DIALOG_CREATING.has(method)
        ? this.recordRouteFor(route, flow.transport)
        : null;

    let size = msg.end - msg.start + viaHead.length + branch.length + 2 + traceBytes;
    if (facts.maxForwards < 0) size += MAX_FORWARDS_70.length;
    if (recordRoute !== null) size += recordRoute.length * 2;
    if (
      transport === 'udp' &&
      size > UDP_MTU_LIMIT &&
      cfg.udp_mtu_fallback_to_tcp &&
      this.tcpLikely(route, target)
    )
      transport = 'tcp';

    // Our Via and the trace lines, written once into one Buffer (no string concatenated, then copied).
    const head = transport === 'tcp' ? route.viaPrefixTcp : route.viaPrefixUdp;
    const lines = Buffer.allocUnsafe(head.length + branch.length + 2 + traceBytes);
    let at = writeLatin1(lines, writeLatin1(lines, 0, head), branch);
    lines[at++] = 0x0d;
    lines[at++] = 0x0a;
    if (tx !== null) this.writeTraceLines(lines, at, tx);
    edits.insert(insertAt, lines);
    if (facts.maxForwards < 0) edits.insert(insertAt, MAX_FORWARDS_70);
    if (recordRoute !== null) {
      // RFC 5658 double Record-Route when the transport changes across the hop.
      const rrAt = msg.has(HeaderId.RECORD_ROUTE)
        ? msg.fieldLineStart(msg.fieldIndex(HeaderId.RECORD_ROUTE))
        : insertAt;
      if (transport !== flow.transport && route.tcpPort !== 0 && route.udpPort !== 0) {
        edits.insert(rrAt, transport === 'tcp' ? route.recordRouteTcp : route.recordRouteUdp);
      }
      edits.insert(rrAt, recordRoute);
    }
    // RFC 3261 §18.3: a message relayed onto a stream needs Content-Length (RFC 4475 §3.4.1 inv2543).
    if (transport === 'tcp' && msg.contentLength < 0) {
      edits.insert(msg.headersEnd, Buffer.from(`Content-Length: ${msg.end - msg.bodyStart}\r\n`, 'latin1'));
    }

    const chunks = edits.apply(buf, msg.start, msg.end);
    edits.clear();
    this.movedBySize = transport !== target.transport;
    const sent = this.sendRequest(route, flow, target, transport, chunks, tx, method, direction, receivedAt);
    this.movedBySize = false;
    if (channels.messageCaptured.hasSubscribers) {
      // A request that could not be sent has no copy out: the call view shows it in, and the answer.
      this.capture(
        route,
        facts.callId,
        tx === null ? null : tx.traceId,
        flow,
        msg,
        sent ? chunks : null,
        transport,
        target,
        receivedAt,
      );
    }
    if (!sent) this.answerSendFailure(route, flow, msg, false, tx);
  }

  /**
   * The trace lines a forwarded request carries (W3C traceparent with the CLIENT span's id, tracestate
   * when there is one, X-Trace-Id), as they are written by writeTraceLines.
   */
  private traceLinesLength(tx: ObservedTransaction): number {
    // "<name>: 00-<trace id>-<span id>-0x\r\n", then the headerLines of tracestate (if any) and X-Trace-Id
    let n = this.traceparentHeader.length + 5 + tx.traceId.length + 1 + tx.clientSpanId.length + 5;
    if (tx.traceState !== null) n += headerLineLength(this.tracestateHeader, tx.traceState);
    return n + headerLineLength(this.traceIdHeader, tx.traceId);
  }

  /** The lines traceLinesLength counted: traceparent `00-<trace id>-<span id>-<flags>` (W3C version 00). */
  private writeTraceLines(out: Buffer, at: number, tx: ObservedTransaction): void {
    at = writeLatin1(out, at, this.traceparentHeader);
    at = writeLatin1(out, at, ': 00-');
    at = writeLatin1(out, at, tx.traceId);
    out[at++] = 0x2d;
    at = writeLatin1(out, at, tx.clientSpanId);
    at = writeLatin1(out, at, tx.sampled ? '-01\r\n' : '-00\r\n');
    if (tx.traceState !== null) at = headerLine(out, at, this.tracestateHeader, tx.traceState);
    headerLine(out, at, this.traceIdHeader, tx.traceId);
  }

  /** Set around sendRequest: the request goes over TCP only for its size (read when a tag is made). */
  private movedBySize = false;

  /** Where a request goes: own Route entries popped (§16.4), then next Route, Request-URI or upstream. */
  private chooseTarget(
    route: RouteRuntime,
    msg: SipMessage,
    facts: RequestFacts,
    direction: Direction,
    edits: EditList,
  ): Target | null {
    const buf = msg.buf;
    let nextRouteStart = -1;
    let nextRouteEnd = -1;
    let popped = false;
    if (msg.has(HeaderId.ROUTE)) {
      // Walk Route values in order; pop those that name this route (we Record-Routed the dialog).
      for (let i = msg.fieldIndex(HeaderId.ROUTE); i !== -1 && i < msg.fieldCount; i++) {
        if (msg.fieldId(i) !== HeaderId.ROUTE) continue;
        const vs = msg.fieldValueStart(i);
        const ve = msg.fieldValueEnd(i);
        let p = vs;
        let removedAll = true;
        let firstKept = -1;
        while (p < ve) {
          const e = valueEnd(buf, p, ve);
          const span = locateAddress(buf, p, e);
          const uri = span === null ? null : readSipUri(buf, span.uriStart, span.uriEnd);
          if (nextRouteStart === -1 && uri !== null && route.isOwn(uri.host, uri.port, uri.transport)) {
            popped = true;
            p = e < ve ? skipLwsComma(buf, e + 1, ve) : ve;
            continue;
          }
          if (nextRouteStart === -1) {
            nextRouteStart = p;
            nextRouteEnd = e;
          }
          removedAll = false;
          if (firstKept === -1) firstKept = p;
          break;
        }
        if (popped && removedAll) edits.remove(msg.fieldLineStart(i), msg.fieldLineEnd(i));
        else if (popped && firstKept > vs) edits.remove(vs, firstKept);
        if (nextRouteStart !== -1) break;
      }
    }
    if (nextRouteStart !== -1 && (popped || direction === 'upstream')) {
      const span = locateAddress(buf, nextRouteStart, nextRouteEnd);
      const uri = span === null ? null : readSipUri(buf, span.uriStart, span.uriEnd);
      if (uri === null) return null;
      return uriTarget(uri.host, uri.port, uri.transport, uri.secure);
    }
    if (popped || direction === 'upstream') {
      const uri = readSipUri(buf, msg.uriStart, msg.uriEnd);
      if (uri === null) return null;
      if (uri.maddr !== null) return uriTarget(uri.maddr, uri.port, uri.transport, uri.secure);
      if (route.isOwn(uri.host, uri.port, uri.transport)) return route.upstream;
      return uriTarget(uri.host, uri.port, uri.transport, uri.secure);
    }
    void facts;
    // The configured endpoint itself (never written to): no object per request.
    return route.upstream;
  }

  /** The last source remoteText saw, and its text. */
  private lastRemoteAddress = '';
  private lastRemotePort = -1;
  private lastRemoteText = '';

  /** `address:port` of a message's source; most come from a few peers, so the last one's text is kept. */
  private remoteText(flow: Flow): string {
    if (flow.remotePort !== this.lastRemotePort || flow.remoteAddress !== this.lastRemoteAddress) {
      this.lastRemoteAddress = flow.remoteAddress;
      this.lastRemotePort = flow.remotePort;
      this.lastRemoteText = formatHostPort(flow.remoteAddress, flow.remotePort);
    }
    return this.lastRemoteText;
  }

  private isFromUpstream(route: RouteRuntime, flow: Flow): boolean {
    return flow.remotePort === route.upstream.port && flow.remoteAddress === route.upstreamAddress;
  }

  /** Our Record-Route as seen from the side a request arrived on (its transport, when we listen on it). */
  private recordRouteFor(route: RouteRuntime, arrival: TransportName): Buffer {
    if (arrival === 'tcp') return route.tcpPort !== 0 ? route.recordRouteTcp : route.recordRouteUdp;
    return route.udpPort !== 0 ? route.recordRouteUdp : route.recordRouteTcp;
  }

  /** §18.2.1: `received` when the source differs from sent-by; RFC 3581 `rport` filled when asked (and always over TCP). */
  private addReceived(msg: SipMessage, via: ViaValue, flow: Flow, edits: EditList): void {
    const src = flow.remoteAddress;
    const stream = flow.transport === 'tcp';
    let params = '';
    if (via.received === null && (stream || via.rport === 0 || via.host !== src))
      params += `;received=${src}`;
    if (via.rport === 0) {
      edits.insert(via.rportNameEnd, Buffer.from(`=${flow.remotePort}`, 'latin1'));
    } else if (via.rport === -1 && stream) {
      params += `;rport=${flow.remotePort}`;
    }
    if (params !== '') edits.insert(via.end, Buffer.from(params, 'latin1'));
    void msg;
  }

  private hasTraceHeaders(msg: SipMessage): boolean {
    const custom = this.options.traceHeaders.custom;
    if (custom.length > 0) return true;
    return (
      msg.has(HeaderId.TRACEPARENT) ||
      msg.has(HeaderId.X_TRACEPARENT) ||
      msg.has(HeaderId.TRACESTATE) ||
      msg.has(HeaderId.X_TRACE_ID)
    );
  }

  private readInboundTrace(msg: SipMessage): InboundTrace {
    const names = this.options.traceHeaders;
    let traceparent: string | null = null;
    let repeated = false;
    const tp =
      names.custom.length > 0
        ? msg.findByName(names.traceparent.toLowerCase())
        : msg.fieldIndex(HeaderId.TRACEPARENT);
    if (tp !== -1) {
      traceparent = msg.buf.toString('latin1', msg.fieldValueStart(tp), msg.fieldValueEnd(tp));
      repeated =
        msg.count(HeaderId.TRACEPARENT) > 1 ||
        valueEnd(msg.buf, msg.fieldValueStart(tp), msg.fieldValueEnd(tp)) < msg.fieldValueEnd(tp);
    } else if (msg.has(HeaderId.X_TRACEPARENT)) {
      traceparent = msg.value(HeaderId.X_TRACEPARENT);
      repeated = msg.count(HeaderId.X_TRACEPARENT) > 1;
    }
    const ts =
      names.custom.length > 0
        ? msg.findByName(names.tracestate.toLowerCase())
        : msg.fieldIndex(HeaderId.TRACESTATE);
    const tid =
      names.custom.length > 0
        ? msg.findByName(names.traceId.toLowerCase())
        : msg.fieldIndex(HeaderId.X_TRACE_ID);
    return {
      traceparent,
      repeated,
      tracestate:
        ts === -1 ? null : msg.buf.toString('latin1', msg.fieldValueStart(ts), msg.fieldValueEnd(ts)),
      traceId:
        tid === -1 ? null : msg.buf.toString('latin1', msg.fieldValueStart(tid), msg.fieldValueEnd(tid)),
    };
  }

  /** Remove every inbound trace header line: exactly one of each leaves, ours. */
  private removeTraceHeaders(msg: SipMessage, edits: EditList): void {
    const custom = this.options.traceHeaders.custom;
    for (let i = 0; i < msg.fieldCount; i++) {
      const id = msg.fieldId(i);
      let remove =
        id === HeaderId.TRACEPARENT ||
        id === HeaderId.TRACESTATE ||
        id === HeaderId.X_TRACEPARENT ||
        id === HeaderId.X_TRACE_ID;
      if (!remove && custom.length > 0) {
        const name = msg.buf.toString('latin1', msg.fieldLineStart(i), msg.fields[i * 6 + 2]).toLowerCase();
        remove = custom.includes(name);
      }
      if (remove) edits.remove(msg.fieldLineStart(i), msg.fieldLineEnd(i));
    }
  }

  /** B2BUA correlation keys of an initial INVITE, strongest first. */
  private legKeys(msg: SipMessage, fromUser: string | null, toUser: string | null): string[] {
    const keys: string[] = [];
    const buf = msg.buf;
    for (const name of this.options.traceHeaders.correlation) {
      const lower = name.toLowerCase();
      const i =
        lower === 'session-id'
          ? msg.fieldIndex(HeaderId.SESSION_ID)
          : lower === 'x-cid'
            ? msg.fieldIndex(HeaderId.X_CID)
            : msg.findByName(lower);
      if (i === -1) continue;
      const raw = buf.toString('latin1', msg.fieldValueStart(i), msg.fieldValueEnd(i));
      const v = lower === 'session-id' ? parseSessionId(raw) : raw.trim();
      if (v !== null && v !== '') keys.push(`${lower}:${v}`);
    }
    if (msg.end > msg.bodyStart) {
      const o = sdpOrigin(buf, msg.bodyStart, msg.end);
      if (o !== null) keys.push(`sdp-origin:${o}`);
    }
    if (fromUser !== null && toUser !== null) keys.push(`users:${fromUser}|${toUser}`);
    return keys;
  }

  /** The two lanes of the last transactionHash (fields, not a returned pair: nothing allocated per request). */
  private txHash1 = 0;
  private txHash2 = 0;

  /** §16.11: identical for retransmissions (and for a CANCEL / non-2xx ACK of an INVITE), distinct per transaction. */
  private transactionHash(route: RouteRuntime, msg: SipMessage, facts: RequestFacts): void {
    const buf = msg.buf;
    let h1 = FNV_SEED_1 ^ route.info.index;
    let h2 = FNV_SEED_2;
    const via = facts.topVia;
    // The cookie and something after it: a branch of the cookie alone is no unique branch.
    if (
      via.branchEnd - via.branchStart > MAGIC_COOKIE_BYTES.length &&
      startsWithBytes(buf, via.branchStart, via.branchEnd, MAGIC_COOKIE_BYTES)
    ) {
      // RFC 3261 §17.2.3: the magic cookie makes the branch alone identify the transaction (with sent-by).
      const h = hashBytes(buf, msg.fieldValueStart(facts.topViaField), via.end, h1, h2);
      h1 = h[0];
      h2 = h[1];
    } else {
      // RFC 2543 fallback (RFC 4475 §3.2.1, §3.4.1): Request-URI, top Via, Call-ID, CSeq number, From and To tags.
      let h = hashBytes(buf, msg.uriStart, msg.uriEnd, h1, h2);
      h = hashBytes(buf, msg.fieldValueStart(facts.topViaField), via.end, h[0], h[1]);
      h1 = h[0] ^ facts.cseq.seq;
      h2 = h[1];
      const s = `${facts.callId}|${facts.fromTag ?? ''}|${facts.method === 'ACK' || facts.method === 'CANCEL' ? '' : (facts.toTag ?? '')}`;
      for (let i = 0; i < s.length; i++) {
        h1 = Math.imul(h1 ^ s.charCodeAt(i), 0x01000193);
        h2 = Math.imul(h2 ^ s.charCodeAt(i), 0x01000193) ^ (h2 >>> 13);
      }
      h1 >>>= 0;
      h2 >>>= 0;
    }
    this.txHash1 = h1;
    this.txHash2 = h2;
  }

  /** §16.6 step 8: what a loop keeps and a spiral changes. */
  private loopHash(msg: SipMessage, facts: RequestFacts): number {
    const buf = msg.buf;
    const h = hashBytes(buf, msg.uriStart, msg.uriEnd, FNV_SEED_1, FNV_SEED_2);
    let h1 = h[0] ^ facts.cseq.seq;
    const cid = msg.fieldIndex(HeaderId.CALL_ID);
    h1 = hashBytes(buf, msg.fieldValueStart(cid), msg.fieldValueEnd(cid), h1, h[1])[0];
    // The To tag is left out for ACK and CANCEL: a non-2xx ACK carries the tag of the final response its
    // INVITE did not have, and must leave with the INVITE's branch (§17.1.1.3, §16.11).
    const toTag = facts.method === 'ACK' || facts.method === 'CANCEL' ? null : facts.toTag;
    h1 = hashChars(h1, facts.fromTag);
    h1 = Math.imul(h1 ^ 0x7c, 0x01000193); // '|'
    return hashChars(h1, toTag) >>> 0;
  }

  private isLoop(route: RouteRuntime, msg: SipMessage, loop: number): boolean {
    const buf = msg.buf;
    let loopHex: string | null = null;
    for (let i = 0; i < msg.fieldCount; i++) {
      if (msg.fieldId(i) !== HeaderId.VIA) continue;
      let p = msg.fieldValueStart(i);
      const e = msg.fieldValueEnd(i);
      // Cheap filter first: a Via field without our branch marker holds none of our Vias.
      if (indexOfBytes(buf, BRANCH_PREFIX_BYTES, p, e) === -1) continue;
      loopHex ??= hashHex(loop, 0, 8);
      while (p !== -1 && p < e) {
        const via = readVia(buf, p, e);
        if (via === null) break;
        if (
          via.branch !== null &&
          route.isOwn(via.host, via.port, lowerTransport(via.transport)) &&
          loopPartOf(via.branch) === loopHex
        ) {
          return true;
        }
        p = via.next;
      }
    }
    return false;
  }

  // ───────────────────────────── responses ─────────────────────────────

  private handleResponse(route: RouteRuntime, flow: Flow, result: ScanResult, receivedAt: number): void {
    const msg = result.message!;
    if (result.code !== ScanCode.OK) {
      this.drop(route, flow, msg, false, result.code);
      return;
    }
    const buf = msg.buf;
    if (!msg.has(HeaderId.VIA)) {
      this.drop(route, flow, msg, false, 'missing-via');
      return;
    }
    const viaField = msg.fieldIndex(HeaderId.VIA);
    const vs = msg.fieldValueStart(viaField);
    const ve = msg.fieldValueEnd(viaField);
    // Its branch is compared and looked up in place: no string is made of it.
    const top = readVia(buf, vs, ve, this.responseTopVia, false);
    // §16.7 step 3 / §18.1.2: a response whose top Via is not ours is not for us.
    if (
      top === null ||
      top.branchStart === -1 ||
      !startsWithBytes(buf, top.branchStart, top.branchEnd, BRANCH_PREFIX_BYTES) ||
      !route.isOwn(top.host, top.port, lowerTransport(top.transport))
    ) {
      this.drop(route, flow, msg, false, 'not-our-via');
      return;
    }
    const cseqField = msg.fieldIndex(HeaderId.CSEQ);
    const cseq =
      cseqField === -1 ? null : readCSeq(buf, msg.fieldValueStart(cseqField), msg.fieldValueEnd(cseqField));
    if (cseq === null) {
      // RFC 4475 §3.1.2.5 scalarlg: overlarge scalars in a response: discard.
      this.drop(route, flow, msg, false, 'bad-cseq');
      return;
    }
    if (!msg.has(HeaderId.CALL_ID)) {
      this.drop(route, flow, msg, false, 'missing-call-id');
      return;
    }

    // The next Via: on the same line after ours, or the next Via field.
    let next: ViaValue | null;
    const edits = this.edits;
    edits.clear();
    if (top.next !== -1) {
      next = readVia(buf, top.next, ve, this.responseNextVia, false);
      edits.remove(vs, top.next);
    } else {
      const second = msg.fieldIndex(HeaderId.VIA, 1);
      if (second === -1) {
        this.drop(route, flow, msg, false, 'no-next-via');
        return;
      }
      next = readVia(
        buf,
        msg.fieldValueStart(second),
        msg.fieldValueEnd(second),
        this.responseNextVia,
        false,
      );
      edits.remove(msg.fieldLineStart(viaField), msg.fieldLineEnd(viaField));
    }
    if (next === null) {
      edits.clear();
      this.drop(route, flow, msg, false, 'bad-via');
      return;
    }
    // §18.2.2: received (and RFC 3581 rport) first, else sent-by with the transport's default port.
    const host = next.received ?? next.maddr ?? next.host;
    const port = next.rport > 0 ? next.rport : next.port === 0 ? 5060 : next.port;
    const t = next.transport;
    if (t !== 'UDP' && t !== 'TCP') {
      edits.clear();
      this.drop(route, flow, msg, false, 'unsupported-transport');
      return;
    }
    if (isBroadcastOrMulticast(host)) {
      // RFC 4475 §3.3.10 bcast: never answer toward a broadcast or multicast address.
      edits.clear();
      this.drop(route, flow, msg, false, 'broadcast-via');
      return;
    }

    const tx = this.observer.onResponseTo(
      tableKeyAt(buf, top.branchStart, top.branchEnd, cseq.method),
      msg.statusCode,
      receivedAt,
    );
    const chunks = edits.apply(buf, msg.start, msg.end);
    edits.clear();
    const target: Target = { transport: t === 'TCP' ? 'tcp' : 'udp', host, port };
    if (channels.messageCaptured.hasSubscribers) {
      const callId = msg.value(HeaderId.CALL_ID) ?? '';
      this.capture(
        route,
        callId,
        tx === null ? null : tx.traceId,
        flow,
        msg,
        chunks,
        target.transport,
        target,
        receivedAt,
      );
    }
    this.sendResponse(route, flow, target, chunks, tx, cseq.method, msg.statusCode, receivedAt);
  }

  /**
   * For the call view: the message as received and as forwarded (copies: the store outlives the
   * buffers); `chunks` null when it was not sent on.
   */
  private capture(
    route: RouteRuntime,
    callId: string,
    traceId: string | null,
    flow: Flow,
    msg: SipMessage,
    chunks: Buffer[] | null,
    outTransport: TransportName,
    target: Target,
    receivedAt: number,
  ): void {
    this.captureIn(route, callId, traceId, flow, msg, receivedAt);
    if (chunks === null) return;
    const local = formatHostPort(flow.localAddress, flow.localPort);
    const to = formatHostPort(target.host, target.port);
    this.captureOut(route, callId, traceId, outTransport, local, to, chunks);
  }

  /**
   * For the call view: an answer sipspan gave itself, back along the flow the request came on, after
   * the request when that was not captured yet (`captureRequest`).
   */
  private captureAnswer(
    route: RouteRuntime,
    flow: Flow,
    msg: SipMessage,
    captureRequest: boolean,
    reply: Buffer[],
    traceId: string | null,
    receivedAt: number,
  ): void {
    const callId = msg.value(HeaderId.CALL_ID) ?? '';
    if (captureRequest) this.captureIn(route, callId, traceId, flow, msg, receivedAt);
    const local = formatHostPort(flow.localAddress, flow.localPort);
    this.captureOut(route, callId, traceId, flow.transport, local, this.remoteText(flow), reply);
  }

  private captureIn(
    route: RouteRuntime,
    callId: string,
    traceId: string | null,
    flow: Flow,
    msg: SipMessage,
    receivedAt: number,
  ): void {
    channels.messageCaptured.publish({
      route: route.info,
      callId,
      traceId,
      direction: 'in',
      transport: flow.transport,
      source: this.remoteText(flow),
      destination: formatHostPort(flow.localAddress, flow.localPort),
      at: receivedAt,
      bytes: Buffer.from(msg.buf.subarray(msg.start, msg.end)),
    });
  }

  private captureOut(
    route: RouteRuntime,
    callId: string,
    traceId: string | null,
    transport: TransportName,
    source: string,
    destination: string,
    chunks: Buffer[],
  ): void {
    channels.messageCaptured.publish({
      route: route.info,
      callId,
      traceId,
      direction: 'out',
      transport,
      source,
      destination,
      at: performance.now(),
      bytes: Buffer.concat(chunks),
    });
  }

  // ───────────────────────────── sending ─────────────────────────────

  /**
   * False when the request could not be sent and nothing has been said about it yet (the caller
   * answers it); a failure after a name lookup is answered here.
   */
  private sendRequest(
    route: RouteRuntime,
    flow: Flow,
    target: Target,
    transport: TransportName,
    chunks: Buffer[],
    tx: ObservedTransaction | null,
    method: string,
    direction: Direction,
    receivedAt: number,
  ): boolean {
    const address = this.addressOf(route, target.host);
    if (address === null) {
      // A name not in the cache: resolve, then send (the rare path: compose names are resolved at start).
      if (this.resolver.full) {
        // As many messages wait for lookups as may: this one is not sent (the caller answers it).
        this.observer.publishLimit(route.info, 'max_pending_lookups');
        return false;
      }
      // The flow outlives this handler: a copy, as the listener reuses its own for the next datagram.
      const kept: Flow = { ...flow };
      this.resolver.resolve(target.host).then(
        (r) => {
          if (this.stopped) return;
          const sent = this.sendRequestTo(
            route,
            kept,
            r.address,
            r.family,
            target.port,
            transport,
            chunks,
            tx,
            method,
            direction,
            receivedAt,
          );
          if (!sent) this.answerForwarded(route, kept, chunks, tx);
        },
        () => {
          if (this.stopped) return;
          this.upstreamError(route, 'resolve');
          this.answerForwarded(route, kept, chunks, tx);
        },
      );
      return true;
    }
    const family = ipFamily(address) === 6 ? 6 : 4;
    return this.sendRequestTo(
      route,
      flow,
      address,
      family,
      target.port,
      transport,
      chunks,
      tx,
      method,
      direction,
      receivedAt,
    );
  }

  private sendRequestTo(
    route: RouteRuntime,
    flow: Flow,
    address: string,
    family: 4 | 6,
    port: number,
    transport: TransportName,
    chunks: Buffer[],
    tx: ObservedTransaction | null,
    method: string,
    direction: Direction,
    receivedAt: number,
  ): boolean {
    const upstream =
      tx === null
        ? ''
        : address === route.upstreamAddress && port === route.upstream.port
          ? route.upstreamText
          : formatHostPort(address, port);
    if (transport === 'udp') {
      const held = this.holdUdp(
        route,
        family,
        true,
        chunks,
        port,
        address,
        tx,
        upstream,
        method,
        0,
        direction,
        receivedAt,
      );
      if (held === false) return this.requestNotSent(route, direction);
      if (held !== null) {
        if (tx !== null) this.observer.onRequestRouted(tx, upstream, 'udp');
        return true;
      }
    }
    // Taken before the send: the kernel stamps the answer's arrival, and the peer can answer before
    // this process runs again (the send wakes it on this core), so a time taken after could follow it.
    const now = performance.now();
    const ok = this.transmit(route, flow, address, family, port, transport, chunks, tx, true);
    if (!ok) return this.requestNotSent(route, direction);
    this.forwardedAt(route.info, true, tx, upstream, transport, method, 0, direction, receivedAt, now);
    return true;
  }

  private requestNotSent(route: RouteRuntime, direction: Direction): false {
    // The service's error only when the request was going to it (not a service's BYE to a caller).
    if (direction === 'downstream') this.upstreamError(route, 'send');
    return false;
  }

  /** A forwarded message's bookkeeping, timed `now`: taken before its send (sendRequestTo says why). */
  private forwardedAt(
    route: RouteInfo,
    isRequest: boolean,
    tx: ObservedTransaction | null,
    upstream: string,
    transport: TransportName,
    method: string,
    status: number,
    direction: Direction,
    receivedAt: number,
    now: number,
  ): void {
    if (tx !== null) {
      if (isRequest) this.observer.onRequestSent(tx, upstream, transport, now);
      else this.observer.onResponseSent(tx, status, receivedAt, now);
    }
    this.observer.publishForwarded(
      route,
      isRequest,
      method,
      status,
      direction,
      transport,
      receivedAt,
      now,
      tx === null ? null : tx.traceId,
    );
  }

  /**
   * A UDP datagram after the turn's first is held for the check phase (udp-outbox.ts): its slot,
   * with the send and what its bookkeeping needs filled in. Null: send it now. False: no socket.
   */
  private holdUdp(
    route: RouteRuntime,
    family: 4 | 6,
    isRequest: boolean,
    chunks: Buffer[],
    port: number,
    address: string,
    tx: ObservedTransaction | null,
    upstream: string,
    method: string,
    status: number,
    direction: Direction,
    receivedAt: number,
  ): HeldSend | null | false {
    const socket = this.udpSocketFor(route, family, isRequest);
    if (socket === null) return false;
    const held = this.outbox.slot();
    if (held === null) return null;
    held.socket = socket;
    held.chunks = chunks;
    held.port = port;
    held.address = address;
    held.onError = this.udpSent(route, isRequest);
    held.route = route.info;
    held.isRequest = isRequest;
    held.tx = tx;
    held.upstream = upstream;
    held.method = method;
    held.status = status;
    held.direction = direction;
    held.receivedAt = receivedAt;
    return held;
  }

  /** The check phase's sends: each one's bookkeeping, timed when it left. */
  private readonly onHeldSent = (send: HeldSend, at: number): void =>
    this.forwardedAt(
      send.route as RouteInfo,
      send.isRequest,
      send.tx,
      send.upstream,
      'udp',
      send.method,
      send.status,
      send.direction,
      send.receivedAt,
      at,
    );

  private readonly outbox = new UdpOutbox(this.onHeldSent);

  private sendResponse(
    route: RouteRuntime,
    flow: Flow,
    target: Target,
    chunks: Buffer[],
    tx: ObservedTransaction | null,
    method: string,
    status: number,
    receivedAt: number,
  ): void {
    const address = this.addressOf(route, target.host);
    if (address !== null) {
      this.sendResponseTo(route, flow, address, target, chunks, tx, method, status, receivedAt);
      return;
    }
    // The rare path (a Via naming a host): resolve, then send. The flow is copied: see sendRequest.
    if (this.resolver.full) {
      this.observer.publishLimit(route.info, 'max_pending_lookups');
      this.drop(route, flow, null, false, 'resolve-failed');
      return;
    }
    const kept: Flow = { ...flow };
    this.resolver.resolve(target.host).then(
      (r) => {
        if (!this.stopped)
          this.sendResponseTo(route, kept, r.address, target, chunks, tx, method, status, receivedAt);
      },
      () => {
        if (!this.stopped) this.drop(route, kept, null, false, 'resolve-failed');
      },
    );
  }

  private sendResponseTo(
    route: RouteRuntime,
    flow: Flow,
    address: string,
    target: Target,
    chunks: Buffer[],
    tx: ObservedTransaction | null,
    method: string,
    status: number,
    receivedAt: number,
  ): void {
    const family = ipFamily(address) === 6 ? 6 : 4;
    const direction: Direction = this.isFromUpstream(route, flow) ? 'upstream' : 'downstream';
    if (target.transport === 'udp') {
      const held = this.holdUdp(
        route,
        family,
        false,
        chunks,
        target.port,
        address,
        tx,
        '',
        method,
        status,
        direction,
        receivedAt,
      );
      if (held === false) {
        this.drop(route, flow, null, false, 'send-failed');
        return;
      }
      if (held !== null) return;
    }
    const now = performance.now(); // before the send, as for requests (sendRequestTo)
    const ok = this.transmit(
      route,
      flow,
      address,
      family,
      target.port,
      target.transport,
      chunks,
      null,
      false,
    );
    if (!ok) {
      this.drop(route, flow, null, false, 'send-failed');
      return;
    }
    this.forwardedAt(route.info, false, tx, '', target.transport, method, status, direction, receivedAt, now);
  }

  /**
   * RFC 3261 §18.1.1: a request moved to TCP for its size goes over UDP when TCP fails. A UDP-only
   * service refuses the connection; while that failure is remembered (seconds), large requests stay
   * on UDP instead of trying TCP first each time.
   */
  private tcpLikely(route: RouteRuntime, target: Target): boolean {
    const address = this.addressOf(route, target.host);
    return address === null || !this.tcp.failedRecently(address, target.port);
  }

  /** An IP for a host: literals as they are, names from the cache; null when a lookup is needed. */
  private addressOf(route: RouteRuntime, host: string): string | null {
    if (ipFamily(host) !== 0) return host;
    if (host === route.upstream.host && route.upstreamAddress !== '') return route.upstreamAddress;
    const c = this.resolver.cached(host, performance.now());
    return c === null ? null : c.address;
  }

  /** Put chunks on the wire. TCP: the open connection to the peer, else a new one. False when refused. */
  private transmit(
    route: RouteRuntime,
    flow: Flow,
    address: string,
    family: 4 | 6,
    port: number,
    transport: TransportName,
    chunks: Buffer[],
    tx: ObservedTransaction | null,
    isRequest: boolean,
  ): boolean {
    if (transport === 'tcp') {
      const conn = this.tcp.obtain(route.info.index, address, port);
      if (conn === null) return false;
      const source: TcpConnection | null = flow.connection;
      // Only a connection still connecting keeps the tag (for its failure): no object per message otherwise.
      const tag = conn.connected
        ? null
        : isRequest
          ? new PendingRequest(tx, { ...flow }, this.movedBySize)
          : RESPONSE_TAG;
      return conn.write(chunks, source, tag);
    }
    const socket = this.udpSocketFor(route, family, isRequest);
    if (socket === null) return false;
    socket.send(chunks, port, address, this.udpSent(route, isRequest));
    return true;
  }

  /** The socket a forwarded datagram leaves from: the route's own, else any of the family. */
  private udpSocketFor(route: RouteRuntime, family: 4 | 6, isRequest: boolean): UdpListener | null {
    return (isRequest ? route.udpForRequests(family) : route.udpFor(family)) ?? this.anyUdp(family);
  }

  /** The send callback that counts a forwarded datagram's send error for its route. */
  private udpSent(route: RouteRuntime, isRequest: boolean): (err: Error | null) => void {
    const i = route.info.index;
    return isRequest ? this.requestSent[i] : this.responseSent[i];
  }

  private anyUdp(family: 4 | 6): UdpListener | null {
    for (const r of this.routes) {
      const s = r.udpFor(family);
      if (s !== null) return s;
    }
    return null;
  }

  /**
   * Callbacks for UDP sends, made once per route (by route index) and direction: nothing is allocated
   * per send. The kernel refuses a datagram (no route to the host, a firewall,
   * EMSGSIZE) at the send or just after, never through the sender: a request's failure is counted as
   * `upstream_unreachable` / `upstream_send`, a response's as a `send-failed` drop. The transaction is
   * not told (that would take a closure per send): it ends at Timer B like any unanswered request.
   */
  private readonly requestSent: ((err: Error | null) => void)[] = [];
  private readonly responseSent: ((err: Error | null) => void)[] = [];

  private onUdpSendError(route: RouteRuntime, err: Error, isRequest: boolean): void {
    if (this.stopped) return;
    const code = (err as NodeJS.ErrnoException).code;
    if (isRequest) {
      this.upstreamError(route, code === 'ENETUNREACH' || code === 'EHOSTUNREACH' ? 'unreachable' : 'send');
      return;
    }
    const e = err as Error & { address?: string; port?: number };
    this.observer.publishRejected({
      route: route.info,
      isRequest: false,
      status: 0,
      reason: 'send-failed',
      transport: 'udp',
      remote: e.address === undefined ? '' : formatHostPort(e.address, e.port ?? 0),
      method: null,
      callId: null,
      cseq: -1,
      at: performance.now(),
    });
  }

  private upstreamError(route: RouteRuntime, kind: string): void {
    this.observer.publishLimit(route.info, `upstream_${kind}`);
  }

  // ───────────────────────────── answers and drops ─────────────────────────────

  /** Answer a request statelessly (no transaction observed: the request was not usable). */
  private replyStateless(
    route: RouteRuntime,
    flow: Flow,
    msg: SipMessage,
    status: number,
    reason: string,
    extra: string | null,
    _tx: ObservedTransaction | null,
    receivedAt: number,
  ): void {
    if (msg.isRequest && msg.methodEnd > msg.methodStart && msg.method === 'ACK') {
      // RFC 3261 §17: an ACK is never answered.
      this.drop(route, flow, msg, true, reason);
      return;
    }
    const chunks = buildStatelessReply(msg, status, extra);
    if (chunks === null) {
      this.drop(route, flow, msg, true, reason);
      return;
    }
    this.replyOnFlow(route, flow, chunks);
    if (channels.messageCaptured.hasSubscribers)
      this.captureAnswer(route, flow, msg, true, chunks, null, receivedAt);
    this.observer.publishRejected({
      route: route.info,
      isRequest: true,
      status,
      reason,
      transport: flow.transport,
      remote: this.remoteText(flow),
      method: msg.methodEnd > msg.methodStart ? msg.method : null,
      callId: msg.value(HeaderId.CALL_ID),
      cseq: cseqNumberOf(msg),
      at: receivedAt,
    });
  }

  /** Answer a well-formed request that sipspan refuses (483, 482, 420 via facts, 503): a transaction with its span. */
  private replyGenerated(
    route: RouteRuntime,
    flow: Flow,
    facts: RequestFacts,
    direction: Direction,
    status: number,
    reason: string,
    extra: string | null,
    receivedAt: number,
  ): void {
    const msg = facts.msg;
    const chunks = buildStatelessReply(msg, status, extra);
    if (chunks !== null) this.replyOnFlow(route, flow, chunks);
    const tx = this.observer.onRequest(
      route.info,
      facts.method,
      `${BRANCH_PREFIX}gen${status}-${branchText(msg.buf, facts.topVia) ?? facts.callId}`,
      facts.callId,
      facts.cseq.seq,
      facts.fromTag,
      facts.toTag,
      direction,
      flow.transport,
      this.remoteText(flow),
      receivedAt,
      null,
      false,
      null,
      null,
      null,
    );
    if (tx !== null && !this.observer.lastWasRetransmission)
      this.observer.onGenerated(tx, status, performance.now());
    if (chunks !== null && channels.messageCaptured.hasSubscribers)
      this.captureAnswer(route, flow, msg, true, chunks, tx === null ? null : tx.traceId, receivedAt);
    this.observer.publishRejected({
      route: route.info,
      isRequest: true,
      status,
      reason,
      transport: flow.transport,
      remote: this.remoteText(flow),
      method: facts.method,
      callId: facts.callId,
      cseq: facts.cseq.seq,
      at: receivedAt,
    });
  }

  /**
   * RFC 3261 §16.9: a request outside a dialog that could not be sent on is answered as a 503 from
   * the next hop would be, so the caller hears at once (and may try another server, RFC 3263) instead
   * of retransmitting into Timer B. A request inside a dialog has nowhere else to go: it is left to
   * the caller's retransmissions, which reach the service once it is back (a restart), and an ACK is
   * never answered. `ownVia`: `msg` is the forwarded copy, sipspan's Via on top.
   */
  private answerSendFailure(
    route: RouteRuntime,
    flow: Flow,
    msg: SipMessage,
    ownVia: boolean,
    tx: ObservedTransaction | null,
  ): void {
    const now = performance.now();
    const method = msg.method;
    const to = msg.fieldIndex(HeaderId.TO);
    const inDialog = to !== -1 && readTag(msg.buf, msg.fieldValueStart(to), msg.fieldValueEnd(to)) !== null;
    const reply = method === 'ACK' || inDialog ? null : buildStatelessReply(msg, 503, null, ownVia);
    if (reply !== null) {
      this.replyOnFlow(route, flow, reply);
      if (channels.messageCaptured.hasSubscribers)
        this.captureAnswer(route, flow, msg, false, reply, tx === null ? null : tx.traceId, now);
    }
    if (reply !== null && tx !== null) this.observer.onSendFailureAnswered(tx, 503, now);
    this.observer.publishRejected({
      route: route.info,
      isRequest: true,
      status: reply === null ? 0 : 503,
      reason: 'send-failed',
      transport: flow.transport,
      remote: this.remoteText(flow),
      method,
      callId: msg.value(HeaderId.CALL_ID),
      cseq: cseqNumberOf(msg),
      at: now,
    });
  }

  /** A forwarded request that failed after it left this handler (a lookup, a connection): answered from its copy. */
  private answerForwarded(
    route: RouteRuntime,
    flow: Flow,
    chunks: Buffer[],
    tx: ObservedTransaction | null,
  ): void {
    const msg = frameDatagram(Buffer.concat(chunks)).message;
    if (msg?.isRequest) this.answerSendFailure(route, flow, msg, true, tx);
  }

  private dropUnsentResponse(route: RouteRuntime, remote: string): void {
    this.observer.publishRejected({
      route: route.info,
      isRequest: false,
      status: 0,
      reason: 'send-failed',
      transport: 'tcp',
      remote,
      method: null,
      callId: null,
      cseq: -1,
      at: performance.now(),
    });
  }

  private replyOnFlow(route: RouteRuntime, flow: Flow, chunks: Buffer[]): void {
    if (flow.connection !== null) {
      flow.connection.write(chunks);
      return;
    }
    const family = ipFamily(flow.remoteAddress) === 6 ? 6 : 4;
    const socket = this.udpSocketFor(route, family, false);
    if (socket !== null) socket.send(chunks, flow.remotePort, flow.remoteAddress, this.udpSent(route, false));
  }

  private drop(
    route: RouteRuntime,
    flow: Flow,
    msg: SipMessage | null,
    isRequest: boolean,
    reason: string,
    closed = false,
  ): void {
    let method: string | null = null;
    let callId: string | null = null;
    if (msg !== null) {
      if (msg.isRequest && msg.methodEnd > msg.methodStart) method = msg.method;
      callId = msg.value(HeaderId.CALL_ID);
    }
    this.observer.publishRejected({
      route: route.info,
      isRequest: msg === null ? isRequest : msg.isRequest,
      status: 0,
      reason: closed ? `closed-${reason}` : reason,
      transport: flow.transport,
      remote: this.remoteText(flow),
      method,
      callId,
      cseq: cseqNumberOf(msg),
      at: performance.now(),
    });
  }
}

/** The CSeq number of a message for a drop or reject line; -1 when there is none to read. */
function cseqNumberOf(msg: SipMessage | null): number {
  if (msg === null) return -1;
  const i = msg.fieldIndex(HeaderId.CSEQ);
  return i === -1 ? -1 : (readCSeq(msg.buf, msg.fieldValueStart(i), msg.fieldValueEnd(i))?.seq ?? -1);
}

/** A datagram of at most 16 bytes holding only CR, LF, space, tab or NUL: a NAT keepalive, not SIP. */
export function isKeepalive(datagram: Buffer): boolean {
  if (datagram.length > 16) return false;
  for (let i = 0; i < datagram.length; i++) {
    const c = datagram[i];
    if (c !== 0x0d && c !== 0x0a && c !== 0x20 && c !== 0x09 && c !== 0x00) return false;
  }
  return true;
}

/** FNV-1a lane over a string's char codes (the loop hash's tags: same value as hashing `from|to` joined). */
function hashChars(h: number, s: string | null): number {
  if (s === null) return h;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

function uriTarget(host: string, port: number, transport: string | null, secure: boolean): Target {
  const t: TransportName = transport === 'tcp' || transport === 'tls' || secure ? 'tcp' : 'udp';
  return { transport: t, host, port: port === 0 ? 5060 : port };
}

function skipLwsComma(buf: Buffer, p: number, end: number): number {
  while (p < end && (buf[p] === 0x20 || buf[p] === 0x09 || buf[p] === 0x0d || buf[p] === 0x0a)) p++;
  return p;
}

function isBroadcastOrMulticast(host: string): boolean {
  if (host === '255.255.255.255') return true;
  const family = ipFamily(host);
  if (family === 4) {
    // The first octet, read in place: no substring and no string-to-number call per response.
    let first = 0;
    for (let i = 0; i < host.length; i++) {
      const c = host.charCodeAt(i);
      if (c === 0x2e) break;
      first = first * 10 + c - 0x30;
    }
    return first >= 224 && first <= 239;
  }
  if (family === 6) return host.toLowerCase().startsWith('ff');
  return false;
}

/** A request's top Via branch as text, or null: read only when an answer of sipspan's names it. */
function branchText(buf: Buffer, via: ViaValue): string | null {
  return via.branchStart === -1 ? null : buf.toString('latin1', via.branchStart, via.branchEnd);
}
