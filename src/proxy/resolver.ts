import { lookup } from 'node:dns/promises';
import { ipFamily } from '../transport/ip-family.ts';

interface Cached {
  address: string;
  family: 4 | 6;
  expiresAt: number;
}

/**
 * Host names to addresses, cached for `ttlMs` (compose service names and the
 * rare name in a Via or a Contact). IP literals never reach the resolver.
 * Bounded: past `maxEntries` the oldest name is forgotten.
 */
export class Resolver {
  private readonly cache = new Map<string, Cached>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(ttlMs = 30_000, maxEntries = 1024) {
    this.ttlMs = ttlMs;
    this.maxEntries = maxEntries;
  }

  /** The cached address of a name, or null (then call resolve). */
  cached(host: string, now: number): Cached | null {
    const c = this.cache.get(host);
    return c !== undefined && c.expiresAt > now ? c : null;
  }

  async resolve(host: string): Promise<Cached> {
    const family = ipFamily(host);
    if (family !== 0) return { address: host, family: family as 4 | 6, expiresAt: Number.POSITIVE_INFINITY };
    const r = await lookup(host, { verbatim: true });
    const entry: Cached = {
      address: r.address,
      family: r.family as 4 | 6,
      expiresAt: performance.now() + this.ttlMs,
    };
    if (this.cache.size >= this.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(host, entry);
    return entry;
  }

  forget(host: string): void {
    this.cache.delete(host);
  }
}
