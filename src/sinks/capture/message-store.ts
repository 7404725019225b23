import { Buffer } from 'node:buffer';
import type { CapturedEvent } from '../../observe/records.ts';
import type { TransportName } from '../../transport/flow.ts';
import { type MessageInfo, readMessageInfo } from './message-info.ts';
import { type RedactOptions, redactMessage } from './redact.ts';

/**
 * The messages of recent calls, for the call view and pcap export: every
 * message as received ('in') and as forwarded ('out') at each hop, grouped by
 * trace id (one call is one trace, and the two legs of a B2BUA have two
 * Call-IDs but one trace), with a second index by Call-ID.
 *
 *   byTrace (Map, insertion order = age)            byCallId
 *   ┌────────────┬────────────┬─────┬────────────┐   callId → StoredCall
 *   │ oldest call│            │ ... │ newest call│
 *   └────────────┴────────────┴─────┴────────────┘
 *     ▲ evicted first when the store holds maxCalls calls, or when the
 *       counted bytes would pass maxBytes
 *
 * Counted bytes are each message's length plus a fixed overhead per message
 * and per call (the objects and strings around the bytes), so the bound holds
 * for the store's own memory, not only the raw SIP.
 */
export interface MessageStoreOptions {
  /** Bound of the counted bytes of all stored calls. */
  maxBytes: number;
  maxCalls: number;
  /** Past this many messages a call keeps its first ones and counts the rest as truncated. */
  maxMessagesPerCall: number;
  redact: RedactOptions;
}

export const DEFAULT_STORE_OPTIONS: Readonly<MessageStoreOptions> = Object.freeze({
  maxBytes: 64 * 1024 * 1024,
  maxCalls: 10_000,
  maxMessagesPerCall: 2000,
  redact: Object.freeze({ users: false, auth: false }),
});

/**
 * The objects, strings and ArrayBuffer around a message's bytes. Measured as
 * heapUsed + arrayBuffers growth (--expose-gc) over 40 000–50 000 stored
 * messages of 300–1200 bytes: 260–560 bytes each beyond their length.
 */
export const MESSAGE_OVERHEAD_BYTES = 640;
/** A call's object, arrays and index entries. */
export const CALL_OVERHEAD_BYTES = 1024;

export interface StoredMessage {
  /** Store-wide order of arrival. */
  readonly seq: number;
  readonly hop: number;
  readonly route: string;
  readonly direction: 'in' | 'out';
  readonly transport: TransportName;
  readonly source: string;
  readonly destination: string;
  /** performance.now() milliseconds. */
  readonly at: number;
  readonly callId: string;
  readonly bytes: Buffer;
  /** The other version of this message at the same hop ('in' ↔ 'out'), or null. */
  pair: StoredMessage | null;
  /** Read when the call is first looked at, not on arrival. */
  info: MessageInfo | null;
  /** The same bytes were seen before at this hop in this direction. */
  retransmission: boolean;
}

export class StoredCall {
  readonly traceId: string;
  readonly callIds: string[] = [];
  readonly messages: StoredMessage[] = [];
  /** Counted bytes (see MESSAGE_OVERHEAD_BYTES). */
  bytes = CALL_OVERHEAD_BYTES;
  readonly firstAt: number;
  lastAt: number;
  /** Messages not kept because the call had maxMessagesPerCall already. */
  truncated = 0;
  /** Bumped on every change; summaries cache on it. */
  version = 0;
  /** How many messages have their info read and retransmission mark set. */
  analyzed = 0;

  constructor(traceId: string, at: number) {
    this.traceId = traceId;
    this.firstAt = at;
    this.lastAt = at;
  }

  /** Read the info of messages that arrived since the last look, and mark retransmissions. */
  analyze(): void {
    const msgs = this.messages;
    for (let i = this.analyzed; i < msgs.length; i++) {
      const m = msgs[i];
      m.info = readMessageInfo(m.bytes);
      for (let k = 0; k < i; k++) {
        const o = msgs[k];
        if (
          o.hop === m.hop &&
          o.direction === m.direction &&
          o.bytes.length === m.bytes.length &&
          o.bytes.equals(m.bytes)
        ) {
          m.retransmission = true;
          break;
        }
      }
    }
    this.analyzed = msgs.length;
  }
}

export interface StoreStats {
  messages: number;
  calls: number;
  bytes: number;
  maxBytes: number;
  maxCalls: number;
  evictedCalls: number;
  /** Messages with no trace id whose Call-ID belongs to no stored call. */
  droppedUnattributed: number;
  droppedTruncated: number;
}

/**
 * The proxy's copies come from Node's 8 KiB Buffer pool: a kept view would pin
 * its whole slab, so the store's real memory could pass the bound many times.
 * A message gets its own allocation unless it already has one.
 */
function ownCopy(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return b;
  const own = Buffer.allocUnsafeSlow(b.length);
  b.copy(own);
  return own;
}

export class MessageStore {
  readonly options: MessageStoreOptions;
  private readonly byTrace = new Map<string, StoredCall>();
  private readonly byCallId = new Map<string, StoredCall>();
  private countedBytes = 0;
  private messageCount = 0;
  private seq = 0;
  private evicted = 0;
  private unattributed = 0;
  private truncatedTotal = 0;
  /** The last 'in' message: the proxy publishes 'in' then 'out' of one message back to back. */
  private lastIn: StoredMessage | null = null;
  private readonly redacting: boolean;
  /** Told of every call that got a message (isNew on its first); null when nobody listens. */
  onChange: ((call: StoredCall, isNew: boolean) => void) | null = null;
  onEvict: ((call: StoredCall) => void) | null = null;

  constructor(opts: Partial<MessageStoreOptions> = {}) {
    this.options = { ...DEFAULT_STORE_OPTIONS, ...opts };
    this.redacting = this.options.redact.users || this.options.redact.auth;
  }

  get bytes(): number {
    return this.countedBytes;
  }

  get size(): number {
    return this.byTrace.size;
  }

  stats(): StoreStats {
    return {
      messages: this.messageCount,
      calls: this.byTrace.size,
      bytes: this.countedBytes,
      maxBytes: this.options.maxBytes,
      maxCalls: this.options.maxCalls,
      evictedCalls: this.evicted,
      droppedUnattributed: this.unattributed,
      droppedTruncated: this.truncatedTotal,
    };
  }

  get(traceId: string): StoredCall | undefined {
    return this.byTrace.get(traceId);
  }

  findByCallId(callId: string): StoredCall | undefined {
    return this.byCallId.get(callId);
  }

  /** Oldest first. */
  calls(): IterableIterator<StoredCall> {
    return this.byTrace.values();
  }

  /** Keep one captured message. Returns its call, or null when it was not kept. */
  add(e: CapturedEvent): StoredCall | null {
    const isOut = e.direction === 'out';
    let call: StoredCall | undefined;
    if (e.traceId !== null && e.traceId !== '') call = this.byTrace.get(e.traceId);
    if (call === undefined) call = this.byCallId.get(e.callId);
    let isNew = false;
    if (call === undefined) {
      if (e.traceId === null || e.traceId === '') {
        this.unattributed++;
        if (!isOut) this.lastIn = null;
        return null;
      }
      call = new StoredCall(e.traceId, e.at);
      isNew = true;
    }
    if (call.messages.length >= this.options.maxMessagesPerCall) {
      call.truncated++;
      this.truncatedTotal++;
      if (!isOut) this.lastIn = null;
      return null;
    }
    const bytes = ownCopy(this.redacting ? redactMessage(e.bytes, this.options.redact) : e.bytes);
    const messageCost = bytes.length + MESSAGE_OVERHEAD_BYTES;
    const callCost = isNew ? CALL_OVERHEAD_BYTES : 0;
    if (messageCost + callCost > this.options.maxBytes) {
      this.truncatedTotal++;
      if (!isNew) call.truncated++;
      if (!isOut) this.lastIn = null;
      return null;
    }
    if (isNew) while (this.byTrace.size >= this.options.maxCalls) this.evictOldest(null);
    // Oldest calls first, but never the one this message belongs to.
    while (this.countedBytes + callCost + messageCost > this.options.maxBytes && this.evictOldest(call)) {}
    if (this.countedBytes + callCost + messageCost > this.options.maxBytes) {
      // Only an existing call can be left here: it fills the store alone. It keeps what it has.
      call.truncated++;
      this.truncatedTotal++;
      if (!isOut) this.lastIn = null;
      return call;
    }
    if (isNew) {
      this.byTrace.set(call.traceId, call);
      this.countedBytes += CALL_OVERHEAD_BYTES;
    }
    const msg: StoredMessage = {
      seq: ++this.seq,
      hop: e.route.index,
      route: e.route.name,
      direction: e.direction,
      transport: e.transport,
      source: e.source,
      destination: e.destination,
      at: e.at,
      callId: e.callId,
      bytes,
      pair: null,
      info: null,
      retransmission: false,
    };
    if (isOut) {
      const last = this.lastIn;
      if (last !== null && last.hop === msg.hop && last.callId === msg.callId) {
        msg.pair = last;
        last.pair = msg;
      }
      this.lastIn = null;
    } else this.lastIn = msg;
    call.messages.push(msg);
    call.bytes += messageCost;
    this.countedBytes += messageCost;
    this.messageCount++;
    if (e.at > call.lastAt) call.lastAt = e.at;
    call.version++;
    if (!call.callIds.includes(e.callId)) {
      call.callIds.push(e.callId);
      if (!this.byCallId.has(e.callId)) this.byCallId.set(e.callId, call);
    }
    if (this.onChange !== null) this.onChange(call, isNew);
    return call;
  }

  /** Drop the oldest call other than `keep`; false when there is none. */
  private evictOldest(keep: StoredCall | null): boolean {
    for (const call of this.byTrace.values()) {
      if (call === keep) continue;
      this.remove(call);
      return true;
    }
    return false;
  }

  private remove(call: StoredCall): void {
    this.byTrace.delete(call.traceId);
    for (const id of call.callIds) if (this.byCallId.get(id) === call) this.byCallId.delete(id);
    this.countedBytes -= call.bytes;
    this.messageCount -= call.messages.length;
    this.evicted++;
    if (this.lastIn !== null && call.messages.includes(this.lastIn)) this.lastIn = null;
    if (this.onEvict !== null) this.onEvict(call);
  }

  clear(): void {
    for (const call of [...this.byTrace.values()]) this.remove(call);
  }
}
