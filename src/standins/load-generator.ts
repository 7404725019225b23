import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { HeaderId } from '../wire/header-names.ts';
import { type Parsed, type Peer, SipEndpoint } from './sip-endpoint.ts';
import { dialogFrom2xx, hostPort, nextHopOf, sdpFor, token } from './sip-text.ts';

export interface LoadOptions {
  /** Where INVITEs go (a sipspan route). */
  target: { transport: 'udp' | 'tcp'; host: string; port: number };
  host: string;
  port?: number;
  /** Calls per second. */
  rate: number;
  /** How many calls to place; 0 = until stop(). */
  calls: number;
  /** How long an answered call lasts before the caller sends BYE. */
  holdMs: number;
  /** Most calls in progress at once. */
  maxConcurrent?: number;
  /** Extra header lines on every INVITE (e.g. a correlation header). */
  extraHeaders?: string[];
}

export type CallResult = 'answered' | 'failed' | 'timeout' | 'cancelled';

export interface PlacedCall {
  callId: string;
  status: number;
  result: CallResult | null;
  startedAt: number;
  /** INVITE → final response, ms. */
  setupMs: number;
  /** BYE → its 200, ms. */
  byeMs: number;
  endedAt: number;
}

interface LiveCall extends PlacedCall {
  fromTag: string;
  branch: string;
  invite: string;
  retransmitAt: number;
  interval: number;
  toTag: string | null;
  routes: string[];
  remoteTarget: string | null;
  byeText: string | null;
  byeSentAt: number;
  byeBranch: string;
  /** The hold before our BYE; cleared when the call ends first (the callee hung up), so no timer outlives it. */
  holdTimer: NodeJS.Timeout | null;
}

/** RFC 3261 §17.1.1.2 Timer A starts at T1 and doubles; Timer B gives up after 64*T1. */
const T1_MS = 500;
const TIMER_B_MS = 64 * T1_MS;

/**
 * A UAC that places calls at a steady rate: INVITE (retransmitted per Timer A
 * over UDP), ACK, hold, BYE. Used by the demo and the bench harness where SIPp
 * is not installed, and by tests that need per-call timings.
 */
export class LoadGenerator {
  readonly endpoint: SipEndpoint;
  private readonly opts: LoadOptions;
  private readonly live = new Map<string, LiveCall>();
  readonly done: PlacedCall[] = [];
  private placed = 0;
  private ticker: NodeJS.Timeout | null = null;
  private finished: (() => void) | null = null;
  private stopped = false;
  private cseq = 1;

  constructor(opts: LoadOptions) {
    this.opts = opts;
    this.endpoint = new SipEndpoint(opts.host, opts.port ?? 0);
    this.endpoint.onMessage((p, peer) => this.onMessage(p, peer));
  }

  get inProgress(): number {
    return this.live.size;
  }

  get placedCount(): number {
    return this.placed;
  }

  /** Place the calls; resolves when every call has ended (or stop() was called). */
  async run(): Promise<PlacedCall[]> {
    await this.endpoint.start([this.opts.target.transport]);
    const started = performance.now();
    const tickMs = 10;
    await new Promise<void>((resolve) => {
      this.finished = resolve;
      this.ticker = setInterval(() => {
        const now = performance.now();
        const due = Math.floor(((now - started) / 1000) * this.opts.rate);
        const max = this.opts.maxConcurrent ?? 10_000;
        while (
          !this.stopped &&
          this.placed < due &&
          (this.opts.calls === 0 || this.placed < this.opts.calls) &&
          this.live.size < max
        ) {
          this.placeCall(now);
        }
        this.retransmit(now);
        if ((this.stopped || (this.opts.calls > 0 && this.placed >= this.opts.calls)) && this.live.size === 0)
          this.finish();
      }, tickMs);
    });
    await this.endpoint.stop();
    return this.done;
  }

  /** Stop placing calls; calls in progress end normally. */
  stop(): void {
    this.stopped = true;
  }

  private finish(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    const f = this.finished;
    this.finished = null;
    f?.();
  }

  private me(): string {
    return this.endpoint.sentBy;
  }

  private placeCall(now: number): void {
    this.placed++;
    const callId = `${token(8)}@sipspan-load`;
    const fromTag = token();
    const branch = `z9hG4bK-lg${token()}`;
    const t = this.opts.target;
    const transport = t.transport.toUpperCase();
    const body = sdpFor(this.endpoint.advertisedHost, String(Math.floor(Math.random() * 1e9)));
    const lines = [
      `INVITE sip:service@${hostPort(t.host, t.port)} SIP/2.0`,
      `Via: SIP/2.0/${transport} ${this.me()};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: "caller ${this.placed}" <sip:caller${this.placed % 1000}@${this.me()}>;tag=${fromTag}`,
      `To: <sip:service@${hostPort(t.host, t.port)}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${this.cseq} INVITE`,
      `Contact: ${this.endpoint.contact('caller', t.transport)}`,
      'User-Agent: sipspan-load',
      ...(this.opts.extraHeaders ?? []),
      'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(body)}`,
    ];
    const invite = `${lines.join('\r\n')}\r\n\r\n${body}`;
    const call: LiveCall = {
      callId,
      status: 0,
      result: null,
      startedAt: now,
      setupMs: -1,
      byeMs: -1,
      endedAt: -1,
      fromTag,
      branch,
      invite,
      retransmitAt: now + T1_MS,
      interval: T1_MS,
      toTag: null,
      routes: [],
      remoteTarget: null,
      byeText: null,
      byeSentAt: -1,
      byeBranch: '',
      holdTimer: null,
    };
    this.live.set(callId, call);
    this.endpoint.sendTo(invite, t);
  }

  private retransmit(now: number): void {
    if (this.opts.target.transport !== 'udp') {
      // A reliable transport retransmits nothing, but Timer B (INVITE) and Timer F (BYE) still end what
      // is never answered: a BYE the callee never answers must not keep the run alive.
      for (const c of this.live.values()) {
        if (c.status === 0 && now - c.startedAt > TIMER_B_MS) this.end(c, 'timeout', now);
        else if (c.byeText !== null && c.byeMs === -1 && now - c.byeSentAt > TIMER_B_MS)
          this.end(c, 'answered', now);
      }
      return;
    }
    for (const c of this.live.values()) {
      if (c.status === 0) {
        if (now - c.startedAt > TIMER_B_MS) {
          this.end(c, 'timeout', now);
          continue;
        }
        if (now >= c.retransmitAt) {
          this.endpoint.sendTo(c.invite, this.opts.target);
          c.interval = Math.min(c.interval * 2, 4000);
          c.retransmitAt = now + c.interval;
        }
      } else if (c.byeText !== null && c.byeMs === -1 && now >= c.retransmitAt) {
        if (now - c.byeSentAt > TIMER_B_MS) {
          this.end(c, 'answered', now);
          continue;
        }
        this.sendInDialog(c, c.byeText);
        c.interval = Math.min(c.interval * 2, 4000);
        c.retransmitAt = now + c.interval;
      }
    }
  }

  private onMessage(p: Parsed, peer: Peer): void {
    const c = this.live.get(p.callId);
    if (p.msg.isRequest) {
      // A BYE from the callee's side: answer it and end the call.
      if (p.method === 'BYE' || p.method === 'OPTIONS') {
        const via = p.lines(HeaderId.VIA).join('\r\n');
        const text = [
          'SIP/2.0 200 OK',
          via,
          ...p.lines(HeaderId.FROM),
          ...p.lines(HeaderId.TO),
          ...p.lines(HeaderId.CALL_ID),
          ...p.lines(HeaderId.CSEQ),
          'Content-Length: 0',
        ].join('\r\n');
        this.endpoint.send(`${text}\r\n\r\n`, peer);
        if (c !== undefined && p.method === 'BYE') this.end(c, 'answered', performance.now());
      }
      return;
    }
    if (c === undefined) return;
    const now = performance.now();
    if (p.cseqMethod === 'INVITE') {
      if (p.status < 200) {
        c.retransmitAt = Number.POSITIVE_INFINITY; // RFC 3261 §17.1.1.2: a provisional response stops Timer A
        return;
      }
      if (c.status !== 0) {
        if (p.status < 300) this.sendAck(c, p); // a retransmitted 2xx: ACK again
        return;
      }
      c.status = p.status;
      c.setupMs = now - c.startedAt;
      c.toTag = p.toTag;
      if (p.status < 300) {
        const d = dialogFrom2xx(p);
        c.routes = d.routes;
        c.remoteTarget = d.target;
        this.sendAck(c, p);
        c.holdTimer = setTimeout(() => this.sendBye(c), this.opts.holdMs);
      } else {
        // RFC 3261 §17.1.1.3: the ACK of a non-2xx response is part of the INVITE transaction.
        this.sendNon2xxAck(c, p);
        this.end(c, p.status === 487 ? 'cancelled' : 'failed', now);
      }
    } else if (p.cseqMethod === 'BYE' && p.status >= 200 && c.byeMs === -1) {
      c.byeMs = now - c.byeSentAt;
      this.end(c, 'answered', now);
    }
  }

  private inDialogHead(c: LiveCall, method: string, branch: string, cseq: number): string[] {
    const t = this.opts.target;
    return [
      `${method} ${c.remoteTarget ?? `sip:service@${hostPort(t.host, t.port)}`} SIP/2.0`,
      `Via: SIP/2.0/${t.transport.toUpperCase()} ${this.me()};branch=${branch};rport`,
      ...c.routes.map((r) => `Route: ${r}`),
      'Max-Forwards: 70',
      `From: <sip:caller@${this.me()}>;tag=${c.fromTag}`,
      `To: <sip:service@${hostPort(t.host, t.port)}>${c.toTag ? `;tag=${c.toTag}` : ''}`,
      `Call-ID: ${c.callId}`,
      `CSeq: ${cseq} ${method}`,
    ];
  }

  private sendInDialog(c: LiveCall, text: string): void {
    const hop = nextHopOf(c.routes, c.remoteTarget);
    this.endpoint.sendTo(text, hop ?? this.opts.target);
  }

  private sendAck(c: LiveCall, _res: Parsed): void {
    const lines = this.inDialogHead(c, 'ACK', `z9hG4bK-lg${token()}`, this.cseq);
    this.sendInDialog(c, `${[...lines, 'Content-Length: 0'].join('\r\n')}\r\n\r\n`);
  }

  private sendNon2xxAck(c: LiveCall, res: Parsed): void {
    const t = this.opts.target;
    const lines = [
      `ACK sip:service@${hostPort(t.host, t.port)} SIP/2.0`,
      `Via: SIP/2.0/${t.transport.toUpperCase()} ${this.me()};branch=${c.branch};rport`,
      'Max-Forwards: 70',
      `From: "caller" <sip:caller@${this.me()}>;tag=${c.fromTag}`,
      ...res.lines(HeaderId.TO),
      `Call-ID: ${c.callId}`,
      `CSeq: ${this.cseq} ACK`,
      'Content-Length: 0',
    ];
    this.endpoint.sendTo(`${lines.join('\r\n')}\r\n\r\n`, t);
  }

  private sendBye(c: LiveCall): void {
    if (c.result !== null) return;
    c.byeBranch = `z9hG4bK-lg${token()}`;
    const lines = this.inDialogHead(c, 'BYE', c.byeBranch, this.cseq + 1);
    c.byeText = `${[...lines, 'Content-Length: 0'].join('\r\n')}\r\n\r\n`;
    c.byeSentAt = performance.now();
    c.retransmitAt = c.byeSentAt + T1_MS;
    c.interval = T1_MS;
    this.sendInDialog(c, c.byeText);
  }

  private end(c: LiveCall, result: CallResult, now: number): void {
    if (c.result !== null) return;
    if (c.holdTimer !== null) clearTimeout(c.holdTimer);
    c.holdTimer = null;
    c.result = result;
    c.endedAt = now;
    this.live.delete(c.callId);
    this.done.push({
      callId: c.callId,
      status: c.status,
      result,
      startedAt: c.startedAt,
      setupMs: c.setupMs,
      byeMs: c.byeMs,
      endedAt: now,
    });
  }
}
