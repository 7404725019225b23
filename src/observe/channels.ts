import { channel } from 'node:diagnostics_channel';

/**
 * Every observable point of sipspan, as a named diagnostics channel. Sinks
 * subscribe by name and import nothing from the proxy. Every publish is guarded
 * by `hasSubscribers`, so with no sink attached an event costs one property read.
 *
 * Messages published on these channels are valid only during the publish call
 * when the table below says "scratch": the publisher reuses the object.
 *
 * The three marked "after" describe something ended and are published in
 * groups, once what a turn read has been forwarded: when 32 are queued, or at
 * most 50 ms after the oldest (observe/deferred-events.ts), in the order they
 * happened.
 *
 * | channel                              | message               | when                                              |
 * |--------------------------------------|-----------------------|---------------------------------------------------|
 * | sipspan:transaction:start            | TransactionRecord     | a new request is forwarded (not retransmissions)  |
 * | sipspan:transaction:response         | TransactionRecord     | a response from upstream (tx.lastResponse*)       |
 * | sipspan:transaction:retransmission   | TransactionRecord     | a request or final response seen again            |
 * | sipspan:transaction:end (after)      | TransactionRecord     | final response sent back, timeout, or ACK/2xx sent|
 * | sipspan:call:outcome (after)         | CallRecord            | an initial INVITE reached its outcome             |
 * | sipspan:call:end (after)             | CallRecord            | a call leaves the table (BYE done, failed, expiry)|
 * | sipspan:message:forwarded            | ForwardedEvent scratch| any message sent on                               |
 * | sipspan:message:rejected             | RejectedEvent         | answered by sipspan or dropped                    |
 * | sipspan:message:captured             | CapturedEvent         | raw bytes in and out (call view), when enabled    |
 * | sipspan:limit:hit                    | LimitEvent            | a configured limit was reached                    |
 * | sipspan:process:state                | ProcessStateEvent     | start, ready, draining, stopped, heap guard change|
 * |                                      |                       | a UDP buffer the kernel capped                    |
 */
export const channels = {
  transactionStart: channel('sipspan:transaction:start'),
  transactionResponse: channel('sipspan:transaction:response'),
  transactionRetransmission: channel('sipspan:transaction:retransmission'),
  transactionEnd: channel('sipspan:transaction:end'),
  callOutcome: channel('sipspan:call:outcome'),
  callEnd: channel('sipspan:call:end'),
  messageForwarded: channel('sipspan:message:forwarded'),
  messageRejected: channel('sipspan:message:rejected'),
  messageCaptured: channel('sipspan:message:captured'),
  limitHit: channel('sipspan:limit:hit'),
  processState: channel('sipspan:process:state'),
} as const;
