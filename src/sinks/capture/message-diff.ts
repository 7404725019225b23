/**
 * What sipspan changed in a message at one hop: the version it received ('in')
 * against the version it forwarded ('out'), line by line, then within each
 * changed line that has a counterpart (so `;received=…;rport=…` added to the
 * caller's Via marks only those bytes, not the whole line).
 *
 *   in:   INVITE …            out:  INVITE …
 *         Via: caller;rport          Via: sipspan;branch=…        ← added
 *                                     traceparent: 00-…            ← added
 *                                     X-Trace-Id: …                ← added
 *                                     Via: caller;rport=5060;rec…  ← "=5060;received=…" added
 *         Max-Forwards: 70           Max-Forwards: 69             ← "70" removed, "69" added
 *
 * Ranges are [start, end) indices into the two strings, line breaks excluded.
 */
export interface TextRange {
  start: number;
  end: number;
}

export interface MessageDiff {
  /** Ranges of the 'out' text that are not in the 'in' text. */
  added: TextRange[];
  /** Ranges of the 'in' text that are not in the 'out' text. */
  removed: TextRange[];
}

/** Messages are bounded (65535 bytes, 256 fields); past this many middle lines the diff is whole-block. */
const MAX_LCS_LINES = 2000;

interface Line {
  text: string;
  /** Offset of the line in its message. */
  at: number;
  /** Length without the line break. */
  length: number;
  /** Lower-cased field name (text before ':'), '' for the start line and body lines without one. */
  name: string;
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  let p = 0;
  while (p < text.length) {
    let e = text.indexOf('\n', p);
    e = e === -1 ? text.length : e + 1;
    const line = text.slice(p, e);
    let length = line.length;
    if (line.endsWith('\n')) length--;
    if (length > 0 && line.charCodeAt(length - 1) === 13) length--;
    const colon = line.indexOf(':');
    const name = lines.length === 0 || colon <= 0 ? '' : line.slice(0, colon).trim().toLowerCase();
    lines.push({ text: line, at: p, length, name });
    p = e;
  }
  return lines;
}

function commonPrefix(a: string, aLen: number, b: string, bLen: number): number {
  const n = Math.min(aLen, bLen);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

function commonSuffix(a: string, aLen: number, b: string, bLen: number, prefix: number): number {
  const n = Math.min(aLen, bLen) - prefix;
  let i = 0;
  while (i < n && a.charCodeAt(aLen - 1 - i) === b.charCodeAt(bLen - 1 - i)) i++;
  return i;
}

function push(ranges: TextRange[], start: number, end: number): void {
  if (end > start) ranges.push({ start, end });
}

/** One block of removed lines replaced by added lines: pair similar lines of the same field, mark the rest whole. */
function diffHunk(dels: Line[], adds: Line[], out: MessageDiff): void {
  const pairedAdd = new Int32Array(adds.length).fill(-1);
  const pairedDel = new Int32Array(dels.length).fill(-1);
  for (let d = 0; d < dels.length; d++) {
    const del = dels[d];
    let best = -1;
    let bestScore = 0;
    for (let a = 0; a < adds.length; a++) {
      const add = adds[a];
      if (pairedAdd[a] !== -1 || add.name !== del.name) continue;
      const p = commonPrefix(del.text, del.length, add.text, add.length);
      const score = p + commonSuffix(del.text, del.length, add.text, add.length, p);
      if (score > bestScore) {
        bestScore = score;
        best = a;
      }
    }
    // Half the shorter line in common: an edit of this line rather than another line of the same field.
    if (best !== -1 && bestScore * 2 >= Math.min(del.length, adds[best].length)) {
      pairedAdd[best] = d;
      pairedDel[d] = best;
    }
  }
  for (let d = 0; d < dels.length; d++) {
    const del = dels[d];
    const a = pairedDel[d];
    if (a === -1) {
      push(out.removed, del.at, del.at + del.length);
      continue;
    }
    const add = adds[a];
    const p = commonPrefix(del.text, del.length, add.text, add.length);
    const s = commonSuffix(del.text, del.length, add.text, add.length, p);
    push(out.removed, del.at + p, del.at + del.length - s);
    push(out.added, add.at + p, add.at + add.length - s);
  }
  for (let a = 0; a < adds.length; a++) {
    if (pairedAdd[a] === -1) push(out.added, adds[a].at, adds[a].at + adds[a].length);
  }
}

/** The edits that turn `inText` into `outText`. */
export function diffMessages(inText: string, outText: string): MessageDiff {
  const result: MessageDiff = { added: [], removed: [] };
  if (inText === outText) return result;
  const a = splitLines(inText);
  const b = splitLines(outText);
  let lo = 0;
  while (lo < a.length && lo < b.length && a[lo].text === b[lo].text) lo++;
  let hiA = a.length;
  let hiB = b.length;
  while (hiA > lo && hiB > lo && a[hiA - 1].text === b[hiB - 1].text) {
    hiA--;
    hiB--;
  }
  const n = hiA - lo;
  const m = hiB - lo;
  if (n > MAX_LCS_LINES || m > MAX_LCS_LINES) {
    diffHunk(a.slice(lo, hiA), b.slice(lo, hiB), result);
    return result;
  }
  // Longest common subsequence of the middle lines; lcs[i][j] for suffixes a[lo+i..], b[lo+j..].
  const w = m + 1;
  const lcs = new Uint16Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] =
        a[lo + i].text === b[lo + j].text
          ? lcs[(i + 1) * w + j + 1] + 1
          : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  let dels: Line[] = [];
  let adds: Line[] = [];
  const flush = () => {
    if (dels.length > 0 || adds.length > 0) diffHunk(dels, adds, result);
    dels = [];
    adds = [];
  };
  while (i < n || j < m) {
    if (i < n && j < m && a[lo + i].text === b[lo + j].text) {
      flush();
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j])) {
      adds.push(b[lo + j]);
      j++;
    } else {
      dels.push(a[lo + i]);
      i++;
    }
  }
  flush();
  result.added.sort((x, y) => x.start - y.start);
  result.removed.sort((x, y) => x.start - y.start);
  return result;
}
