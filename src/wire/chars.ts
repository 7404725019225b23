/** Byte classes of RFC 3261 §25.1, as lookup tables: one array read per byte in the scanner. */
export const SP = 0x20;
export const HTAB = 0x09;
export const CR = 0x0d;
export const LF = 0x0a;
export const COLON = 0x3a;
export const SEMI = 0x3b;
export const COMMA = 0x2c;
export const DQUOTE = 0x22;
export const LAQUOT = 0x3c;
export const RAQUOT = 0x3e;
export const BACKSLASH = 0x5c;
export const EQUAL = 0x3d;
export const SLASH = 0x2f;
export const LBRACKET = 0x5b;
export const RBRACKET = 0x5d;
export const AT = 0x40;
export const QMARK = 0x3f;

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const IS_TOKEN = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) IS_TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) IS_TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) IS_TOKEN[c] = 1;
for (const ch of "-.!%*_+`'~") IS_TOKEN[ch.charCodeAt(0)] = 1;

export function isWsp(b: number): boolean {
  return b === SP || b === HTAB;
}

/** Linear whitespace inside a (possibly folded) header value. */
export function isLws(b: number): boolean {
  return b === SP || b === HTAB || b === CR || b === LF;
}

export function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}
