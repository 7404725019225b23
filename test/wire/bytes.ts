/** Small builders of SIP bytes for the wire tests (latin1: one char is one byte). */
import type { HeaderId } from '../../src/wire/header-names.ts';
import type { SipMessage } from '../../src/wire/sip-message.ts';

export function bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** A message from a start line and header lines, CRLF-terminated, with a closing empty line and a body. */
export function sipBytes(startLine: string, headers: readonly string[], body = ''): Buffer {
  return bytes(`${startLine}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`);
}

/** The same with bare LF line ends. */
export function sipBytesLf(startLine: string, headers: readonly string[], body = ''): Buffer {
  return bytes(`${startLine}\n${headers.map((h) => `${h}\n`).join('')}\n${body}`);
}

/** A field's value bytes as latin1 text, by field number. */
export function fieldValue(msg: SipMessage, index: number): string {
  return msg.buf.toString('latin1', msg.fieldValueStart(index), msg.fieldValueEnd(index));
}

/** A field's whole line(s) as latin1 text, by field number. */
export function fieldLine(msg: SipMessage, index: number): string {
  return msg.buf.toString('latin1', msg.fieldLineStart(index), msg.fieldLineEnd(index));
}

/** The values of every field line with this id, in order. */
export function allValues(msg: SipMessage, id: HeaderId): string[] {
  const out: string[] = [];
  for (let i = 0; i < msg.fieldCount; i++) if (msg.fieldId(i) === id) out.push(fieldValue(msg, i));
  return out;
}

/** The message's own bytes, buf[start, end). */
export function messageBytes(msg: SipMessage): Buffer {
  return msg.buf.subarray(msg.start, msg.end);
}
