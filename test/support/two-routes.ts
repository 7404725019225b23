import { buildConfig } from '../../src/config/load-config.ts';
import type { Config } from '../../src/config/schema.ts';

/**
 * The chain most end-to-end tests run: a `sip-gateway` route in front of the
 * gateway element and a `sip-signaling` route in front of the callee, over
 * UDP on loopback, with the admin listener on a free port.
 *
 *   caller ─▶ sip-gateway route ─▶ gateway element ─▶ sip-signaling route ─▶ callee
 */
export function twoRouteConfig(ports: {
  gateway: number;
  gatewayUpstream: number;
  signaling: number;
  signalingUpstream: number;
}): Config {
  return buildConfig({
    node: 'test-node',
    admin: '127.0.0.1:0',
    routes: [
      {
        name: 'sip-gateway',
        listen: [`udp://127.0.0.1:${ports.gateway}`],
        upstream: `udp://127.0.0.1:${ports.gatewayUpstream}`,
      },
      {
        name: 'sip-signaling',
        listen: [`udp://127.0.0.1:${ports.signaling}`],
        upstream: `udp://127.0.0.1:${ports.signalingUpstream}`,
      },
    ],
  });
}
