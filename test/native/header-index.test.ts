/**
 * native/header-index.h, the header fields of each datagram of a batch found in C: where it indexes
 * a message, it gives the scanner's fields; a message read through it is the scanner's message for
 * any bytes (the RFC 4475 / 5118 corpus, mutations of it, messages built field by field); and what
 * it leaves out (folding, bad lines, too many fields) goes to the scanner.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { BatchedUdpSocket } from '../../src/transport/batched-udp.ts';
import { INDEX_FIELDS, INDEX_HEAD, INDEX_STRIDE } from '../../src/wire/header-index.ts';
import { HeaderId } from '../../src/wire/header-names.ts';
import { FIELD_STRIDE } from '../../src/wire/sip-message.ts';
import { loadCorpus } from '../support/corpus.ts';
import { waitUntil } from '../support/raw-peers.ts';
import { describeIndexCase, indexCaseArb, indexNative, indexProperty } from './header-index-properties.ts';

const SEED = 4475;

function message(lines: string[], body = ''): Buffer {
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
}

const INVITE = message(
  [
    'INVITE sip:bob@biloxi.example.com SIP/2.0',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@biloxi.example.com>',
    'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710',
    'CSeq: 314159 INVITE',
    'l: 4',
  ],
  'v=0\n',
);

describe('native header index', () => {
  test('is built here, and indexes a plain INVITE as the scanner does', () => {
    assert.ok(indexNative !== null, 'native/udp-io.c is built by npm ci where a C compiler is');
    assert.equal(indexProperty(INVITE, 3), 7);
  });

  test('every corpus message, as archived and in wire form, at several offsets', () => {
    let indexed = 0;
    for (const file of loadCorpus()) {
      for (const bytes of file.raw.equals(file.wire) ? [file.raw] : [file.raw, file.wire]) {
        for (const prefix of [0, 1, 7]) if (indexProperty(bytes, prefix) >= 0 && prefix === 0) indexed++;
      }
    }
    // Most of the torture tests are of the plain shape; the rest (folding, bad lines) were scanned.
    assert.ok(indexed >= 30, `${indexed} corpus messages indexed`);
  });

  test('any bytes: mutated corpus messages, messages built field by field, noise', () => {
    let indexed = 0;
    let runs = 0;
    fc.assert(
      fc.property(indexCaseArb, ([bytes, prefix]) => {
        runs++;
        if (indexProperty(bytes, prefix) >= 0) indexed++;
      }),
      { numRuns: 4000, seed: SEED, examples: [] },
    );
    // Both ways are taken often: the index and the scanner behind it.
    assert.ok(indexed > runs / 5 && indexed < runs, `${indexed} of ${runs} indexed`);
    assert.equal(typeof describeIndexCase([INVITE, 0]), 'string');
  });

  test('leaves to the scanner: a folded line, a line that is no field, CRLF before the start line, no empty line', () => {
    const out = new Int32Array(INDEX_STRIDE);
    const index = indexNative as NonNullable<typeof indexNative>;
    const cases = [
      message(['OPTIONS sip:x SIP/2.0', 'Subject: a', ' folded', 'l: 0']),
      message(['OPTIONS sip:x SIP/2.0', 'Foobar roobar', 'l: 0']),
      Buffer.concat([Buffer.from('\r\n'), message(['OPTIONS sip:x SIP/2.0', 'l: 0'])]),
      Buffer.from('OPTIONS sip:x SIP/2.0\r\nl: 0\r\n', 'latin1'),
      Buffer.from('OPTIONS sip:x SIP/2.0', 'latin1'),
      Buffer.alloc(0),
    ];
    for (const bytes of cases) {
      assert.equal(index(bytes, 0, bytes.length, out), -1, JSON.stringify(bytes.toString('latin1')));
      indexProperty(bytes, 0);
    }
  });

  test(`indexes up to ${INDEX_FIELDS} fields; one more is the scanner's, and so are the scan limits`, () => {
    const out = new Int32Array(INDEX_STRIDE);
    const index = indexNative as NonNullable<typeof indexNative>;
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: ${i}`);
    const full = message(['OPTIONS sip:x SIP/2.0', ...fields(INDEX_FIELDS - 1), 'l: 0']);
    assert.equal(index(full, 0, full.length, out), INDEX_FIELDS);
    assert.equal(out[INDEX_HEAD + (INDEX_FIELDS - 1) * FIELD_STRIDE], HeaderId.CONTENT_LENGTH);
    indexProperty(full, 0);
    const over = message(['OPTIONS sip:x SIP/2.0', ...fields(INDEX_FIELDS), 'l: 0']);
    assert.equal(index(over, 0, over.length, out), -1);
    indexProperty(over, 0);
  });

  test('a range outside the buffer or a short output array indexes nothing', () => {
    const index = indexNative as NonNullable<typeof indexNative>;
    assert.equal(index(INVITE, 0, INVITE.length + 1, new Int32Array(INDEX_STRIDE)), -1);
    assert.equal(index(INVITE, 5, 4, new Int32Array(INDEX_STRIDE)), -1);
    assert.equal(index(INVITE, 0, INVITE.length, new Int32Array(INDEX_STRIDE - 1)), -1);
  });

  test('a worker thread has tables of its own: it indexes, and the main thread still does', async () => {
    const url = new URL('../../src/transport/batched-udp.ts', import.meta.url).href;
    const worker = new Worker(
      `const { nativeHeaderIndex } = await import(${JSON.stringify(url)});
       const { parentPort, workerData } = await import('node:worker_threads');
       const index = nativeHeaderIndex();
       const bytes = Buffer.from(workerData);
       parentPort.postMessage(index === null ? null : index(bytes, 0, bytes.length, new Int32Array(${INDEX_STRIDE})));`,
      { eval: true, workerData: INVITE },
    );
    const fields = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    assert.equal(fields, 7);
    assert.equal(indexProperty(INVITE, 0), 7);
  });

  test('a batch read from a real socket carries each datagram index where its bytes lie', async () => {
    const seen: number[][] = [];
    const socket = BatchedUdpSocket.open(
      4,
      '127.0.0.1',
      0,
      { reusePort: false, bufferBytes: 1 << 20, stamps: false },
      function (this: unknown, batch: Buffer, count: number) {
        for (let i = 0; i < count; i++) {
          const at = i * INDEX_STRIDE;
          const index = socket.index as Int32Array;
          const offset = socket.meta[i * 5];
          // The first field's line starts right after the start line, in the batch's Buffer.
          seen.push([
            index[at],
            index[at + 1] - offset,
            index[at + INDEX_HEAD + 1] - offset,
            batch.length > 0 ? 1 : 0,
          ]);
        }
      },
      null,
    );
    const sender = createSocket('udp4');
    try {
      for (let i = 0; i < 3; i++) sender.send(INVITE, socket.port, '127.0.0.1');
      await waitUntil(() => seen.length === 3, 5000);
      const startLineEnd = INVITE.indexOf('\n') + 1;
      for (const s of seen) assert.deepEqual(s, [7, startLineEnd, startLineEnd, 1]);
    } finally {
      sender.close();
      socket.close();
    }
  });
});
