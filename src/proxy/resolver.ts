import { lookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import { ipFamily } from '../transport/ip-family.ts';

interface Cached {
  address: string;
  family: 4 | 6;
  expiresAt: number;
}

/** How a name is looked up: node:dns's lookup (getaddrinfo, on libuv's thread pool). */
export type LookupFn = (
  host: string,
  options: { verbatim: true },
) => Promise<{ address: string; family: number }>;

export interface ResolverOptions {
  /** How long an address is used before the name is looked up again. */
  ttlMs: number;
  /** Names remembered, resolved and failed alike; past it the oldest is forgotten. */
  maxEntries: number;
  /** Messages that may wait for a lookup at once (`limits.max_pending_lookups`). */
  maxWaiting: number;
  /** How long a name that did not resolve fails at once, without a lookup. */
  failedTtlMs: number;
  lookup: LookupFn;
}

const DEFAULTS: ResolverOptions = {
  ttlMs: 30_000,
  maxEntries: 1024,
  maxWaiting: 1024,
  failedTtlMs: 5_000,
  lookup: lookup as LookupFn,
};

/** What a name that failed a moment ago fails with again, without a lookup. */
export class NameNotResolved extends Error {
  readonly code = 'SIPSPAN_ERR_RESOLVE_FAILED_RECENTLY';
  constructor(host: string) {
    super(`${host} did not resolve`);
  }
}

/**
 * Host names to addresses, cached for `ttlMs` (compose service names and the rare name in a Via, a
 * Route or a Request-URI). IP literals never reach the resolver.
 *
 * A message whose next hop is a name not in the cache waits for its lookup, and holds its bytes
 * while it waits (a view of the batch they were read in). Lookups run on libuv's four-thread pool
 * and take what the name servers take; requests naming other hosts can come faster than that (a
 * flood, or a fuzzer: 1,000 mutated messages a second grew sipspan by ~1 KiB a message for as long
 * as they came). So:
 * - one lookup per name at a time: the messages that need it wait on the same one;
 * - a name that did not resolve fails at once for `failedTtlMs` (a negative cache, as a stub
 *   resolver keeps one);
 * - at most `maxWaiting` messages wait at once: past it `full` is true, and the caller answers or
 *   drops the message as for a failed lookup, counted as the `max_pending_lookups` limit.
 * Bounded: past `maxEntries` the oldest name is forgotten, in either cache.
 */
export class Resolver {
  private readonly cache = new Map<string, Cached>();
  /** Names that did not resolve, and until when they fail at once. */
  private readonly failed = new Map<string, number>();
  /** Lookups in progress, one per name. */
  private readonly inflight = new Map<string, Promise<Cached>>();
  private readonly opts: ResolverOptions;
  private waitingNow = 0;
  /** A bound method: no closure per waiting message. */
  private readonly doneWaiting = () => {
    this.waitingNow--;
  };

  constructor(options: Partial<ResolverOptions> = {}) {
    this.opts = { ...DEFAULTS, ...options };
  }

  /** Messages waiting for a lookup now. */
  get waiting(): number {
    return this.waitingNow;
  }

  /** No more messages may wait for a lookup: the caller treats this one as not resolved. */
  get full(): boolean {
    return this.waitingNow >= this.opts.maxWaiting;
  }

  /** The cached address of a name, or null (then call resolve). */
  cached(host: string, now: number): Cached | null {
    const c = this.cache.get(host);
    return c !== undefined && c.expiresAt > now ? c : null;
  }

  /**
   * The address of `host`, for a message that waits for it (counted in `waiting` until it settles).
   * A name that failed less than `failedTtlMs` ago rejects at once, unless `retryFailed` (the
   * upstream's own name, looked up again on a timer until it resolves).
   */
  resolve(host: string, retryFailed = false): Promise<Cached> {
    const family = ipFamily(host);
    if (family !== 0)
      return Promise.resolve({ address: host, family: family as 4 | 6, expiresAt: Number.POSITIVE_INFINITY });
    if (!retryFailed) {
      const failedUntil = this.failed.get(host);
      if (failedUntil !== undefined) {
        if (failedUntil > performance.now()) return Promise.reject(new NameNotResolved(host));
        this.failed.delete(host);
      }
    }
    let pending = this.inflight.get(host);
    if (pending === undefined) {
      pending = this.lookUp(host);
      this.inflight.set(host, pending);
    }
    this.waitingNow++;
    pending.then(this.doneWaiting, this.doneWaiting);
    return pending;
  }

  forget(host: string): void {
    this.cache.delete(host);
  }

  private async lookUp(host: string): Promise<Cached> {
    try {
      const r = await this.opts.lookup(host, { verbatim: true });
      const entry: Cached = {
        address: r.address,
        family: r.family as 4 | 6,
        expiresAt: performance.now() + this.opts.ttlMs,
      };
      this.failed.delete(host);
      remember(this.cache, host, entry, this.opts.maxEntries);
      return entry;
    } catch (err) {
      remember(this.failed, host, performance.now() + this.opts.failedTtlMs, this.opts.maxEntries);
      throw err;
    } finally {
      this.inflight.delete(host);
    }
  }
}

/** Set host in a map of at most `max` names, forgetting the oldest one first when it is full. */
function remember<T>(map: Map<string, T>, host: string, value: T, max: number): void {
  if (!map.has(host) && map.size >= max) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
  map.set(host, value);
}
