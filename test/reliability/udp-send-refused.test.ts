/**
 * A UDP send the kernel refuses. Nothing leaves the host here: a socket without
 * SO_BROADCAST may not send to 255.255.255.255, and the kernel says so at the
 * send (EACCES), as it says ENETUNREACH for a destination without a route.
 * The request names that target itself (Request-URI after sipspan's own Route
 * entry, RFC 3261 §16.12 loose routing), so sipspan forwards it there.
 *
 * sipspan must count the refusal as an upstream error, keep going, and forward
 * the next request as usual.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CountingPeer,
  countLimits,
  HOST,
  type StartedProxy,
  sipRequest,
  startProxy,
} from './support/harness.ts';

describe('a UDP send the kernel refuses', () => {
  let proxy: StartedProxy;
  let upstream: CountingPeer;
  const limits = countLimits();
  const client = createSocket('udp4');
  let clientPort = 0;

  before(async () => {
    upstream = await CountingPeer.start({ tcp: false });
    proxy = await startProxy({
      routes: [{ name: 'refused', upstream: `udp://${HOST}:${upstream.port}`, tcp: false }],
    });
    await new Promise<void>((r) => client.bind(0, HOST, () => r()));
    clientPort = client.address().port;
  });

  after(async () => {
    limits.stop();
    client.close();
    await proxy.stop();
    await upstream.close();
  });

  test('is counted as upstream_send, and the next request is forwarded as usual', async () => {
    const port = proxy.ports[0];
    const refused = sipRequest({
      method: 'OPTIONS',
      uri: 'sip:bob@255.255.255.255:5060',
      viaPort: clientPort,
      branch: 'z9hG4bK-refused-1',
      callId: 'refused-1@test',
      extra: [`Route: <sip:${HOST}:${port};lr>`],
    });
    client.send(refused, port, HOST);
    await sleep(300);
    assert.equal(limits.get('upstream_send'), 1, `limits: ${[...limits.counts].join(' ')}`);

    const usual = sipRequest({
      method: 'OPTIONS',
      viaPort: clientPort,
      branch: 'z9hG4bK-usual-1',
      callId: 'usual-1@test',
    });
    client.send(usual, port, HOST);
    await sleep(300);
    assert.equal(upstream.udpCount, 1, 'the usual request reached the upstream');
    assert.equal(limits.get('upstream_send'), 1);
  });
});
