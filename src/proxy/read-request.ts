import type { Buffer } from 'node:buffer';
import { HeaderId } from '../wire/header-names.ts';
import { KNOWN_METHODS } from '../wire/methods.ts';
import { type CSeqValue, readCSeq, readMaxForwards } from '../wire/read-cseq.ts';
import { hasAddress, readTag } from '../wire/read-name-addr.ts';
import { checkSipUri } from '../wire/read-sip-uri.ts';
import { readTokenList } from '../wire/read-token-list.ts';
import { readVia, type ViaValue } from '../wire/read-via.ts';
import type { ScanResult } from '../wire/scan.ts';
import { ScanCode } from '../wire/scan-codes.ts';
import type { SipMessage } from '../wire/sip-message.ts';
import { type Rejection, statusForScanCode } from './outcomes.ts';

/** What the proxy reads from a request, once. */
export interface RequestFacts {
  msg: SipMessage;
  method: string;
  topVia: ViaValue;
  /** Field index of the top Via line. */
  topViaField: number;
  cseq: CSeqValue;
  callId: string;
  fromTag: string | null;
  toTag: string | null;
  /** -1 when absent. */
  maxForwards: number;
}

const KNOWN: ReadonlySet<string> = new Set(KNOWN_METHODS);
const REQUIRED: readonly [HeaderId, string][] = [
  [HeaderId.CALL_ID, 'missing-call-id'],
  [HeaderId.CSEQ, 'missing-cseq'],
  [HeaderId.FROM, 'missing-from'],
  [HeaderId.TO, 'missing-to'],
  [HeaderId.VIA, 'missing-via'],
];

function reject(status: number, reason: string, extra: string | null = null): Rejection {
  return { status, reason, extra };
}

/**
 * RFC 3261 §16.3 request validation, limited to what sipspan uses: "Any other
 * components, well-formed or not, SHOULD be ignored and remain unchanged when
 * the message is forwarded." Returns the facts, or the rejection.
 *
 * Order follows §16.3: syntax (1), URI scheme (2), Max-Forwards (3, left to
 * the caller), loop (4, caller), Proxy-Require (5).
 */
export function readRequest(
  result: ScanResult,
  rejectProxyRequire: boolean,
  strict: boolean,
): RequestFacts | Rejection {
  const msg = result.message!;
  if (result.code !== ScanCode.OK) return reject(statusForScanCode(result.code), result.code);
  const buf = msg.buf;

  for (const [id, reason] of REQUIRED) if (!msg.has(id)) return reject(400, reason);
  // RFC 4475 §3.3.8: several Call-ID / CSeq / Max-Forwards / From / To lines are a 400.
  if (
    msg.count(HeaderId.CALL_ID) > 1 ||
    msg.count(HeaderId.CSEQ) > 1 ||
    msg.count(HeaderId.FROM) > 1 ||
    msg.count(HeaderId.TO) > 1 ||
    msg.count(HeaderId.MAX_FORWARDS) > 1
  ) {
    return reject(400, 'duplicate-field');
  }

  const viaField = msg.fieldIndex(HeaderId.VIA);
  // Its branch is read in place where it is used (the transaction hash): no string is made of it.
  const topVia = readVia(buf, msg.fieldValueStart(viaField), msg.fieldValueEnd(viaField), null, false);
  if (topVia === null) return reject(400, 'bad-via');

  const cseqField = msg.fieldIndex(HeaderId.CSEQ);
  const cseq = readCSeq(buf, msg.fieldValueStart(cseqField), msg.fieldValueEnd(cseqField));
  if (cseq === null) return reject(400, 'bad-cseq');
  const method = msg.method;
  if (cseq.method !== method) {
    // RFC 4475 §3.1.2.18: with an unknown method, 501 is the better answer.
    return KNOWN.has(method) ? reject(400, 'cseq-method-mismatch') : reject(501, 'cseq-method-mismatch');
  }

  let maxForwards = -1;
  const mfField = msg.fieldIndex(HeaderId.MAX_FORWARDS);
  if (mfField !== -1) {
    maxForwards = readMaxForwards(buf, msg.fieldValueStart(mfField), msg.fieldValueEnd(mfField));
    if (maxForwards < 0) return reject(400, 'bad-max-forwards');
  }

  const callId = msg.value(HeaderId.CALL_ID)!;
  if (callId.length === 0) return reject(400, 'missing-call-id');

  // Request-URI (RFC 3261 §16.3 step 2, RFC 4475 §3.1.2.7, §3.1.2.11, RFC 5118 §4.2).
  const us = msg.uriStart;
  if (buf[us] === 0x3c) return reject(400, 'bad-request-uri');
  if (isSipScheme(buf, us, msg.uriEnd)) {
    if (checkSipUri(buf, us, msg.uriEnd) !== 0) return reject(400, 'bad-request-uri');
  }

  const fromField = msg.fieldIndex(HeaderId.FROM);
  const toField = msg.fieldIndex(HeaderId.TO);
  if (strict) {
    if (!hasAddress(buf, msg.fieldValueStart(fromField), msg.fieldValueEnd(fromField)))
      return reject(400, 'bad-from');
    if (!hasAddress(buf, msg.fieldValueStart(toField), msg.fieldValueEnd(toField)))
      return reject(400, 'bad-to');
  }

  // RFC 3261 §16.3 step 5: "If the request contains a Proxy-Require header field with one or
  // more option-tags this element does not understand, the element MUST return a 420".
  if (rejectProxyRequire && msg.has(HeaderId.PROXY_REQUIRE) && method !== 'ACK' && method !== 'CANCEL') {
    const tags: string[] = [];
    for (let i = 0; i < msg.fieldCount; i++) {
      if (msg.fieldId(i) === HeaderId.PROXY_REQUIRE) {
        for (const t of readTokenList(buf, msg.fieldValueStart(i), msg.fieldValueEnd(i))) tags.push(t);
      }
    }
    if (tags.length > 0)
      return reject(420, 'unsupported-proxy-require', `Unsupported: ${tags.join(', ')}\r\n`);
  }

  return {
    msg,
    method,
    topVia,
    topViaField: viaField,
    cseq,
    callId,
    fromTag: readTag(buf, msg.fieldValueStart(fromField), msg.fieldValueEnd(fromField)),
    toTag: readTag(buf, msg.fieldValueStart(toField), msg.fieldValueEnd(toField)),
    maxForwards,
  };
}

export function isRejection(x: RequestFacts | Rejection): x is Rejection {
  return (x as Rejection).status !== undefined;
}

function isSipScheme(buf: Buffer, start: number, end: number): boolean {
  if (end - start < 4) return false;
  const a = buf[start] | 0x20;
  const b = buf[start + 1] | 0x20;
  const c = buf[start + 2] | 0x20;
  return (
    a === 0x73 &&
    b === 0x69 &&
    c === 0x70 &&
    (buf[start + 3] === 0x3a || ((buf[start + 3] | 0x20) === 0x73 && buf[start + 4] === 0x3a))
  );
}
