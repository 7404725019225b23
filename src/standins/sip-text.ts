import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { HeaderId } from '../wire/header-names.ts';
import type { Parsed } from './sip-endpoint.ts';

export const REASONS: Record<number, string> = {
  100: 'Trying',
  180: 'Ringing',
  183: 'Session Progress',
  200: 'OK',
  404: 'Not Found',
  408: 'Request Timeout',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  486: 'Busy Here',
  487: 'Request Terminated',
  500: 'Server Internal Error',
  503: 'Service Unavailable',
  603: 'Decline',
};

export function token(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A response to a request as a UAS builds it (RFC 3261 §8.2.6): Via, From,
 * Call-ID, CSeq copied; To with our tag; Record-Route copied on dialog-creating
 * answers (§12.1.1) so the caller's in-dialog requests follow the proxies.
 */
export function buildResponse(
  req: Parsed,
  status: number,
  opts: {
    toTag?: string | null;
    contact?: string;
    body?: string;
    contentType?: string;
    extra?: string[];
  } = {},
): string {
  const lines = [`SIP/2.0 ${status} ${REASONS[status] ?? 'Unknown'}`];
  lines.push(...req.lines(HeaderId.VIA));
  if (status > 100 && req.method !== 'CANCEL' && req.method !== 'BYE')
    lines.push(...req.lines(HeaderId.RECORD_ROUTE));
  lines.push(...req.lines(HeaderId.FROM));
  const to = req.lines(HeaderId.TO)[0] ?? 'To: <sip:unknown@invalid>';
  lines.push(req.toTag === null && opts.toTag && status > 100 ? `${to};tag=${opts.toTag}` : to);
  lines.push(...req.lines(HeaderId.CALL_ID));
  lines.push(...req.lines(HeaderId.CSEQ));
  if (opts.contact) lines.push(`Contact: ${opts.contact}`);
  for (const e of opts.extra ?? []) lines.push(e);
  const body = opts.body ?? '';
  if (body !== '') lines.push(`Content-Type: ${opts.contentType ?? 'application/sdp'}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

export function sdpFor(host: string, sessionId: string, port = 6000): string {
  const ip = host.includes(':') ? `IP6 ${host}` : `IP4 ${host}`;
  return [
    'v=0',
    `o=- ${sessionId} 1 IN ${ip}`,
    's=-',
    `c=IN ${ip}`,
    't=0 0',
    `m=audio ${port} RTP/AVP 0`,
    'a=rtpmap:0 PCMU/8000',
    '',
  ].join('\r\n');
}

/** The route set and remote target a UAC learns from a 2xx (RFC 3261 §12.1.2): Record-Route reversed, Contact. */
export function dialogFrom2xx(res: Parsed): { routes: string[]; target: string | null } {
  return { routes: listValues(res, HeaderId.RECORD_ROUTE).reverse(), target: contactUri(res) };
}

/** The route set a UAS learns from the request (RFC 3261 §12.1.1): Record-Route in order. */
export function dialogFromRequest(req: Parsed): { routes: string[]; target: string | null } {
  return { routes: listValues(req, HeaderId.RECORD_ROUTE), target: contactUri(req) };
}

function contactUri(p: Parsed): string | null {
  const contact = p.value(HeaderId.CONTACT);
  const m = contact === null ? null : /<([^>]+)>/.exec(contact);
  return m !== null ? m[1] : contact;
}

/** Every value of a header that takes a list (Route, Record-Route), in order, across lines and commas. */
export function listValues(p: Parsed, id: HeaderId): string[] {
  const out: string[] = [];
  for (const line of p.lines(id))
    for (const part of splitTop(line.slice(line.indexOf(':') + 1))) out.push(part.trim());
  return out;
}

/** A header value's comma-separated parts, commas inside <...> kept. */
function splitTop(v: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of v) {
    if (ch === '<') depth++;
    if (ch === '>') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur);
  return out;
}

/** Where to send a request in a dialog: the first Route (loose routing), else the remote target. */
export function nextHopOf(
  routes: string[],
  target: string | null,
): { host: string; port: number; transport: 'udp' | 'tcp' } | null {
  const uri = routes.length > 0 ? (/<([^>]+)>/.exec(routes[0])?.[1] ?? routes[0]) : target;
  if (uri === null || uri === undefined) return null;
  const m = /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?([^>]*)$/.exec(uri);
  if (m === null) return null;
  const host = m[1].replace(/^\[|\]$/g, '');
  const transport = /;transport=tcp/i.test(m[3]) ? 'tcp' : 'udp';
  return { host, port: m[2] ? Number(m[2]) : 5060, transport };
}
