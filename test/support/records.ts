import { statusClassOf } from '../../src/observe/observer.ts';
import {
  type Direction,
  type ForwardedEvent,
  type RouteInfo,
  TransactionRecord,
} from '../../src/observe/records.ts';
import type { TransportName } from '../../src/transport/flow.ts';
import { methodLabel } from '../../src/wire/methods.ts';

export interface RecordOptions {
  route?: RouteInfo;
  method?: string;
  callId?: string;
  cseq?: number;
  branch?: string;
  direction?: Direction;
  transport?: TransportName;
  downstream?: string;
  fromTag?: string | null;
  toTag?: string | null;
  requestIn?: number;
}

/** A transaction record as the observer creates it for a request; the test sets what happened next. */
export function transactionRecord(o: RecordOptions = {}): TransactionRecord {
  const method = o.method ?? 'INVITE';
  const branch = o.branch ?? 'z9hG4bK-1';
  const requestIn = o.requestIn ?? 100;
  return new TransactionRecord(
    `${branch}|${method}`,
    o.route ?? { index: 0, name: 'sip-signaling' },
    method,
    methodLabel(method),
    o.callId ?? 'a84b4c76e66710@pc33.atlanta.com',
    o.cseq ?? 1,
    branch,
    o.direction ?? 'downstream',
    o.transport ?? 'udp',
    o.downstream ?? '192.0.2.10:5060',
    o.fromTag === undefined ? 'ft' : o.fromTag,
    o.toTag === undefined ? null : o.toTag,
    requestIn,
    requestIn + 32_000,
  );
}

export interface CompletionTimes {
  requestOut: number;
  /** The first response from upstream; the final one when omitted. */
  firstResponseIn?: number;
  finalResponseIn: number;
  finalResponseOut: number;
}

/** The record as the observer leaves it when the final response was relayed back: a completed transaction. */
export function completed(tx: TransactionRecord, times: CompletionTimes, status = 200): TransactionRecord {
  tx.requestOut = times.requestOut;
  tx.firstResponseIn = times.firstResponseIn ?? times.finalResponseIn;
  tx.finalResponseIn = times.finalResponseIn;
  tx.finalResponseOut = times.finalResponseOut;
  tx.endedAt = times.finalResponseOut;
  tx.status = status;
  tx.statusClass = statusClassOf(status);
  tx.outcome = 'completed';
  return tx;
}

/** The scratch event the observer publishes per message sent on: an INVITE downstream over UDP, unless told. */
export function forwardedEvent(over: Partial<ForwardedEvent> = {}): ForwardedEvent {
  return {
    route: { index: 0, name: 'sip-gateway' },
    isRequest: true,
    methodLabel: 'INVITE',
    status: 0,
    direction: 'downstream',
    transport: 'udp',
    proxySeconds: 0.00003,
    traceId: null,
    ...over,
  };
}
