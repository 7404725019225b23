/**
 * The ranges the call view highlights as sipspan's edits: whole lines it
 * inserted, and only the changed bytes of lines it edited (received/rport in
 * the caller's Via, the Max-Forwards digit), with nothing else marked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffMessages } from '../../../src/sinks/capture/message-diff.ts';

const received = [
  'INVITE sip:service@127.0.0.1:15060 SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-lg1;rport',
  'Max-Forwards: 70',
  'From: <sip:caller@127.0.0.1:40000>;tag=a',
  'To: <sip:service@127.0.0.1:15060>',
  'Call-ID: d1@test',
  'CSeq: 1 INVITE',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

const forwarded = [
  'INVITE sip:service@127.0.0.1:15060 SIP/2.0',
  'Record-Route: <sip:127.0.0.1:15060;lr>',
  'Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-sS1',
  'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  'X-Trace-Id: 0af7651916cd43dd8448eb211c80319c',
  'Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-lg1;rport=40000;received=127.0.0.1',
  'Max-Forwards: 69',
  'From: <sip:caller@127.0.0.1:40000>;tag=a',
  'To: <sip:service@127.0.0.1:15060>',
  'Call-ID: d1@test',
  'CSeq: 1 INVITE',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

test('a forwarded request: inserted lines whole, edited lines only where they changed', () => {
  const d = diffMessages(received, forwarded);
  assert.deepEqual(
    d.added.map((r) => forwarded.slice(r.start, r.end)),
    [
      'Record-Route: <sip:127.0.0.1:15060;lr>',
      'Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-sS1',
      'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'X-Trace-Id: 0af7651916cd43dd8448eb211c80319c',
      '=40000;received=127.0.0.1',
      '69',
    ],
  );
  assert.deepEqual(
    d.removed.map((r) => received.slice(r.start, r.end)),
    ['70'],
  );
});

test("a response: sipspan's own Via removed, nothing added", () => {
  const withVia = [
    'SIP/2.0 180 Ringing',
    'Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-sS1',
    'Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-lg1;rport=40000;received=127.0.0.1',
    'Call-ID: d1@test',
    'CSeq: 1 INVITE',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const without = withVia.replace('Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-sS1\r\n', '');
  const d = diffMessages(withVia, without);
  assert.deepEqual(d.added, []);
  assert.deepEqual(
    d.removed.map((r) => withVia.slice(r.start, r.end)),
    ['Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-sS1'],
  );
});

test('identical messages have no edits; a replaced trace header is removed in one place and added in another', () => {
  assert.deepEqual(diffMessages(received, received), { added: [], removed: [] });
  const inbound = received.replace(
    'Content-Length: 0',
    'traceparent: 00-0af7651916cd43dd8448eb211c80319c-1111111111111111-01\r\nContent-Length: 0',
  );
  const outbound = inbound
    .replace('traceparent: 00-0af7651916cd43dd8448eb211c80319c-1111111111111111-01\r\n', '')
    .replace('Via:', 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-2222222222222222-01\r\nVia:');
  const d = diffMessages(inbound, outbound);
  assert.deepEqual(
    d.added.map((r) => outbound.slice(r.start, r.end)),
    ['traceparent: 00-0af7651916cd43dd8448eb211c80319c-2222222222222222-01'],
  );
  assert.deepEqual(
    d.removed.map((r) => inbound.slice(r.start, r.end)),
    ['traceparent: 00-0af7651916cd43dd8448eb211c80319c-1111111111111111-01'],
  );
});
