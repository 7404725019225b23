import { Buffer } from 'node:buffer';

/**
 * Redaction of stored messages, applied once when a message enters the store
 * (so the memory, the JSON API and the pcap never hold the originals). Only
 * the header section is touched: the body, and so Content-Length, stay as
 * they were.
 *
 *   users: the user part of every sip:/sips: URI (`sip:alice@host` →
 *          `sip:redacted@host`), tel: numbers, and the display names of the
 *          identity headers, quoted or not (RFC 3261 §25.1 display-name is
 *          `*(token LWS) / quoted-string`: `To: +15551234567 <sip:...>`).
 *   auth:  the credentials of Authorization and Proxy-Authorization (the
 *          scheme is kept: `Digest redacted`).
 */
export interface RedactOptions {
  users: boolean;
  auth: boolean;
}

export const REDACTED = 'redacted';

// RFC 3261 §25.1: userinfo ends at "@"; it never holds whitespace, "<", ">" or a double quote.
const SIP_USER = /\b(sips?):([^@\s<>"]+)@/gi;
const TEL_NUMBER = /\b(tel):([^;>\s,]+)/gi;
// §7.3.1: a field may be folded onto lines starting with whitespace; the whole value goes.
const AUTH_FIELD = /^((?:proxy-)?authorization[ \t]*:[ \t]*)([!-~]+)?[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*/gim;
const IDENTITY_FIELD =
  /^((?:from|f|to|t|contact|m|p-asserted-identity|p-preferred-identity|remote-party-id|referred-by|diversion)[ \t]*:)([^\r\n]*)/gim;
const QUOTED = /"(?:[^"\\]|\\.)*"/g;
// A token display name: the words before "<" at the start of the value or after a comma (Contact lists).
const TOKEN_NAME = /(^|,)([ \t]*)([^"<>,;\s][^"<>,;]*?)([ \t]*)</g;

function headerEnd(bytes: Buffer): number {
  const crlf = bytes.indexOf('\r\n\r\n');
  if (crlf !== -1) return crlf + 2;
  const lf = bytes.indexOf('\n\n');
  return lf === -1 ? bytes.length : lf + 1;
}

/** The message with the chosen parts replaced; the same Buffer when nothing changed. */
export function redactMessage(bytes: Buffer, opts: RedactOptions): Buffer {
  if (!opts.users && !opts.auth) return bytes;
  const end = headerEnd(bytes);
  const head = bytes.toString('latin1', 0, end);
  let out = head;
  if (opts.auth) {
    out = out.replace(AUTH_FIELD, (_m, name: string, scheme: string | undefined) =>
      scheme === undefined ? `${name}${REDACTED}` : `${name}${scheme} ${REDACTED}`,
    );
  }
  if (opts.users) {
    out = out
      .replace(SIP_USER, (_m, scheme: string) => `${scheme}:${REDACTED}@`)
      .replace(TEL_NUMBER, (_m, scheme: string) => `${scheme}:${REDACTED}`)
      .replace(
        IDENTITY_FIELD,
        (_m, name: string, value: string) =>
          `${name}${value
            .replace(QUOTED, `"${REDACTED}"`)
            .replace(
              TOKEN_NAME,
              (_t, sep: string, before: string, _n: string, after: string) =>
                `${sep}${before}${REDACTED}${after}<`,
            )}`,
      );
  }
  if (out === head) return bytes;
  return Buffer.concat([Buffer.from(out, 'latin1'), bytes.subarray(end)]);
}
