import { Buffer } from 'node:buffer';
import { HeaderId } from '../wire/header-names.ts';
import { type Parsed, type Peer, SipEndpoint } from './sip-endpoint.ts';
import { buildResponse, dialogFrom2xx, nextHopOf, token } from './sip-text.ts';

export interface B2buaOptions {
  host: string;
  port: number;
  /** Where the B leg goes (a sipspan route, a service). */
  next: { transport: 'udp' | 'tcp'; host: string; port: number };
  /** Header names copied from the A leg's INVITE to the B leg's (e.g. Session-ID); none by default. */
  copyHeaders?: readonly string[];
  transports?: readonly ('udp' | 'tcp')[];
  /** Told each new call's two Call-IDs, leg A's then leg B's (who checks what the legs were joined with). */
  onBridge?: (aCallId: string, bCallId: string) => void;
}

interface Bridge {
  /** A leg: the caller's INVITE and where it came from. */
  aInvite: Parsed;
  aPeer: Peer;
  aTag: string;
  aFinal: boolean;
  /** B leg: our own dialog toward `next`. */
  bCallId: string;
  bFromTag: string;
  bBranch: string;
  bInviteText: string;
  bToTag: string | null;
  bRoutes: string[];
  bTarget: string | null;
  bCseq: number;
  /** The B leg's From value (the caller's, with our tag). */
  bFrom: string;
  /** The caller's in-dialog route set is of no concern: we answer on the path requests came from. */
  aCallId: string;
}

/**
 * A back-to-back user agent standing in for a `sip-gateway` that terminates
 * one dialog and starts another: the B leg gets a new Call-ID and new tags,
 * and by default none of the A leg's unknown headers (so no trace headers):
 * the case sipspan's leg correlation has to stitch.
 */
export class B2buaStandin {
  readonly endpoint: SipEndpoint;
  private readonly opts: B2buaOptions;
  private readonly byA = new Map<string, Bridge>();
  private readonly byB = new Map<string, Bridge>();
  readonly stats = { bridged: 0, answered: 0, failed: 0, byes: 0 };

  constructor(opts: B2buaOptions) {
    this.opts = opts;
    this.endpoint = new SipEndpoint(opts.host, opts.port);
    this.endpoint.onMessage((p, peer) => this.onMessage(p, peer));
  }

  get port(): number {
    return this.endpoint.port;
  }

  async start(): Promise<this> {
    await this.endpoint.start(this.opts.transports ?? ['udp', 'tcp']);
    return this;
  }

  stop(): Promise<void> {
    return this.endpoint.stop();
  }

  private me(): string {
    return this.endpoint.sentBy;
  }

  private onMessage(p: Parsed, peer: Peer): void {
    const a = this.byA.get(p.callId);
    const b = this.byB.get(p.callId);
    if (p.msg.isRequest) {
      if (a !== undefined) this.onARequest(a, p, peer);
      else if (b !== undefined) this.onBRequest(b, p, peer);
      else if (p.method === 'INVITE' && p.toTag === null) this.bridge(p, peer);
      else if (p.method !== 'ACK') this.endpoint.send(buildResponse(p, 481, { toTag: token() }), peer);
      return;
    }
    if (b !== undefined) this.onBResponse(b, p);
  }

  /** A new call: answer 100 on A and start the B leg. */
  private bridge(p: Parsed, peer: Peer): void {
    this.endpoint.send(buildResponse(p, 100), peer);
    const bCallId = `${token(8)}@b2bua`;
    const bFromTag = token();
    const bBranch = `z9hG4bK-b2b${token()}`;
    const n = this.opts.next;
    const copied: string[] = [];
    for (const name of this.opts.copyHeaders ?? []) {
      const v = p.header(name);
      if (v !== null) copied.push(`${name}: ${v}`);
    }
    const from = (p.lines(HeaderId.FROM)[0] ?? 'From: <sip:anonymous@invalid>').replace(
      /;\s*tag\s*=\s*[^;>\s]+/i,
      '',
    );
    const to = p.lines(HeaderId.TO)[0] ?? 'To: <sip:unknown@invalid>';
    const body = p.body.toString('latin1');
    const lines = [
      `INVITE ${p.msg.requestUri} SIP/2.0`,
      `Via: SIP/2.0/${n.transport.toUpperCase()} ${this.me()};branch=${bBranch};rport`,
      'Max-Forwards: 70',
      `${from};tag=${bFromTag}`,
      to,
      `Call-ID: ${bCallId}`,
      'CSeq: 1 INVITE',
      `Contact: ${this.endpoint.contact('b2bua', n.transport)}`,
      ...copied,
      ...(body !== '' ? ['Content-Type: application/sdp'] : []),
      `Content-Length: ${Buffer.byteLength(body, 'latin1')}`,
    ];
    const bInviteText = `${lines.join('\r\n')}\r\n\r\n${body}`;
    const bridge: Bridge = {
      aInvite: p,
      aPeer: peer,
      aTag: token(),
      aFinal: false,
      bCallId,
      bFromTag,
      bBranch,
      bInviteText,
      bToTag: null,
      bRoutes: [],
      bTarget: null,
      bCseq: 1,
      bFrom: `${from.replace(/^[^:]*:/, '').trim()};tag=${bFromTag}`,
      aCallId: p.callId,
    };
    this.byA.set(p.callId, bridge);
    this.byB.set(bCallId, bridge);
    this.opts.onBridge?.(p.callId, bCallId);
    this.stats.bridged++;
    this.endpoint.sendTo(bInviteText, n);
    setTimeout(() => this.forget(bridge), 120_000).unref();
  }

  private onBResponse(b: Bridge, p: Parsed): void {
    if (p.cseqMethod === 'INVITE') {
      if (p.status === 100) return;
      if (p.status >= 200 && p.status < 300) {
        const d = dialogFrom2xx(p);
        b.bToTag = p.toTag;
        b.bRoutes = d.routes;
        b.bTarget = d.target;
        this.sendB(b, 'ACK', 1);
      } else if (p.status >= 300) {
        // RFC 3261 §17.1.1.3: ACK the failure on the B leg within its transaction.
        const n = this.opts.next;
        const ack = [
          `ACK ${b.aInvite.msg.requestUri} SIP/2.0`,
          `Via: SIP/2.0/${n.transport.toUpperCase()} ${this.me()};branch=${b.bBranch};rport`,
          'Max-Forwards: 70',
          `From: <sip:b2bua@${this.me()}>;tag=${b.bFromTag}`,
          ...p.lines(HeaderId.TO),
          `Call-ID: ${b.bCallId}`,
          'CSeq: 1 ACK',
          'Content-Length: 0',
        ];
        this.endpoint.sendTo(`${ack.join('\r\n')}\r\n\r\n`, n);
      }
      if (b.aFinal) return;
      if (p.status >= 200) {
        b.aFinal = true;
        if (p.status < 300) this.stats.answered++;
        else this.stats.failed++;
      }
      const body = p.body.toString('latin1');
      this.endpoint.send(
        buildResponse(b.aInvite, p.status, {
          toTag: b.aTag,
          contact: this.endpoint.contact('b2bua', b.aPeer.transport),
          body,
        }),
        b.aPeer,
      );
    }
  }

  private onARequest(b: Bridge, p: Parsed, peer: Peer): void {
    switch (p.method) {
      case 'INVITE':
        return; // a retransmission: the B leg's retransmissions are not modelled
      case 'ACK':
        return; // the B leg's ACK was sent on its 2xx
      case 'BYE':
        this.stats.byes++;
        this.endpoint.send(buildResponse(p, 200), peer);
        this.sendB(b, 'BYE', ++b.bCseq);
        return;
      case 'CANCEL':
        this.endpoint.send(buildResponse(p, 200, { toTag: b.aTag }), peer);
        this.sendB(b, 'CANCEL', 1);
        return;
      default:
        this.endpoint.send(buildResponse(p, 200, { toTag: b.aTag }), peer);
    }
  }

  private onBRequest(b: Bridge, p: Parsed, peer: Peer): void {
    this.endpoint.send(buildResponse(p, 200), peer);
    if (p.method === 'BYE') {
      this.stats.byes++;
      const a = b.aInvite;
      const contact = a.value(HeaderId.CONTACT);
      const target = contact === null ? null : (/<([^>]+)>/.exec(contact)?.[1] ?? contact);
      const hop = nextHopOf([], target);
      if (hop === null) return;
      const lines = [
        `BYE ${target} SIP/2.0`,
        `Via: SIP/2.0/${hop.transport.toUpperCase()} ${this.me()};branch=z9hG4bK-b2b${token()};rport`,
        'Max-Forwards: 70',
        `From: ${(a.lines(HeaderId.TO)[0] ?? '').replace(/^[^:]*:/, '').trim()};tag=${b.aTag}`,
        `To: ${(a.lines(HeaderId.FROM)[0] ?? '').replace(/^[^:]*:/, '').trim()}`,
        `Call-ID: ${a.callId}`,
        'CSeq: 1 BYE',
        'Content-Length: 0',
      ];
      this.endpoint.send(`${lines.join('\r\n')}\r\n\r\n`, b.aPeer);
    }
  }

  private sendB(b: Bridge, method: string, cseq: number): void {
    const n = this.opts.next;
    const inDialog = method !== 'CANCEL';
    const branch = method === 'CANCEL' ? b.bBranch : `z9hG4bK-b2b${token()}`;
    const uri = inDialog && b.bTarget !== null ? b.bTarget : b.aInvite.msg.requestUri;
    const lines = [
      `${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/${n.transport.toUpperCase()} ${this.me()};branch=${branch};rport`,
      ...(inDialog ? b.bRoutes.map((r) => `Route: ${r}`) : []),
      'Max-Forwards: 70',
      `From: ${b.bFrom}`,
      `To: ${(b.aInvite.lines(HeaderId.TO)[0] ?? '').replace(/^[^:]*:/, '').trim()}${inDialog && b.bToTag ? `;tag=${b.bToTag}` : ''}`,
      `Call-ID: ${b.bCallId}`,
      `CSeq: ${cseq} ${method}`,
      'Content-Length: 0',
    ];
    const hop = inDialog ? (nextHopOf(b.bRoutes, b.bTarget) ?? n) : n;
    this.endpoint.sendTo(`${lines.join('\r\n')}\r\n\r\n`, hop);
  }

  private forget(b: Bridge): void {
    this.byA.delete(b.aCallId);
    this.byB.delete(b.bCallId);
  }
}
