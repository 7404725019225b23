/**
 * Every span attribute key sipspan emits, in one place. `sip.*` for SIP,
 * OpenTelemetry's `server.*`, `client.*`, `network.*` and `error.type` for the rest.
 */
export const ATTR = {
  SIP_METHOD: 'sip.request.method',
  SIP_STATUS: 'sip.response.status_code',
  SIP_CALL_ID: 'sip.call_id',
  SIP_CSEQ: 'sip.cseq',
  SIP_RETRANSMISSIONS: 'sip.transaction.retransmissions',
  SIP_RESPONSE_RETRANSMISSIONS: 'sip.transaction.response_retransmissions',
  ROUTE: 'sipspan.route',
  NODE: 'sipspan.node',
  TRACE_ORIGIN: 'sipspan.trace.origin',
  STITCHED_BY: 'sipspan.stitched_by',
  GENERATED: 'sipspan.generated',
  OUTCOME: 'sipspan.outcome',
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

/** Span event names. */
export const EVENT = {
  PROVISIONAL: 'sip.provisional_response',
  CANCEL: 'sip.cancel',
  RETRANSMISSION: 'sip.retransmission',
} as const;
