import type { Buffer } from 'node:buffer';
import { frameDatagram } from '../../wire/frame-datagram.ts';
import { HeaderId } from '../../wire/header-names.ts';
import { readCSeq } from '../../wire/read-cseq.ts';
import { readTag, readUser } from '../../wire/read-name-addr.ts';

/** What the call view needs to know of one captured message; read once, when a call is first looked at. */
export interface MessageInfo {
  isRequest: boolean;
  /** Request method, or the CSeq method of a response. */
  method: string;
  /** Response status, 0 for requests. */
  status: number;
  reason: string;
  cseq: number;
  cseqMethod: string;
  fromUser: string | null;
  toUser: string | null;
  toTag: string | null;
  /** `INVITE`, `180 Ringing`: the arrow's label. */
  label: string;
}

const UNREADABLE: MessageInfo = Object.freeze({
  isRequest: false,
  method: '',
  status: 0,
  reason: '',
  cseq: -1,
  cseqMethod: '',
  fromUser: null,
  toUser: null,
  toTag: null,
  label: '(unreadable)',
});

/** Reads the start line, CSeq, From/To users and To tag of a captured message (a sipspan-framed message, so it scans). */
export function readMessageInfo(bytes: Buffer): MessageInfo {
  const r = frameDatagram(bytes);
  const msg = r.message;
  if (msg === null) return UNREADABLE;
  const buf = msg.buf;
  const cseqI = msg.fieldIndex(HeaderId.CSEQ);
  const cseq = cseqI === -1 ? null : readCSeq(buf, msg.fieldValueStart(cseqI), msg.fieldValueEnd(cseqI));
  const fromI = msg.fieldIndex(HeaderId.FROM);
  const toI = msg.fieldIndex(HeaderId.TO);
  const isRequest = msg.isRequest;
  const method = isRequest ? msg.method : (cseq?.method ?? '');
  const status = isRequest ? 0 : msg.statusCode;
  const reason = isRequest ? '' : msg.reason;
  return {
    isRequest,
    method,
    status,
    reason,
    cseq: cseq?.seq ?? -1,
    cseqMethod: cseq?.method ?? '',
    fromUser: fromI === -1 ? null : readUser(buf, msg.fieldValueStart(fromI), msg.fieldValueEnd(fromI)),
    toUser: toI === -1 ? null : readUser(buf, msg.fieldValueStart(toI), msg.fieldValueEnd(toI)),
    toTag: toI === -1 ? null : readTag(buf, msg.fieldValueStart(toI), msg.fieldValueEnd(toI)),
    label: isRequest ? method : `${status} ${reason}`.trim(),
  };
}
