/**
 * Micro-benchmark of the ended-transaction table (`npm run bench:ended`):
 * src/observe/ended-transactions.ts at the default bound (max_transactions
 * 100,000), in its steady state under 4000 transactions/s: each add is 0.25 ms
 * after the one before, so with the 5 s linger 20,000 entries are lingering.
 *
 *   add    one ended transaction in (ids to bytes, flags, the FIFO ring), the
 *          expired drained every 256 adds as the observer's sweep does
 *   find   a lookup that hits (a retransmission after the end), and one that
 *          misses (every new request asks first)
 *
 * Keys are made before the run, so what is timed is the table's own work.
 */
import { bench, do_not_optimize, run } from 'mitata';
import { EndedTransactions, TRANSACTION_LINGER } from '../src/observe/ended-transactions.ts';
import type { TransactionRecord } from '../src/observe/records.ts';
import { newSpanId, newTraceId } from '../src/observe/trace-ids.ts';
import { transactionRecord } from '../test/support/records.ts';

const LINGER_MS = 5000;
const STEP_MS = 0.25;
const KEYS = 1 << 18;

const records: TransactionRecord[] = [];
for (let i = 0; i < KEYS; i++) {
  const tx = transactionRecord({ branch: `z9hG4bK-sS${i.toString(16).padStart(8, '0')}e8abb8e37f18f08d` });
  tx.traceId = newTraceId();
  tx.serverSpanId = newSpanId();
  tx.clientSpanId = newSpanId();
  tx.outcome = 'completed';
  tx.finalResponseIn = 1;
  records.push(tx);
}

const table = new EndedTransactions(100_000);
let next = 0;
let now = 0;

function addOne(): void {
  table.add(TRANSACTION_LINGER, records[next], now + LINGER_MS);
  next = (next + 1) & (KEYS - 1);
  now += STEP_MS;
  if ((next & 255) === 0) table.drain(now);
}

// Into the steady state before timing.
for (let i = 0; i < 2 * (LINGER_MS / STEP_MS); i++) addOne();
process.stderr.write(`lingering: ${table.size} entries\n`);

bench('add (and drain every 256)', () => addOne());
bench('find, hit', () => {
  // The entry added a second ago: lingering, so a hit.
  const key = records[(next - 4000) & (KEYS - 1)].key;
  do_not_optimize(table.find(key));
});
bench('find, miss', () => {
  // An entry that expired long ago (or is not yet added): a miss.
  const key = records[(next + KEYS / 2) & (KEYS - 1)].key;
  do_not_optimize(table.find(key));
});

await run();
