import type { Buffer } from 'node:buffer';
import { scanIndexed } from './header-index.ts';
import { DEFAULT_SCAN_LIMITS, type ScanLimits, type ScanResult, scanMessage } from './scan.ts';
import { ScanCode } from './scan-codes.ts';
import type { SipMessage } from './sip-message.ts';

/**
 * A UDP datagram carries exactly one message (RFC 3261 §18.3).
 *
 * "If the transport is datagram ... octets beyond [Content-Length] MUST be
 * discarded" (RFC 4475 §3.1.1.8 dblreq), and a body shorter than Content-Length
 * is an error (§3.1.2.2 clerr). Without Content-Length the body runs to the end
 * of the datagram.
 *
 * `into`: a message to scan into instead of a new one (see SipMessage.reset).
 */
export function frameDatagram(
  datagram: Buffer,
  limits: ScanLimits = DEFAULT_SCAN_LIMITS,
  into: SipMessage | null = null,
): ScanResult {
  return frameDatagramAt(datagram, 0, datagram.length, limits, into);
}

/**
 * The datagram buf[start, end), framed where it lies: a batch of reads holds many datagrams in one
 * buffer, and a Buffer object per datagram would be the only thing made for it.
 *
 * `index`: the batch's header index (src/wire/header-index.ts), this datagram's at index[indexAt].
 */
export function frameDatagramAt(
  buf: Buffer,
  start: number,
  end: number,
  limits: ScanLimits = DEFAULT_SCAN_LIMITS,
  into: SipMessage | null = null,
  index: Int32Array | null = null,
  indexAt = 0,
): ScanResult {
  const result =
    index === null
      ? scanMessage(buf, start, end, limits, into)
      : scanIndexed(buf, start, end, index, indexAt, limits, into);
  const msg = result.message;
  if (msg === null) return result;
  if (result.code !== ScanCode.OK) {
    if (msg.bodyStart > 0 && msg.contentLength >= 0 && msg.bodyStart + msg.contentLength <= end) {
      msg.end = msg.bodyStart + msg.contentLength;
    }
    return result;
  }
  if (msg.contentLength >= 0) {
    const available = end - msg.bodyStart;
    if (available < msg.contentLength) return { code: ScanCode.BODY_TRUNCATED, message: msg, at: end };
    msg.end = msg.bodyStart + msg.contentLength;
  }
  return result;
}
