import type { InboundHandler } from '../../src/transport/inbound-handler.ts';

/** A transport's handler that takes what it is given and does nothing with it. */
export const QUIET_HANDLER: InboundHandler = {
  onMessage() {},
  onBatchStart() {},
  onBatchEnd() {},
  onStreamBroken() {},
  onLimit() {},
  onConnectionFailed() {},
};
