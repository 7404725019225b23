/**
 * The pcap export read back by tshark: every captured message of a call is
 * one SIP packet in the file, in order, over UDP and TCP, IPv4 and IPv6, with
 * valid IP/UDP/TCP checksums. tshark is required (the CI installs it): the
 * test fails without it rather than passing unread.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { summarizeCall } from '../../../src/sinks/capture/call-summary.ts';
import { type PcapPacket, parseAddress, writePcap } from '../../../src/sinks/capture/pcap-writer.ts';
import { waitUntil } from '../../support/raw-peers.ts';
import { type Chain, startChain } from './capture-rig.ts';

const dir = mkdtempSync(join(tmpdir(), 'sipspan-pcap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tshark(args: string[]): string {
  try {
    return execFileSync('tshark', args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error('tshark is not installed (apt-get install -y tshark): the pcap cannot be verified');
    throw new Error(`tshark failed: ${e.stderr ?? e.message}`);
  }
}

/** One line per SIP packet: `method|status|call-id`; checksums verified so a bad one shows as an expert message. */
function readSip(file: string): string[] {
  const out = tshark([
    '-r',
    file,
    '-o',
    'ip.check_checksum:TRUE',
    '-o',
    'udp.check_checksum:TRUE',
    '-o',
    'tcp.check_checksum:TRUE',
    '-Y',
    'sip',
    '-T',
    'fields',
    '-E',
    'separator=|',
    '-e',
    'sip.Method',
    '-e',
    'sip.Status-Code',
    '-e',
    'sip.Call-ID',
  ]);
  return out.split('\n').filter((l) => l !== '');
}

function badChecksums(file: string): number {
  const out = tshark([
    '-r',
    file,
    '-o',
    'ip.check_checksum:TRUE',
    '-o',
    'udp.check_checksum:TRUE',
    '-o',
    'tcp.check_checksum:TRUE',
    '-Y',
    'ip.checksum.status == "Bad" || udp.checksum.status == "Bad" || tcp.checksum.status == "Bad"',
  ]);
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

function request(method: string, callId: string, pad = 0): Buffer {
  return Buffer.from(
    `${method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-${callId}${method}\r\n` +
      `From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: ${callId}\r\nCSeq: 1 ${method}\r\n` +
      `Max-Forwards: 70\r\nX-Pad: ${'x'.repeat(pad)}\r\nContent-Length: 0\r\n\r\n`,
    'latin1',
  );
}

function response(status: string, callId: string): Buffer {
  return Buffer.from(
    `SIP/2.0 ${status}\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-${callId}INVITE\r\n` +
      `From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
    'latin1',
  );
}

describe('pcap writer', () => {
  test('addresses: IPv4, IPv6 with and without brackets, v4-mapped, names', () => {
    assert.deepEqual([...parseAddress('127.0.0.1:5060').ip], [127, 0, 0, 1]);
    assert.equal(parseAddress('127.0.0.1:5060').port, 5060);
    assert.equal(parseAddress('::1:15062').ip.toString('hex'), '00000000000000000000000000000001');
    assert.equal(parseAddress('::1:15062').port, 15062);
    assert.equal(parseAddress('[2001:db8::5]:5061').ip.toString('hex'), '20010db8000000000000000000000005');
    assert.deepEqual([...parseAddress('::ffff:10.1.2.3:5060').ip], [10, 1, 2, 3]);
    assert.equal(parseAddress('fe80::1%eth0:5060').ip.toString('hex'), 'fe800000000000000000000000000001');
    const named = parseAddress('sip-gateway:5060');
    assert.equal(named.ip[0], 198);
    assert.deepEqual(parseAddress('sip-gateway:5060'), named, 'a name always gets the same stand-in');
  });

  test('UDP and TCP, IPv4 and IPv6, a 100 KB TCP message: tshark reads every SIP message, checksums good', () => {
    const t = Date.now();
    const packets: PcapPacket[] = [
      {
        timeMs: t,
        transport: 'udp',
        source: '192.0.2.1:5060',
        destination: '127.0.0.1:15060',
        payload: request('INVITE', 'u4'),
      },
      {
        timeMs: t + 0.25,
        transport: 'udp',
        source: '127.0.0.1:15060',
        destination: '127.0.0.1:15070',
        payload: request('INVITE', 'u4'),
      },
      {
        timeMs: t + 1,
        transport: 'tcp',
        source: '127.0.0.1:15060',
        destination: '127.0.0.1:15070',
        payload: request('OPTIONS', 't4'),
      },
      {
        timeMs: t + 2,
        transport: 'tcp',
        source: '127.0.0.1:15070',
        destination: '127.0.0.1:15060',
        payload: response('200 OK', 't4'),
      },
      {
        timeMs: t + 3,
        transport: 'tcp',
        source: '127.0.0.1:15060',
        destination: '127.0.0.1:15070',
        payload: request('BYE', 't4'),
      },
      {
        timeMs: t + 4,
        transport: 'udp',
        source: '::1:15062',
        destination: '[::1]:15080',
        payload: request('INVITE', 'u6'),
      },
      {
        timeMs: t + 5,
        transport: 'tcp',
        source: '[::1]:15080',
        destination: '::1:15062',
        payload: response('180 Ringing', 'u6'),
      },
      {
        timeMs: t + 6,
        transport: 'udp',
        source: '::1:15062',
        destination: '127.0.0.1:15070',
        payload: request('INFO', 'mixed'),
      },
    ];
    const file = join(dir, 'synthetic.pcap');
    writeFileSync(file, writePcap(packets));
    assert.deepEqual(readSip(file), [
      'INVITE||u4',
      'INVITE||u4',
      'OPTIONS||t4',
      '|200|t4',
      'BYE||t4',
      'INVITE||u6',
      '|180|u6',
      'INFO||mixed',
    ]);
    assert.equal(badChecksums(file), 0);
    // A message larger than one segment is cut into several, and tshark puts it back together.
    const big = join(dir, 'big.pcap');
    writeFileSync(
      big,
      writePcap([
        {
          timeMs: t,
          transport: 'tcp',
          source: '127.0.0.1:15060',
          destination: '127.0.0.1:15070',
          payload: request('MESSAGE', 'big', 100_000),
        },
        {
          timeMs: t + 1,
          transport: 'tcp',
          source: '127.0.0.1:15060',
          destination: '127.0.0.1:15070',
          payload: request('BYE', 'big'),
        },
      ]),
    );
    assert.deepEqual(readSip(big), ['MESSAGE||big', 'BYE||big']);
  });
});

describe('pcap of captured calls (two-route chain)', () => {
  let chain: Chain;
  before(async () => {
    chain = await startChain({ tracing: false });
  });
  after(async () => {
    await chain?.stop();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    test(`calls placed over ${transport}: the exported pcap holds every stored message of the call, in order`, async () => {
      const placed = await chain.place(3, 30, 100, transport);
      assert.equal(placed.filter((c) => c.result === 'answered').length, 3);
      for (const c of placed) {
        const call = chain.capture.store.findByCallId(c.callId);
        assert.ok(call !== undefined, `call ${c.callId} captured`);
        // The UAC has the last 200 before the hops behind it have stored their copies of it.
        assert.ok(await waitUntil(() => call.messages.length === 28, 2000), `${call.messages.length} stored`);
        const res = await fetch(`${chain.adminUrl}/api/capture/calls/${call.traceId}/pcap`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/vnd.tcpdump.pcap');
        const file = join(dir, `${call.traceId}.pcap`);
        writeFileSync(file, Buffer.from(await res.arrayBuffer()));
        const sip = readSip(file);
        call.analyze();
        const expected = [...call.messages]
          .sort((a, b) => a.at - b.at)
          .map(
            (m) =>
              `${m.info!.isRequest ? m.info!.method : ''}|${m.info!.isRequest ? '' : m.info!.status}|${m.callId}`,
          );
        assert.equal(sip.length, call.messages.length, 'one SIP packet per stored message');
        assert.deepEqual(sip, expected);
        assert.equal(badChecksums(file), 0);
        // INVITE, 100, 180, 200, ACK, BYE, 200 through two hops, each in and out: 7 × 2 × 2.
        assert.equal(summarizeCall(call).messages, 28);
      }
    });
  }
});
