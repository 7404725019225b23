/**
 * Every span, event and resource attribute key sipspan emits, in one place:
 * `sip.*` for SIP, OpenTelemetry's `server.*`, `client.*`, `network.*` and
 * `error.type` for the rest (the stable keys equal the constants of
 * @opentelemetry/semantic-conventions; a test pins that).
 *
 * | key                                        | SERVER | CLIENT | value                                          |
 * |--------------------------------------------|--------|--------|------------------------------------------------|
 * | sip.request.method                         |   x    |   x    | known method or `_OTHER`                       |
 * | sip.request.method_original                |   x    |   x    | the raw token, only when `_OTHER`              |
 * | sip.response.status_code                   |   x    |   x    | final status sent back / received              |
 * | sip.call_id, sip.cseq                      |   x    |   x    |                                                |
 * | sip.transaction.retransmissions            |   x    |        | request retransmissions from downstream        |
 * | sip.transaction.response_retransmissions   |        |   x    | final response retransmissions from upstream   |
 * | sipspan.route                              |   x    |   x    | route name (the `service` label elsewhere)     |
 * | sipspan.trace.origin                       |   x    |        | inbound, call, stitched, new                   |
 * | sipspan.stitched_by                        |   x    |        | how a B2BUA leg was matched                    |
 * | sipspan.outcome                            |   x    |        | completed, timeout, forwarded, rejected, ...   |
 * | sipspan.generated                          |   x    |        | true when sipspan answered itself              |
 * | client.address/port                        |   x    |        | who sent the request                           |
 * | server.address/port                        |        |   x    | where sipspan sent it                          |
 * | network.peer.address/port                  |   x    |   x    | the socket peer of that side                   |
 * | network.transport                          |   x    |   x    | udp, tcp                                       |
 * | network.protocol.name                      |   x    |   x    | `sip`                                          |
 * | error.type                                 |   x    |   x    | `timeout`, `send_failed`, or the status code   |
 */
export const ATTR = {
  SIP_METHOD: 'sip.request.method',
  SIP_METHOD_ORIGINAL: 'sip.request.method_original',
  SIP_STATUS: 'sip.response.status_code',
  SIP_CALL_ID: 'sip.call_id',
  SIP_CSEQ: 'sip.cseq',
  SIP_RETRANSMISSIONS: 'sip.transaction.retransmissions',
  SIP_RESPONSE_RETRANSMISSIONS: 'sip.transaction.response_retransmissions',
  ROUTE: 'sipspan.route',
  TRACE_ORIGIN: 'sipspan.trace.origin',
  STITCHED_BY: 'sipspan.stitched_by',
  GENERATED: 'sipspan.generated',
  OUTCOME: 'sipspan.outcome',
  LINK_REASON: 'sipspan.link.reason',
  SERVER_ADDRESS: 'server.address',
  SERVER_PORT: 'server.port',
  CLIENT_ADDRESS: 'client.address',
  CLIENT_PORT: 'client.port',
  PEER_ADDRESS: 'network.peer.address',
  PEER_PORT: 'network.peer.port',
  TRANSPORT: 'network.transport',
  PROTOCOL: 'network.protocol.name',
  ERROR_TYPE: 'error.type',
} as const;

/** Resource attributes (one set per process). */
export const RESOURCE = {
  SERVICE_NAME: 'service.name',
  SERVICE_VERSION: 'service.version',
  SERVICE_INSTANCE_ID: 'service.instance.id',
  HOST_NAME: 'host.name',
  NODE: 'sipspan.node',
} as const;

/** The `_OTHER` method of the OpenTelemetry conventions: unknown methods never become span names. */
export const OTHER_METHOD = '_OTHER';
export const PROTOCOL_NAME = 'sip';

/** error.type values that are not status codes. */
export const ERROR = {
  TIMEOUT: 'timeout',
  SEND_FAILED: 'send_failed',
} as const;

/** Span event names: where each goes is in span-builder.ts. */
export const EVENT = {
  /** CLIENT: a provisional response from upstream (attribute sip.response.status_code). */
  PROVISIONAL: 'sip.provisional_response',
  /** SERVER: a CANCEL for this INVITE came from downstream. */
  CANCEL: 'sip.cancel',
  /** SERVER: the request came again from downstream. */
  RETRANSMISSION: 'sip.retransmission',
  /** CLIENT: the final response came again from upstream. */
  RESPONSE_RETRANSMISSION: 'sip.response_retransmission',
} as const;

/** sipspan.link.reason: why a span carries a link instead of a parent. */
export const LINK_REASON = {
  /** The inbound traceparent came on a route that does not trust it. */
  UNTRUSTED: 'untrusted_inbound',
  /** The leg of a B2BUA, matched to the other leg. */
  STITCHED: 'stitched',
} as const;
