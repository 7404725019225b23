import { Buffer } from 'node:buffer';
import { HeaderId } from '../wire/header-names.ts';
import { readCSeq } from '../wire/read-cseq.ts';
import { readTag } from '../wire/read-name-addr.ts';
import type { SipMessage } from '../wire/sip-message.ts';
import { FNV_SEED_1, FNV_SEED_2, hashBytes, hashHex } from './branch.ts';
import { REASON_PHRASES } from './outcomes.ts';

const COPIED: readonly HeaderId[] = [
  HeaderId.VIA,
  HeaderId.FROM,
  HeaderId.TO,
  HeaderId.CALL_ID,
  HeaderId.CSEQ,
];
const CONTENT_LENGTH_0 = Buffer.from('Content-Length: 0\r\n\r\n', 'latin1');
const SERVER_LINE = Buffer.from('Server: sipspan\r\n', 'latin1');

/**
 * The To tag of sipspan's own answers: a digest of what a request, its retransmissions and the ACK
 * of a failure answer share (Call-ID, From tag, CSeq number: RFC 3261 §17.1.1.3), so a
 * retransmission gets the same answer and that ACK is known as one (isAckOfOwnReply), wherever
 * sipspan runs: the digest has no per-process key. A request without those fields is hashed whole.
 */
export function ownReplyTag(msg: SipMessage): string {
  const buf = msg.buf;
  const cid = msg.fieldIndex(HeaderId.CALL_ID);
  const from = msg.fieldIndex(HeaderId.FROM);
  const cseqField = msg.fieldIndex(HeaderId.CSEQ);
  const cseq =
    cseqField === -1 ? null : readCSeq(buf, msg.fieldValueStart(cseqField), msg.fieldValueEnd(cseqField));
  if (cid === -1 || from === -1 || cseq === null) {
    const whole = hashBytes(buf, msg.start, Math.min(msg.end, msg.bodyStart), FNV_SEED_1, FNV_SEED_2);
    return `ss${hashHex(whole[0], whole[1], 12)}`;
  }
  const h = hashBytes(buf, msg.fieldValueStart(cid), msg.fieldValueEnd(cid), FNV_SEED_1, FNV_SEED_2);
  let h1 = h[0];
  let h2 = h[1];
  const s = `|${readTag(buf, msg.fieldValueStart(from), msg.fieldValueEnd(from)) ?? ''}|${cseq.seq}`;
  for (let i = 0; i < s.length; i++) {
    h1 = Math.imul(h1 ^ s.charCodeAt(i), 0x01000193);
    h2 = Math.imul(h2 ^ s.charCodeAt(i), 0x01000193) ^ (h2 >>> 13);
  }
  return `ss${hashHex(h1 >>> 0, h2 >>> 0, 12)}`;
}

/** An ACK of an answer sipspan gave itself (its To tag is sipspan's): it ends there, like the request. */
export function isAckOfOwnReply(msg: SipMessage, toTag: string | null): boolean {
  if (toTag === null || toTag.length !== 14 || !toTag.startsWith('ss')) return false;
  return toTag === ownReplyTag(msg);
}

/**
 * A response sipspan answers itself, statelessly (RFC 3261 §8.2.6, §16.3):
 * Via, From, To, Call-ID and CSeq are copied byte for byte from the request,
 * and a To tag (ownReplyTag) is added when the request had none.
 *
 * `ownVia`: the request is sipspan's forwarded copy, whose first Via line is
 * sipspan's own: the answer leaves it out, as a response passing back would.
 *
 * Returns the response as chunks, or null when the request has no Via to
 * answer along (then it can only be dropped).
 */
export function buildStatelessReply(
  msg: SipMessage,
  status: number,
  extra: string | null,
  ownVia = false,
): Buffer[] | null {
  const skipped = ownVia ? msg.fieldIndex(HeaderId.VIA) : -1;
  if (!msg.has(HeaderId.VIA) || (ownVia && msg.fieldIndex(HeaderId.VIA, 1) === -1)) return null;
  const buf = msg.buf;
  const out: Buffer[] = [Buffer.from(`SIP/2.0 ${status} ${REASON_PHRASES[status] ?? 'Error'}\r\n`, 'latin1')];
  for (let i = 0; i < msg.fieldCount; i++) {
    const id = msg.fieldId(i);
    if (i === skipped || !COPIED.includes(id)) continue;
    const lineStart = msg.fieldLineStart(i);
    const lineEnd = msg.fieldLineEnd(i);
    if (id === HeaderId.TO && readTag(buf, msg.fieldValueStart(i), msg.fieldValueEnd(i)) === null) {
      const ve = msg.fieldValueEnd(i);
      out.push(
        buf.subarray(lineStart, ve),
        Buffer.from(`;tag=${ownReplyTag(msg)}`, 'latin1'),
        buf.subarray(ve, lineEnd),
      );
    } else {
      out.push(buf.subarray(lineStart, lineEnd));
    }
    // A field line that ended in a bare LF (tolerated on input) must end in CRLF on output.
    const last = out[out.length - 1];
    if (
      last.length > 0 &&
      last[last.length - 1] === 0x0a &&
      (last.length < 2 || last[last.length - 2] !== 0x0d)
    ) {
      out[out.length - 1] = Buffer.concat([last.subarray(0, last.length - 1), Buffer.from('\r\n')]);
    }
  }
  out.push(SERVER_LINE);
  if (extra !== null) out.push(Buffer.from(extra, 'latin1'));
  out.push(CONTENT_LENGTH_0);
  return out;
}
