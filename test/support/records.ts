import { type Direction, type RouteInfo, TransactionRecord } from '../../src/observe/records.ts';
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
