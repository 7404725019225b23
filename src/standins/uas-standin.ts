import { performance } from 'node:perf_hooks';
import { HeaderId } from '../wire/header-names.ts';
import { type Parsed, type Peer, SipEndpoint } from './sip-endpoint.ts';
import { buildResponse, dialogFromRequest, nextHopOf, sdpFor, token } from './sip-text.ts';

/** Answer delays a UAS keeps (answerDelaysMs). */
const ANSWER_DELAYS_KEPT = 1000;

export interface UasOptions {
  host: string;
  port: number;
  transports?: readonly ('udp' | 'tcp')[];
  /** Delay before 180 Ringing. */
  ringMs?: number;
  /** Delay before the final answer (200, or a failure). */
  answerMs?: number;
  /** Random extra delay added to answerMs, uniformly 0..jitterMs. */
  jitterMs?: number;
  /** Fraction of calls answered with `failStatus` instead of 200. */
  failRatio?: number;
  failStatus?: number;
  /** When set, the UAS hangs up answered calls itself after this long (its BYE follows the Record-Route set). */
  byeAfterMs?: number;
  keepReceived?: boolean;
}

interface UasCall {
  invite: Parsed;
  /** When its INVITE was handled (performance.now()). */
  receivedAt: number;
  peer: Peer;
  toTag: string;
  last: string | null;
  final: boolean;
  timers: NodeJS.Timeout[];
}

/**
 * A user agent server standing in for a SIP service (`sip-signaling`):
 * 100 at once, 180 after ringMs, then 200 with SDP (or a failure) after
 * answerMs; answers BYE, CANCEL (487 to the INVITE), OPTIONS and REGISTER.
 */
export class UasStandin {
  readonly endpoint: SipEndpoint;
  private readonly opts: Required<Omit<UasOptions, 'byeAfterMs' | 'keepReceived'>> & { byeAfterMs: number };
  private readonly calls = new Map<string, UasCall>();
  readonly stats = { invites: 0, answered: 0, failed: 0, cancelled: 0, byes: 0, byesSent: 0, other: 0 };
  /**
   * How long the last calls (ANSWER_DELAYS_KEPT at most) waited between their INVITE and their 200, in
   * ms: answerMs, plus what its timer came late on a busy event loop.
   */
  readonly answerDelaysMs: number[] = [];

  constructor(opts: UasOptions) {
    this.opts = {
      host: opts.host,
      port: opts.port,
      transports: opts.transports ?? ['udp', 'tcp'],
      ringMs: opts.ringMs ?? 80,
      answerMs: opts.answerMs ?? 250,
      jitterMs: opts.jitterMs ?? 0,
      failRatio: opts.failRatio ?? 0,
      failStatus: opts.failStatus ?? 486,
      byeAfterMs: opts.byeAfterMs ?? 0,
    };
    this.endpoint = new SipEndpoint(opts.host, opts.port, opts.keepReceived ?? false);
    this.endpoint.onMessage((p, peer) => this.onMessage(p, peer));
  }

  get port(): number {
    return this.endpoint.port;
  }

  async start(): Promise<this> {
    await this.endpoint.start(this.opts.transports);
    return this;
  }

  async stop(): Promise<void> {
    for (const c of this.calls.values()) for (const t of c.timers) clearTimeout(t);
    this.calls.clear();
    await this.endpoint.stop();
  }

  private contact(peer: Peer): string {
    return this.endpoint.contact('uas', peer.transport);
  }

  private onMessage(p: Parsed, peer: Peer): void {
    if (!p.msg.isRequest) return; // answers to our own BYE
    const key = p.callId;
    switch (p.method) {
      case 'INVITE': {
        const known = this.calls.get(key);
        if (known !== undefined && p.toTag === null) {
          if (known.last !== null) this.endpoint.send(known.last, peer); // retransmission
          return;
        }
        if (p.toTag !== null) {
          this.endpoint.send(
            buildResponse(p, 200, {
              contact: this.contact(peer),
              body: sdpFor(this.endpoint.advertisedHost, token(4)),
            }),
            peer,
          );
          return;
        }
        this.stats.invites++;
        const call: UasCall = {
          invite: p,
          receivedAt: performance.now(),
          peer,
          toTag: token(),
          last: null,
          final: false,
          timers: [],
        };
        this.calls.set(key, call);
        this.reply(call, 100);
        const o = this.opts;
        call.timers.push(setTimeout(() => this.reply(call, 180), Math.min(o.ringMs, o.answerMs)));
        const delay = o.answerMs + (o.jitterMs > 0 ? Math.random() * o.jitterMs : 0);
        call.timers.push(
          setTimeout(() => {
            if (Math.random() < o.failRatio) {
              this.stats.failed++;
              this.reply(call, o.failStatus, true);
              this.forgetLater(key);
            } else {
              this.stats.answered++;
              this.reply(call, 200, true);
              if (this.answerDelaysMs.push(performance.now() - call.receivedAt) > ANSWER_DELAYS_KEPT)
                this.answerDelaysMs.shift();
              if (o.byeAfterMs > 0) call.timers.push(setTimeout(() => this.sendBye(call), o.byeAfterMs));
            }
          }, delay),
        );
        return;
      }
      case 'ACK':
        return;
      case 'BYE': {
        this.stats.byes++;
        this.endpoint.send(buildResponse(p, 200), peer);
        const call = this.calls.get(key);
        if (call !== undefined) for (const t of call.timers) clearTimeout(t);
        this.forgetLater(key);
        return;
      }
      case 'CANCEL': {
        this.endpoint.send(buildResponse(p, 200, { toTag: token() }), peer);
        const call = this.calls.get(key);
        if (call !== undefined && !call.final) {
          for (const t of call.timers) clearTimeout(t);
          this.stats.cancelled++;
          this.reply(call, 487, true);
          this.forgetLater(key);
        }
        return;
      }
      default:
        this.stats.other++;
        this.endpoint.send(buildResponse(p, 200, { toTag: token() }), peer);
    }
  }

  private reply(call: UasCall, status: number, final = false): void {
    if (call.final) return;
    const body = status === 200 ? sdpFor(this.endpoint.advertisedHost, token(4)) : '';
    const text = buildResponse(call.invite, status, {
      toTag: call.toTag,
      contact: this.contact(call.peer),
      body,
    });
    call.last = text;
    if (final) call.final = true;
    this.endpoint.send(text, call.peer);
  }

  /** RFC 3261 §15.1.1: the callee's BYE, routed by the Record-Route set to the caller's Contact. */
  private sendBye(call: UasCall): void {
    const inv = call.invite;
    const dialog = dialogFromRequest(inv);
    const hop = nextHopOf(dialog.routes, dialog.target);
    if (hop === null || dialog.target === null) return;
    const from = (inv.lines(HeaderId.TO)[0] ?? '').replace(/^[^:]*:/, '').trim();
    const to = (inv.lines(HeaderId.FROM)[0] ?? '').replace(/^[^:]*:/, '').trim();
    const lines = [
      `BYE ${dialog.target} SIP/2.0`,
      `Via: SIP/2.0/${hop.transport.toUpperCase()} ${this.endpoint.sentBy};branch=z9hG4bK-uas${token()};rport`,
      ...dialog.routes.map((r) => `Route: ${r}`),
      'Max-Forwards: 70',
      `From: ${from};tag=${call.toTag}`,
      `To: ${to}`,
      `Call-ID: ${inv.callId}`,
      'CSeq: 1 BYE',
      'Content-Length: 0',
    ];
    this.stats.byesSent++;
    this.endpoint.sendTo(`${lines.join('\r\n')}\r\n\r\n`, hop);
    this.forgetLater(inv.callId);
  }

  private forgetLater(key: string): void {
    const t = setTimeout(() => this.calls.delete(key), 32_000);
    t.unref();
  }
}
