/**
 * The capture store: bounded by calls and by counted bytes with the oldest
 * call evicted first, grouped by trace id (B2BUA legs with two Call-IDs are
 * one call), messages without a trace id attached by Call-ID, 'in' and 'out'
 * of one message paired, retransmissions marked, redaction applied before
 * anything is kept.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { CapturedEvent } from '../../../src/observe/records.ts';
import { summarizeCall } from '../../../src/sinks/capture/call-summary.ts';
import {
  CALL_OVERHEAD_BYTES,
  MESSAGE_OVERHEAD_BYTES,
  MessageStore,
} from '../../../src/sinks/capture/message-store.ts';

const hex = (n: number) => randomBytes(n).toString('hex');

function invite(callId: string, extra = ''): Buffer {
  return Buffer.from(
    [
      'INVITE sip:bob@example.com SIP/2.0',
      `Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-${hex(6)};rport`,
      'Max-Forwards: 70',
      'From: "Alice Liddell" <sip:alice@example.com>;tag=1928',
      'To: <sip:bob@example.com>',
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      'Contact: <sip:alice@192.0.2.1:5060>',
      ...(extra === '' ? [] : [extra]),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

let clock = 1000;
function event(
  traceId: string | null,
  callId: string,
  direction: 'in' | 'out',
  bytes: Buffer,
  hop = 0,
): CapturedEvent {
  return {
    route: { index: hop, name: hop === 0 ? 'sip-gateway' : 'sip-signaling' },
    callId,
    traceId,
    direction,
    transport: 'udp',
    source: direction === 'in' ? '192.0.2.1:5060' : '127.0.0.1:15060',
    destination: direction === 'in' ? '127.0.0.1:15060' : '127.0.0.1:15070',
    at: clock++,
    bytes,
  };
}

function countedBytes(store: MessageStore): number {
  let n = 0;
  for (const c of store.calls()) {
    n += CALL_OVERHEAD_BYTES;
    for (const m of c.messages) n += m.bytes.length + MESSAGE_OVERHEAD_BYTES;
  }
  return n;
}

describe('message store bounds', () => {
  test('full by bytes: the oldest calls go first and the counted bytes never pass the bound', () => {
    const maxBytes = 64 * 1024;
    const store = new MessageStore({ maxBytes, maxCalls: 100_000 });
    const order: string[] = [];
    for (let i = 0; i < 400; i++) {
      const traceId = hex(16);
      const callId = `call-${i}@test`;
      order.push(traceId);
      const msg = invite(callId, `X-Pad: ${'p'.repeat(i % 7 === 0 ? 900 : 40)}`);
      store.add(event(traceId, callId, 'in', msg));
      store.add(event(traceId, callId, 'out', msg));
      assert.ok(store.bytes <= maxBytes, `counted ${store.bytes} > bound ${maxBytes} after call ${i}`);
      assert.equal(store.bytes, countedBytes(store), 'the running count equals the sum over stored calls');
    }
    const kept = [...store.calls()].map((c) => c.traceId);
    assert.ok(kept.length > 10 && kept.length < 400, `kept ${kept.length}`);
    // What is left is exactly the newest calls, in order: eviction took the oldest first.
    assert.deepEqual(kept, order.slice(order.length - kept.length));
    const stats = store.stats();
    assert.equal(stats.evictedCalls, 400 - kept.length);
    assert.equal(stats.calls, kept.length);
    assert.equal(stats.messages, kept.length * 2);
    // The Call-ID index forgets evicted calls.
    assert.equal(store.findByCallId('call-0@test'), undefined);
    assert.equal(store.findByCallId('call-399@test')?.traceId, order[399]);
  });

  test('full by calls: at most maxCalls, oldest first', () => {
    const store = new MessageStore({ maxBytes: 1 << 30, maxCalls: 5 });
    const order: string[] = [];
    for (let i = 0; i < 12; i++) {
      const t = hex(16);
      order.push(t);
      store.add(event(t, `c${i}`, 'in', invite(`c${i}`)));
      assert.ok(store.size <= 5);
    }
    assert.deepEqual(
      [...store.calls()].map((c) => c.traceId),
      order.slice(7),
    );
  });

  test('a call that keeps growing evicts older calls, never itself; alone it stops at the bound', () => {
    const maxBytes = 16 * 1024;
    const store = new MessageStore({ maxBytes, maxCalls: 1000 });
    const old = hex(16);
    store.add(event(old, 'old', 'in', invite('old')));
    const big = hex(16);
    for (let i = 0; i < 100; i++) {
      store.add(event(big, 'big', i % 2 === 0 ? 'in' : 'out', invite('big')));
      assert.ok(store.bytes <= maxBytes);
    }
    assert.equal(store.get(old), undefined, 'the older call made room');
    const call = store.get(big)!;
    assert.ok(call.messages.length > 5);
    assert.ok(call.truncated > 0, 'messages past the bound are counted, not kept');
    assert.equal(store.bytes, countedBytes(store));
  });

  test('maxMessagesPerCall keeps the first messages and counts the rest', () => {
    const store = new MessageStore({ maxMessagesPerCall: 4 });
    const t = hex(16);
    for (let i = 0; i < 10; i++) store.add(event(t, 'x', 'in', invite('x')));
    assert.equal(store.get(t)!.messages.length, 4);
    assert.equal(store.get(t)!.truncated, 6);
  });

  test('a kept message has its own memory: a view would pin a whole 8 KiB pool slab', () => {
    const store = new MessageStore();
    const pooled = Buffer.from(invite('pool')); // small Buffer.from: a view into the shared pool
    assert.ok(pooled.buffer.byteLength > pooled.length);
    const t = hex(16);
    store.add(event(t, 'pool', 'in', pooled));
    const kept = store.get(t)!.messages[0].bytes;
    assert.equal(kept.buffer.byteLength, kept.length);
    assert.ok(kept.equals(pooled));
  });

  test('a message larger than the whole bound is not kept', () => {
    const store = new MessageStore({ maxBytes: 2048 });
    assert.equal(store.add(event(hex(16), 'huge', 'in', invite('huge', `X-Big: ${'b'.repeat(4000)}`))), null);
    assert.equal(store.size, 0);
    assert.equal(store.bytes, 0);
  });
});

describe('message store grouping', () => {
  test('B2BUA legs: two Call-IDs, one trace, one call; messages without trace id join by Call-ID', () => {
    const store = new MessageStore();
    const t = hex(16);
    store.add(event(t, 'leg-a', 'in', invite('leg-a')));
    store.add(event(t, 'leg-a', 'out', invite('leg-a')));
    store.add(event(t, 'leg-b', 'in', invite('leg-b'), 1));
    store.add(event(null, 'leg-b', 'in', invite('leg-b'), 1));
    assert.equal(store.size, 1);
    const call = store.get(t)!;
    assert.deepEqual(call.callIds, ['leg-a', 'leg-b']);
    assert.equal(call.messages.length, 4);
    assert.equal(store.findByCallId('leg-b'), call);
    // Unknown Call-ID and no trace id: nowhere to put it.
    assert.equal(store.add(event(null, 'stray', 'in', invite('stray'))), null);
    assert.equal(store.stats().droppedUnattributed, 1);
  });

  test("'in' and 'out' of one message are paired; identical bytes again at a hop are a retransmission", () => {
    const store = new MessageStore();
    const t = hex(16);
    const a = invite('p');
    const b = Buffer.concat([Buffer.from('Via: x\r\n'), a]);
    store.add(event(t, 'p', 'in', a));
    store.add(event(t, 'p', 'out', b));
    store.add(event(t, 'p', 'in', a));
    store.add(event(t, 'p', 'out', b));
    const call = store.get(t)!;
    call.analyze();
    const [i1, o1, i2, o2] = call.messages;
    assert.equal(o1.pair, i1);
    assert.equal(i1.pair, o1);
    assert.equal(o2.pair, i2);
    assert.deepEqual(
      call.messages.map((m) => m.retransmission),
      [false, false, true, true],
    );
    assert.equal(summarizeCall(call).retransmissions, 2);
  });
});

describe('call summary', () => {
  /** A message of the call `ch`: its start line, CSeq and To tag ('' for none). */
  const message = (startLine: string, method: string, cseq: number, toTag: string) =>
    Buffer.from(
      [
        startLine,
        `Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-${method}${cseq}`,
        'From: <sip:alice@example.com>;tag=1928',
        `To: <sip:bob@example.com>${toTag === '' ? '' : `;tag=${toTag}`}`,
        'Call-ID: ch',
        `CSeq: ${cseq} ${method}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      'latin1',
    );
  const request = (method: string, cseq: number, toTag = '') =>
    message(`${method} sip:bob@example.com SIP/2.0`, method, cseq, toTag);
  const response = (status: number, method: string, cseq: number) =>
    message(`SIP/2.0 ${status} Reason`, method, cseq, 'b1');

  test('a call challenged 407 and sent again with credentials is answered, its setup that of the retry', () => {
    const store = new MessageStore();
    const t = hex(16);
    const at = (ms: number, e: CapturedEvent) => ({ ...e, at: ms });
    // One hop: INVITE (CSeq 1) → 407, ACK; INVITE (CSeq 2) → 200 after 30 ms.
    store.add(at(0, event(t, 'ch', 'in', request('INVITE', 1))));
    store.add(at(1, event(t, 'ch', 'out', request('INVITE', 1))));
    store.add(at(5, event(t, 'ch', 'in', response(407, 'INVITE', 1))));
    store.add(at(6, event(t, 'ch', 'out', response(407, 'INVITE', 1))));
    store.add(at(10, event(t, 'ch', 'in', request('ACK', 1, 'b1'))));
    store.add(at(100, event(t, 'ch', 'in', request('INVITE', 2))));
    store.add(at(101, event(t, 'ch', 'out', request('INVITE', 2))));
    store.add(at(130, event(t, 'ch', 'in', response(200, 'INVITE', 2))));
    store.add(at(131, event(t, 'ch', 'out', response(200, 'INVITE', 2))));
    const s = summarizeCall(store.get(t)!);
    assert.equal(s.status, 200);
    assert.equal(s.outcome, 'answered');
    assert.equal(s.setup_ms, 31);
    assert.deepEqual(
      s.hops.map((h) => [h.status, h.setup_ms, h.client_ms]),
      [[200, 31, 29]],
    );
  });

  test('a challenge nobody answered stays the outcome: failed_4xx with the 401', () => {
    const store = new MessageStore();
    const t = hex(16);
    store.add(event(t, 'ch', 'in', request('INVITE', 1)));
    store.add(event(t, 'ch', 'out', request('INVITE', 1)));
    store.add(event(t, 'ch', 'in', response(401, 'INVITE', 1)));
    store.add(event(t, 'ch', 'out', response(401, 'INVITE', 1)));
    const s = summarizeCall(store.get(t)!);
    assert.deepEqual([s.status, s.outcome], [401, 'failed_4xx']);
  });
});

describe('redaction', () => {
  test('URI user parts, display names and credentials are replaced before the message is kept', () => {
    const store = new MessageStore({ redact: { users: true, auth: true } });
    const t = hex(16);
    const body = 'v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\n';
    const msg = Buffer.from(
      [
        'INVITE sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1',
        'From: "Alice Liddell" <sip:alice@example.com>;tag=1',
        'To: +15557654321 <sip:bob@example.com>',
        'Contact: Alice Mobile <sips:alice@192.0.2.1:5061>, <sip:alice@192.0.2.2>',
        'P-Asserted-Identity: <tel:+15551234567>',
        'Call-ID: r1',
        'CSeq: 1 INVITE',
        'Authorization: Digest username="alice", realm="example.com", nonce="abc",',
        ' response="0123456789abcdef"',
        'Proxy-Authorization: Digest username="alice", response="feed"',
        `Content-Length: ${body.length}`,
        '',
        body,
      ].join('\r\n'),
      'latin1',
    );
    store.add(event(t, 'r1', 'in', msg));
    const kept = store.get(t)!.messages[0].bytes.toString('latin1');
    assert.doesNotMatch(kept, /alice@|bob@|Alice|15551234567|15557654321|Mobile|0123456789abcdef|feed|nonce/);
    assert.match(kept, /^INVITE sip:redacted@example\.com SIP\/2\.0\r\n/);
    assert.match(kept, /\r\nFrom: "redacted" <sip:redacted@example\.com>;tag=1\r\n/);
    // Display names without quotes are tokens (RFC 3261 §25.1): they go too.
    assert.match(kept, /\r\nTo: redacted <sip:redacted@example\.com>\r\n/);
    assert.match(
      kept,
      /\r\nContact: redacted <sips:redacted@192\.0\.2\.1:5061>, <sip:redacted@192\.0\.2\.2>\r\n/,
    );
    assert.match(kept, /\r\nAuthorization: Digest redacted\r\nProxy-Authorization: Digest redacted\r\n/);
    assert.match(kept, /\r\nCall-ID: r1\r\n/);
    // The body is left as it was, so Content-Length still frames the message.
    assert.ok(kept.endsWith(`\r\n\r\n${body}`));
    const s = summarizeCall(store.get(t)!);
    assert.equal(s.from_user, 'redacted');
  });

  test('off by default: bytes are kept as captured', () => {
    const store = new MessageStore();
    const t = hex(16);
    const msg = invite('n', 'Authorization: Digest username="alice", response="x"');
    store.add(event(t, 'n', 'in', msg));
    assert.ok(store.get(t)!.messages[0].bytes.equals(msg));
  });
});
