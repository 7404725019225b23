/**
 * The RFC 4475 / RFC 5118 torture-test corpus as raw bytes.
 *
 * Files are read as Buffers and never decoded: several hold NUL bytes, bytes
 * >= 0x80 or bare LFs, and a round trip through a JS string would change them
 * (see ../shared/sip-corpus/README.md).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export type CorpusSet = 'rfc4475' | 'rfc5118';

export interface CorpusFile {
  set: CorpusSet;
  /** File name without `.dat` (`wsinv`, `ipv6-good`). */
  name: string;
  /** The bytes exactly as archived. */
  raw: Buffer;
  /**
   * What a correct sender would have put on the wire. For RFC 4475 this is the
   * raw file; for RFC 5118 it is `toWireForm(raw)`.
   */
  wire: Buffer;
}

/** `<repo>/../shared/sip-corpus`: test/support is two levels below the repo root. */
export const CORPUS_DIR = resolve(import.meta.dirname, '..', '..', '..', 'shared', 'sip-corpus');

export const CORPUS_SETS: readonly CorpusSet[] = ['rfc4475', 'rfc5118'];

let cache: readonly CorpusFile[] | null = null;

/** All 62 corpus files, sorted by set and name. */
export function loadCorpus(): readonly CorpusFile[] {
  if (cache !== null) return cache;
  const out: CorpusFile[] = [];
  for (const set of CORPUS_SETS) {
    const dir = join(CORPUS_DIR, set);
    const names = readdirSync(dir)
      .filter((f) => f.endsWith('.dat'))
      .sort();
    for (const file of names) {
      const raw = readFileSync(join(dir, file));
      out.push({ set, name: file.slice(0, -4), raw, wire: set === 'rfc5118' ? toWireForm(raw) : raw });
    }
  }
  cache = Object.freeze(out);
  return cache;
}

/** One corpus file by set and name (without `.dat`). */
export function corpusFile(set: CorpusSet, name: string): CorpusFile {
  const f = loadCorpus().find((c) => c.set === set && c.name === name);
  if (f === undefined) throw new Error(`no corpus file ${set}/${name}.dat`);
  return f;
}

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from([CR, LF]);

/**
 * The wire form of an RFC 5118 file, as the corpus README describes it: every
 * bare LF becomes CRLF, the header section gets its closing empty line when it
 * has none, and Content-Length is set to the real body length (the archived
 * values of three files disagree with their bodies). Works on bytes only.
 */
export function toWireForm(raw: Buffer): Buffer {
  // 1. LF -> CRLF (an LF already preceded by CR stays as it is).
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === LF && (i === 0 || raw[i - 1] !== CR)) {
      parts.push(raw.subarray(from, i), CRLF);
      from = i + 1;
    }
  }
  parts.push(raw.subarray(from));
  let msg = Buffer.concat(parts);

  // 2. Close the header section.
  let headEnd = msg.indexOf('\r\n\r\n', 0, 'latin1');
  if (headEnd === -1) {
    msg = Buffer.concat([msg, endsWithCrlf(msg) ? CRLF : Buffer.from('\r\n\r\n', 'latin1')]);
    headEnd = msg.length - 4;
  }
  const bodyStart = headEnd + 4;
  const bodyLength = msg.length - bodyStart;

  // 3. Recompute Content-Length (long or compact name, any case).
  let lineStart = msg.indexOf(LF) + 1;
  while (lineStart < headEnd + 2) {
    const lineEnd = msg.indexOf(LF, lineStart);
    const colon = msg.indexOf(0x3a, lineStart);
    if (colon !== -1 && colon < lineEnd) {
      let nameEnd = colon;
      while (nameEnd > lineStart && (msg[nameEnd - 1] === 0x20 || msg[nameEnd - 1] === 0x09)) nameEnd--;
      if (
        isNameLower(msg, lineStart, nameEnd, 'content-length') ||
        isNameLower(msg, lineStart, nameEnd, 'l')
      ) {
        return Buffer.concat([
          msg.subarray(0, colon + 1),
          Buffer.from(` ${bodyLength}`, 'latin1'),
          msg.subarray(lineEnd - 1),
        ]);
      }
    }
    lineStart = lineEnd + 1;
  }
  return msg;
}

/** Header name bytes equal to a lowercase ASCII literal, ignoring case (compared as bytes, not decoded). */
function isNameLower(b: Buffer, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((b[start + i] | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

function endsWithCrlf(b: Buffer): boolean {
  return b.length >= 2 && b[b.length - 2] === CR && b[b.length - 1] === LF;
}
