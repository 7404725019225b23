/**
 * Micro-benchmark of what the observer does for one call (`npm run bench:observer`):
 * src/observe/observer.ts for SIPp's default flow through one route (INVITE, 180,
 * 200, ACK, BYE, 200), each request with its send and each response with its
 * send, then the turn's end events published (no sink subscribed: telemetry
 * off). Time runs at 2000 calls/s (0.5 ms per call) and the table sweep runs
 * every 250 ms of it, as the app's timer does, so ended transactions linger
 * (5 s) and expire as under load: ~30,000 lingering.
 *
 * This is the observer's cost with warm caches. Under load, with the process
 * asleep between SIPp's bursts, the same work reads several times longer:
 * bench/README.md ("Where telemetry off's time goes, message by message").
 *
 * Strings are made before the run (on the path they come from the wire), so
 * what is timed is the observer's own work.
 */
import { bench, run } from 'mitata';
import { Observer } from '../src/observe/observer.ts';
import type { ObservedTransaction, RouteInfo } from '../src/observe/records.ts';
import { samplerFromEnv } from '../src/observe/sampler.ts';

const CALLS_PER_MS = 2;
const SWEEP_EVERY_MS = 250;
/** More than the calls that linger (5 s at 2000 calls/s): a branch comes again only once forgotten. */
const KEYS = 1 << 15;

interface CallStrings {
  callId: string;
  invite: string;
  ack: string;
  bye: string;
}

const strings: CallStrings[] = [];
for (let i = 0; i < KEYS; i++) {
  const hex = i.toString(16).padStart(8, '0');
  strings.push({
    callId: `${i}-4711@127.0.0.1`,
    invite: `z9hG4bK-sS${hex}e8abb8e37f18f08d`,
    ack: `z9hG4bK-sS${hex}a1c2b8e37f18f08d`,
    bye: `z9hG4bK-sS${hex}07d4b8e37f18f08d`,
  });
}

const observer = new Observer(
  {
    maxTransactions: 100_000,
    maxCalls: 100_000,
    t1Ms: 500,
    inviteProvisionalMs: 180_000,
    callIdleMs: 3_600_000,
    sampler: samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_off' }),
    logSampleRatio: 1,
    correlator: null,
  },
  1,
);
const route: RouteInfo = { index: 0, name: 'sip-gateway' };
const CALLER = '127.0.0.1:5061';
const SERVICE = '127.0.0.1:5060';
const FROM_TAG = '4711SIPpTag001';
const TO_TAG = '1SIPpTag012';

let next = 0;
let now = 0;
let nextSweep = SWEEP_EVERY_MS;

/** A request observed and sent on, as the engine does for one it forwards. */
function forward(
  method: string,
  branch: string,
  callId: string,
  cseq: number,
  toTag: string | null,
  at: number,
): ObservedTransaction | null {
  const initial = toTag === null;
  const tx = observer.onRequest(
    route,
    method,
    branch,
    callId,
    cseq,
    FROM_TAG,
    toTag,
    'downstream',
    'udp',
    CALLER,
    at,
    null,
    true,
    null,
    initial ? 'sipp' : null,
    initial ? 'service' : null,
  );
  if (tx !== null) observer.onRequestSent(tx, SERVICE, 'udp', at);
  return tx;
}

/** A response observed and sent back. */
function answer(branch: string, method: string, status: number, at: number): void {
  const tx = observer.onResponse(branch, method, status, at);
  if (tx !== null) observer.onResponseSent(tx, status, at, at);
}

function observeOneCall(): void {
  const s = strings[next];
  next = (next + 1) & (KEYS - 1);
  now += 1 / CALLS_PER_MS;
  if (forward('INVITE', s.invite, s.callId, 1, null, now) === null)
    throw new Error('the observer refused a call: the tables are full');
  answer(s.invite, 'INVITE', 180, now);
  answer(s.invite, 'INVITE', 200, now);
  forward('ACK', s.ack, s.callId, 1, TO_TAG, now);
  forward('BYE', s.bye, s.callId, 2, TO_TAG, now);
  answer(s.bye, 'BYE', 200, now);
  observer.flushEvents();
  if (now >= nextSweep) {
    observer.sweep(now);
    nextSweep += SWEEP_EVERY_MS;
  }
}

// Into the steady state before timing: 10 s of calls, the first ended ones expired.
for (let i = 0; i < 10_000 * CALLS_PER_MS; i++) observeOneCall();
process.stderr.write(
  `steady state: ${observer.openTransactionCount} open, ${observer.endedTransactionCount} ended lingering, ${observer.callCount} calls\n`,
);

bench('one call: 3 requests, 3 responses, their sends, end events', () => observeOneCall());

await run();
