/**
 * The resolver's bounds: messages that need the same name wait on one lookup, a name that did not
 * resolve fails at once for a while, and no more than `maxWaiting` messages wait at once (each holds
 * its bytes while it waits). Lookups whose timing the test decides stand in for name servers; the
 * last test asks the machine's own resolver.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NameNotResolved, Resolver } from '../../src/proxy/resolver.ts';
import { HeldLookup } from '../support/held-lookup.ts';

describe('Resolver', () => {
  test('messages needing the same name wait on one lookup, and are counted while they wait', async () => {
    const dns = new HeldLookup();
    const r = new Resolver({ lookup: dns.fn });
    const waits = [r.resolve('proxy.example'), r.resolve('proxy.example'), r.resolve('other.example')];
    assert.deepEqual(dns.asked, ['proxy.example', 'other.example']);
    assert.equal(r.waiting, 3);
    dns.answer('proxy.example', '192.0.2.7');
    dns.answer('other.example', '192.0.2.8');
    const got = await Promise.all(waits);
    assert.deepEqual(
      got.map((c) => c.address),
      ['192.0.2.7', '192.0.2.7', '192.0.2.8'],
    );
    assert.equal(r.waiting, 0);
    assert.equal(r.cached('proxy.example', performance.now())?.address, '192.0.2.7');
    // Resolved and cached: the next message needs no lookup at all (the engine asks cached() first).
    assert.equal(dns.asked.length, 2);
  });

  test('a name that did not resolve fails at once until failedTtlMs has passed; the upstream retries anyway', async () => {
    const dns = new HeldLookup();
    const r = new Resolver({ lookup: dns.fn, failedTtlMs: 80 });
    const first = r.resolve('gone.example');
    dns.answer('gone.example', null);
    await assert.rejects(first, { code: 'ENOTFOUND' });
    await assert.rejects(r.resolve('gone.example'), NameNotResolved);
    assert.equal(dns.asked.length, 1, 'no second lookup while the failure is remembered');
    assert.equal(r.waiting, 0, 'a failure from memory never waits');

    // The route's own upstream is looked up again on a timer until it resolves: never from memory.
    const retry = r.resolve('gone.example', true);
    assert.equal(dns.asked.length, 2);
    dns.answer('gone.example', '192.0.2.9');
    assert.equal((await retry).address, '192.0.2.9');

    const again = new Resolver({ lookup: dns.fn, failedTtlMs: 30 });
    const failing = again.resolve('late.example');
    dns.answer('late.example', null);
    await assert.rejects(failing);
    await sleep(50);
    const later = again.resolve('late.example');
    assert.equal(dns.asked.at(-1), 'late.example', 'looked up again once the failure has expired');
    dns.answer('late.example', '192.0.2.10');
    assert.equal((await later).address, '192.0.2.10');
  });

  test('full once maxWaiting messages wait, free again when their lookups end', async () => {
    const dns = new HeldLookup();
    const r = new Resolver({ lookup: dns.fn, maxWaiting: 2 });
    const a = r.resolve('a.example');
    assert.equal(r.full, false);
    const b = r.resolve('b.example');
    assert.equal(r.full, true);
    dns.answer('a.example', null);
    await assert.rejects(a);
    assert.equal(r.full, false);
    dns.answer('b.example', '192.0.2.2');
    await b;
    assert.equal(r.waiting, 0);
  });

  test('IP literals are never looked up; both caches keep at most maxEntries names', async () => {
    const dns = new HeldLookup();
    const r = new Resolver({ lookup: dns.fn, maxEntries: 2 });
    assert.equal((await r.resolve('2001:db8::1')).family, 6);
    assert.equal(dns.asked.length, 0);
    for (const host of ['one.example', 'two.example', 'three.example']) {
      const p = r.resolve(host);
      dns.answer(host, '192.0.2.1');
      await p;
    }
    const now = performance.now();
    assert.equal(r.cached('one.example', now), null, 'the oldest name was forgotten');
    assert.notEqual(r.cached('three.example', now), null);
    for (const host of ['x.example', 'y.example', 'z.example']) {
      const p = r.resolve(host);
      dns.answer(host, null);
      await assert.rejects(p);
    }
    const asked = dns.asked.length;
    const p = r.resolve('x.example');
    assert.equal(dns.asked.length, asked + 1, 'the oldest failure was forgotten: looked up again');
    dns.answer('x.example', null);
    await assert.rejects(p);
    await assert.rejects(r.resolve('z.example'), NameNotResolved);
  });

  test("with the machine's resolver: localhost resolves, a .invalid name (RFC 6761) fails and is remembered", async () => {
    const r = new Resolver();
    const local = await r.resolve('localhost');
    assert.ok(local.address === '127.0.0.1' || local.address === '::1', local.address);
    await assert.rejects(r.resolve('sipspan-test.invalid'));
    await assert.rejects(r.resolve('sipspan-test.invalid'), NameNotResolved);
  });
});
