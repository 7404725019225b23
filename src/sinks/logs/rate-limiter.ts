/**
 * Per-key line budget: at most `perSecond` lines per key (a drop reason, a
 * limit name) in each one-second window. What is held back is counted and
 * carried as `suppressed` on the next line of that key; when no line of the key
 * comes within a second after its window, `takeStale` hands the count over so
 * it is reported anyway.
 *
 *   key ──▶ window { start, count, suppressed }
 *           count < perSecond          → admit (carry suppressed, reset it)
 *           count ≥ perSecond          → suppressed++
 *           now − start ≥ 1 s          → new window
 *
 * Keys come from closed sets; the table is capped anyway (MAX_KEYS).
 */
const WINDOW_MS = 1000;
const MAX_KEYS = 256;

interface Window {
  start: number;
  count: number;
  suppressed: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly perSecond: number;

  constructor(perSecond: number) {
    this.perSecond = perSecond;
  }

  /** -1 when the line is held back; else how many lines of the key were held back before it. */
  admit(key: string, now: number): number {
    let w = this.windows.get(key);
    if (w === undefined) {
      if (this.windows.size >= MAX_KEYS) this.evictQuiet();
      w = { start: now, count: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (now - w.start >= WINDOW_MS) {
      w.start = now;
      w.count = 0;
    }
    if (w.count >= this.perSecond) {
      w.suppressed++;
      return -1;
    }
    w.count++;
    const s = w.suppressed;
    w.suppressed = 0;
    return s;
  }

  /** True when some key holds suppressed lines not reported yet. */
  get hasSuppressed(): boolean {
    for (const w of this.windows.values()) if (w.suppressed > 0) return true;
    return false;
  }

  /**
   * Suppressed counts no later line carried: keys whose window ended at least
   * `graceMs` ago (all of them when graceMs is 0). Resets what it returns.
   */
  takeStale(now: number, graceMs: number): [string, number][] {
    const out: [string, number][] = [];
    for (const [key, w] of this.windows) {
      if (w.suppressed > 0 && (graceMs === 0 || now - w.start >= WINDOW_MS + graceMs)) {
        out.push([key, w.suppressed]);
        w.suppressed = 0;
      }
    }
    return out;
  }

  private evictQuiet(): void {
    for (const [key, w] of this.windows) {
      if (w.suppressed === 0) {
        this.windows.delete(key);
        return;
      }
    }
    this.windows.clear();
  }
}
