import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { EditList } from '../wire/edit-list.ts';
import { HeaderId } from '../wire/header-names.ts';
import { readMaxForwards } from '../wire/read-cseq.ts';
import { readVia } from '../wire/read-via.ts';
import { type Parsed, type Peer, SipEndpoint } from './sip-endpoint.ts';
import { buildResponse, listValues, nextHopOf } from './sip-text.ts';

export interface ForwardOptions {
  host: string;
  port: number;
  /** Where requests from the callers' side go (the next element: a sipspan route, a service). */
  next: { transport: 'udp' | 'tcp'; host: string; port: number };
  transports?: readonly ('udp' | 'tcp')[];
  /** Record-Route initial dialog-creating requests (a proxy that stays in the dialog). */
  recordRoute?: boolean;
  /** Processing delay per request, as a busy gateway adds. */
  delayMs?: number;
}

/**
 * A stateless forwarding SIP element standing in for `sip-gateway`: adds its
 * own Via (and Record-Route), decrements Max-Forwards and passes every other
 * header through unchanged, including trace headers — as a real proxy that
 * knows nothing of tracing would.
 */
export class ForwardStandin {
  readonly endpoint: SipEndpoint;
  private readonly opts: Required<ForwardOptions>;
  readonly stats = { requests: 0, responses: 0, dropped: 0 };

  constructor(opts: ForwardOptions) {
    this.opts = { transports: ['udp', 'tcp'], recordRoute: true, delayMs: 0, ...opts };
    this.endpoint = new SipEndpoint(opts.host, opts.port);
    this.endpoint.onMessage((p, peer, raw) => this.onMessage(p, peer, raw));
  }

  get port(): number {
    return this.endpoint.port;
  }

  async start(): Promise<this> {
    await this.endpoint.start(this.opts.transports);
    return this;
  }

  stop(): Promise<void> {
    return this.endpoint.stop();
  }

  private me(): string {
    return this.endpoint.sentBy;
  }

  private isMe(uri: string): boolean {
    return uri.includes(`@${this.me()}`) || uri.includes(`:${this.me()}`);
  }

  private onMessage(p: Parsed, peer: Peer, raw: Buffer): void {
    if (p.msg.isRequest) this.onRequest(p, peer, raw);
    else this.onResponse(p);
  }

  private onRequest(p: Parsed, peer: Peer, raw: Buffer): void {
    const msg = p.msg;
    const buf = msg.buf;
    const edits = new EditList();
    let target: { transport: 'udp' | 'tcp'; host: string; port: number } | null = null;
    // Loose routing: pop our Route entries (two when we double-record-routed), then go to the next
    // Route or the Request-URI. The Route lines left are written again as one.
    const routeI = msg.fieldIndex(HeaderId.ROUTE);
    if (routeI !== -1) {
      const routes = listValues(p, HeaderId.ROUTE);
      let own = 0;
      while (own < routes.length && this.isMe(routes[own])) own++;
      if (own > 0) {
        const rest = routes.slice(own);
        // The insert first: at one offset, edits apply in the order they were added.
        if (rest.length > 0)
          edits.insert(msg.fieldLineStart(routeI), Buffer.from(`Route: ${rest.join(', ')}\r\n`, 'latin1'));
        for (let i = routeI; i < msg.fieldCount; i++)
          if (msg.fieldId(i) === HeaderId.ROUTE) edits.remove(msg.fieldLineStart(i), msg.fieldLineEnd(i));
        target = nextHopOf(rest, msg.requestUri);
      }
    }
    const fromNext = peer.address === this.opts.next.host && peer.port === this.opts.next.port;
    if (target === null) target = fromNext || routeI !== -1 ? nextHopOf([], msg.requestUri) : this.opts.next;
    if (target === null) return;

    const mfI = msg.fieldIndex(HeaderId.MAX_FORWARDS);
    if (mfI !== -1) {
      const mf = readMaxForwards(buf, msg.fieldValueStart(mfI), msg.fieldValueEnd(mfI));
      if (mf === 0) {
        this.endpoint.send(buildResponse(p, 483, { toTag: 'fw483' }), peer);
        return;
      }
      if (mf > 0)
        edits.replace(msg.fieldValueStart(mfI), msg.fieldValueEnd(mfI), Buffer.from(String(mf - 1)));
    }
    const viaI = msg.fieldIndex(HeaderId.VIA);
    const topVia = readVia(buf, msg.fieldValueStart(viaI), msg.fieldValueEnd(viaI));
    if (topVia === null) return;
    if (topVia.rport === 0)
      edits.insert(topVia.rportNameEnd, Buffer.from(`=${peer.port};received=${peer.address}`));
    const branchSeed = `${topVia.branch ?? ''}|${p.callId}|${p.cseq}|${p.method === 'ACK' || p.method === 'CANCEL' ? 'INVITE' : p.method}`;
    const branch = `z9hG4bK-fw${createHash('sha1').update(branchSeed).digest('hex').slice(0, 16)}`;
    let head = `Via: SIP/2.0/${target.transport.toUpperCase()} ${this.me()};branch=${branch}\r\n`;
    if (this.opts.recordRoute && p.method === 'INVITE' && p.toTag === null) {
      // Each side reaches us on the transport it used: one entry when both are the same, two when the
      // request changes transport here (RFC 5658), the callee's side on top.
      const inbound = `Record-Route: <sip:${this.me()}${transportParam(peer.transport)};lr>\r\n`;
      const outbound = `Record-Route: <sip:${this.me()}${transportParam(target.transport)};lr>\r\n`;
      head = `${peer.transport === target.transport ? inbound : outbound + inbound}${head}`;
    }
    edits.insert(msg.fieldLineStart(viaI), Buffer.from(head, 'latin1'));
    const out = Buffer.concat(edits.apply(buf, msg.start, msg.end));
    this.stats.requests++;
    const t = target;
    if (this.opts.delayMs > 0) setTimeout(() => this.endpoint.sendTo(out, t), this.opts.delayMs);
    else this.endpoint.sendTo(out, t);
    void raw;
  }

  private onResponse(p: Parsed): void {
    const msg = p.msg;
    const buf = msg.buf;
    const viaI = msg.fieldIndex(HeaderId.VIA);
    const top = readVia(buf, msg.fieldValueStart(viaI), msg.fieldValueEnd(viaI));
    if (top === null || !top.branch?.startsWith('z9hG4bK-fw')) {
      this.stats.dropped++;
      return;
    }
    const edits = new EditList();
    let next: ReturnType<typeof readVia>;
    if (top.next !== -1) {
      next = readVia(buf, top.next, msg.fieldValueEnd(viaI));
      edits.remove(msg.fieldValueStart(viaI), top.next);
    } else {
      const second = msg.fieldIndex(HeaderId.VIA, 1);
      if (second === -1) return;
      next = readVia(buf, msg.fieldValueStart(second), msg.fieldValueEnd(second));
      edits.remove(msg.fieldLineStart(viaI), msg.fieldLineEnd(viaI));
    }
    if (next === null) return;
    const host = next.received ?? next.host;
    const port = next.rport > 0 ? next.rport : next.port || 5060;
    this.stats.responses++;
    this.endpoint.sendTo(Buffer.concat(edits.apply(buf, msg.start, msg.end)), {
      transport: next.transport === 'TCP' ? 'tcp' : 'udp',
      host,
      port,
    });
  }
}

function transportParam(transport: 'udp' | 'tcp'): string {
  return transport === 'tcp' ? ';transport=tcp' : '';
}
