import { Buffer } from 'node:buffer';

/**
 * Wire values made safe for a log line.
 *
 * Values off the wire arrive latin1-decoded (one character per byte). SIP is
 * UTF-8 (RFC 3261 §7.3.1), so the bytes are read back as UTF-8:
 *
 *   printable ASCII              kept
 *   `\`                          `\\`      (so every escape below is unambiguous)
 *   CR LF TAB                    `\r` `\n` `\t`
 *   other C0, DEL, C1 controls,  `\uXXXX`  (a character that was validly encoded)
 *   U+2028/2029, bidi controls
 *   a valid UTF-8 sequence       the character it encodes (`José` stays `José`)
 *   a byte that is not valid     `\xNN`    (the raw byte, never a U+FFFD guess)
 *   UTF-8 (stray continuation,
 *   overlong, surrogate, > U+10FFFF)
 *
 * A value that is already a JS string (a character above U+00FF) is read as
 * UTF-16: pairs are kept, a lone surrogate becomes `\uXXXX`.
 *
 * The result is bounded to `maxBytes` UTF-8 bytes: a longer one is cut at a
 * character boundary and ends with `…` (the marker's 3 bytes included). Only
 * the first ~maxBytes input characters are ever read, whatever the value's
 * length. After JSON encoding no CR, LF, NUL or lone surrogate can reach the
 * line, even for a reader that unescapes JSON strings.
 */
export const TRUNCATED = '…';
const TRUNCATED_BYTES = 3;

export function safeValue(value: string, maxBytes: number): string {
  const n = value.length;
  // Fast path: printable ASCII within the bound is returned as is (no allocation).
  if (n <= maxBytes) {
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x5c) break;
    }
    if (i === n) return value;
  }
  return escapeSlow(value, maxBytes);
}

function escapeSlow(value: string, maxBytes: number): string {
  const n = value.length;
  const cutBudget = maxBytes - TRUNCATED_BYTES;
  let out = '';
  let outBytes = 0;
  /** Length of the output prefix that fits with room for the marker. */
  let cutLen = 0;
  let i = 0;
  while (i < n) {
    const c = value.charCodeAt(i);
    let piece: string;
    let pieceBytes: number;
    let used = 1;
    let isAsciiRun = false;
    if (c >= 0x20 && c < 0x7f && c !== 0x5c) {
      // A run of printable ASCII in one slice.
      let j = i + 1;
      while (j < n) {
        const d = value.charCodeAt(j);
        if (d < 0x20 || d > 0x7e || d === 0x5c) break;
        j++;
      }
      used = j - i;
      piece = used === 1 ? value[i] : value.slice(i, j);
      pieceBytes = used;
      isAsciiRun = true;
    } else if (c === 0x5c) {
      piece = '\\\\';
      pieceBytes = 2;
    } else if (c < 0x80) {
      piece = c === 0x0d ? '\\r' : c === 0x0a ? '\\n' : c === 0x09 ? '\\t' : unicodeEscape(c);
      pieceBytes = piece.length;
    } else if (c <= 0xff) {
      const len = utf8SequenceLength(value, i, n);
      if (len === 0) {
        piece = `\\x${hex2(c)}`;
        pieceBytes = 4;
      } else {
        const cp = decodeUtf8(value, i, len);
        used = len;
        if (mustEscape(cp)) {
          piece = unicodeEscape(cp);
          pieceBytes = piece.length;
        } else {
          piece = String.fromCodePoint(cp);
          pieceBytes = len;
        }
      }
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && isLowSurrogate(value.charCodeAt(i + 1))) {
      piece = value.slice(i, i + 2);
      pieceBytes = 4;
      used = 2;
    } else if ((c >= 0xd800 && c <= 0xdfff) || mustEscape(c)) {
      piece = unicodeEscape(c);
      pieceBytes = piece.length;
    } else {
      piece = value[i];
      pieceBytes = c < 0x800 ? 2 : 3;
    }

    if (outBytes + pieceBytes <= cutBudget) cutLen = out.length + piece.length;
    else if (isAsciiRun && outBytes < cutBudget) cutLen = out.length + (cutBudget - outBytes);
    if (outBytes + pieceBytes > maxBytes) {
      // The value does not fit: cut where the marker still fits (never inside an escape or a character).
      return (
        (cutLen <= out.length ? out.slice(0, cutLen) : out + piece.slice(0, cutLen - out.length)) + TRUNCATED
      );
    }
    out += piece;
    outBytes += pieceBytes;
    i += used;
  }
  return out;
}

/** How many input characters (bytes) form one valid UTF-8 sequence at i, or 0 (RFC 3629 §4). */
function utf8SequenceLength(s: string, i: number, n: number): number {
  const b0 = s.charCodeAt(i);
  if (b0 >= 0xc2 && b0 <= 0xdf) return i + 1 < n && isCont(s.charCodeAt(i + 1)) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (i + 2 >= n) return 0;
    const b1 = s.charCodeAt(i + 1);
    const lo = b0 === 0xe0 ? 0xa0 : 0x80; // no overlong forms
    const hi = b0 === 0xed ? 0x9f : 0xbf; // no UTF-16 surrogates
    return b1 >= lo && b1 <= hi && isCont(s.charCodeAt(i + 2)) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (i + 3 >= n) return 0;
    const b1 = s.charCodeAt(i + 1);
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf; // nothing above U+10FFFF
    return b1 >= lo && b1 <= hi && isCont(s.charCodeAt(i + 2)) && isCont(s.charCodeAt(i + 3)) ? 4 : 0;
  }
  return 0;
}

function decodeUtf8(s: string, i: number, len: number): number {
  const b0 = s.charCodeAt(i);
  if (len === 2) return ((b0 & 0x1f) << 6) | (s.charCodeAt(i + 1) & 0x3f);
  if (len === 3)
    return ((b0 & 0x0f) << 12) | ((s.charCodeAt(i + 1) & 0x3f) << 6) | (s.charCodeAt(i + 2) & 0x3f);
  return (
    ((b0 & 0x07) << 18) |
    ((s.charCodeAt(i + 1) & 0x3f) << 12) |
    ((s.charCodeAt(i + 2) & 0x3f) << 6) |
    (s.charCodeAt(i + 3) & 0x3f)
  );
}

const isCont = (b: number) => b >= 0x80 && b <= 0xbf;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** Code points shown as escapes even when validly encoded: controls, line separators, bidi overrides. */
function mustEscape(cp: number): boolean {
  return (
    cp < 0x20 ||
    (cp >= 0x7f && cp <= 0x9f) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x200e ||
    cp === 0x200f ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    cp === 0xfeff
  );
}

function hex2(c: number): string {
  return c < 0x10 ? `0${c.toString(16)}` : c.toString(16);
}

function unicodeEscape(c: number): string {
  return `\\u${c.toString(16).padStart(4, '0')}`;
}

/** Cut an already-safe string to maxBytes UTF-8 bytes at a character boundary, marking the cut. */
export function truncateBytes(s: string, maxBytes: number): string {
  if (s.length * 3 <= maxBytes || Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  const budget = Math.max(0, maxBytes - TRUNCATED_BYTES);
  let bytes = 0;
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length;
    const b = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (bytes + b > budget) break;
    bytes += b;
    i += pair ? 2 : 1;
  }
  return s.slice(0, i) + TRUNCATED;
}
