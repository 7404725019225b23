import assert from 'node:assert/strict';
import type { LookupFn } from '../../src/proxy/resolver.ts';

/**
 * Name lookups that answer when the test says, and count what they were asked: they stand in for
 * name servers whose timing a test decides (the machine's own resolver answers in milliseconds).
 */
export class HeldLookup {
  readonly asked: string[] = [];
  private readonly waiting: { host: string; settle: (address: string | null) => void }[] = [];

  readonly fn: LookupFn = (host) => {
    this.asked.push(host);
    return new Promise((resolve, reject) => {
      this.waiting.push({
        host,
        settle: (address) =>
          address === null
            ? reject(Object.assign(new Error(`${host} ENOTFOUND`), { code: 'ENOTFOUND' }))
            : resolve({ address, family: 4 }),
      });
    });
  };

  /** Answer the oldest lookup of `host` waiting: an address, or null for a name that does not exist. */
  answer(host: string, address: string | null): void {
    const i = this.waiting.findIndex((w) => w.host === host);
    assert.ok(i !== -1, `no lookup of ${host} waits`);
    this.waiting.splice(i, 1)[0].settle(address);
  }
}
