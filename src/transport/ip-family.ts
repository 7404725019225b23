import { isIP } from 'node:net';

const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * `net.isIP`: 4, 6 or 0 (not an IP literal). Every forwarded message asks it of the address it goes
 * to, and `net.isIP` runs a regular expression each time. An IPv4 literal is recognised here by a
 * scan that accepts what net.isIPv4 accepts (four decimal parts of 0-255, no leading zeros); any other
 * text (IPv6, a name, anything malformed) is left to `net.isIP`.
 */
export function ipFamily(text: string): 0 | 4 | 6 {
  return isDottedQuad(text) ? 4 : (isIP(text) as 0 | 4 | 6);
}

/** net.isIPv4, without a regular expression. */
export function isDottedQuad(text: string): boolean {
  const n = text.length;
  if (n < 7 || n > 15) return false;
  let dots = 0;
  let digits = 0;
  let value = 0;
  let lead = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= ZERO && c <= NINE) {
      if (digits === 0) lead = c;
      else if (lead === ZERO) return false;
      value = value * 10 + (c - ZERO);
      if (++digits > 3 || value > 255) return false;
    } else if (c === DOT && digits > 0 && ++dots <= 3) {
      digits = 0;
      value = 0;
    } else {
      return false;
    }
  }
  return dots === 3 && digits > 0;
}
