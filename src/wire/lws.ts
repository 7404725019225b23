import { CR, DQUOTE, HTAB, LAQUOT, LF, RAQUOT, SP } from './chars.ts';

/** Skip linear whitespace (SP, HTAB and the CRLF of folded lines). */
export function skipLws(buf: Uint8Array, p: number, end: number): number {
  while (p < end) {
    const b = buf[p];
    if (b !== SP && b !== HTAB && b !== CR && b !== LF) break;
    p++;
  }
  return p;
}

export function trimLwsRight(buf: Uint8Array, start: number, end: number): number {
  while (end > start) {
    const b = buf[end - 1];
    if (b !== SP && b !== HTAB && b !== CR && b !== LF) break;
    end--;
  }
  return end;
}

/** Skip a quoted-string starting at the DQUOTE at p; returns the offset after the closing quote, or -1 if unterminated. */
export function skipQuoted(buf: Uint8Array, p: number, end: number): number {
  p++;
  while (p < end) {
    const b = buf[p];
    if (b === 0x5c) {
      p += 2;
      continue;
    }
    if (b === DQUOTE) return p + 1;
    p++;
  }
  return -1;
}

/**
 * End of the first comma-separated value in buf[start, end): the offset of the
 * separating comma, or `end`. Commas inside quoted strings and <...> do not count
 * (RFC 3261 §7.3.1: several values of one field may share a line).
 */
export function valueEnd(buf: Uint8Array, start: number, end: number): number {
  let p = start;
  while (p < end) {
    const b = buf[p];
    if (b === 0x2c) return p;
    if (b === DQUOTE) {
      const q = skipQuoted(buf, p, end);
      if (q === -1) return end;
      p = q;
      continue;
    }
    if (b === LAQUOT) {
      while (p < end && buf[p] !== RAQUOT) p++;
    }
    p++;
  }
  return end;
}
