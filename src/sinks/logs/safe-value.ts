/**
 * Wire values made safe for a log line: bounded, and with control bytes shown
 * as escapes (`\r`, `\n`, `\x00`...) so a CR/LF/NUL off the wire can never
 * split or forge a line, even in tools that unescape JSON. Values arrive
 * latin1-decoded, so every byte maps to one character; bytes ≥ 0x80 are kept
 * as their code points (valid UTF-8 in the output).
 */
export function safeValue(value: string, maxChars: number): string {
  let out = '';
  const n = Math.min(value.length, maxChars);
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) {
      out +=
        c === 0x0d
          ? '\\r'
          : c === 0x0a
            ? '\\n'
            : c === 0x09
              ? '\\t'
              : `\\x${c.toString(16).padStart(2, '0')}`;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += '\\ufffd';
    } else {
      out += value[i];
    }
  }
  return value.length > maxChars ? `${out}…` : out;
}

/** `sip:alice@host` → `sip:***@host` (logs.redact_users). */
export function redactUser(uri: string): string {
  return uri.replace(/^(sips?:)[^@]*@/i, '$1***@');
}
