import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { BoundedWriter } from '../../../src/sinks/logs/bounded-writer.ts';
import { type LogTarget, openLogTarget } from '../../../src/sinks/logs/destination.ts';
import { CHUNK_BYTES } from '../../../src/sinks/logs/line-chunks.ts';
import { processStats } from '../../../src/sinks/process-stats.ts';
import { StalledPipe } from './stalled-pipe.ts';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const LINE = `${JSON.stringify({ level: 'info', msg: 'transaction', call_id: 'x'.repeat(150) })}\n`;
const tick = () => new Promise((r) => setImmediate(r));

describe('BoundedWriter', () => {
  test('a destination that never drains: lines past the bound are dropped and counted, memory stays bounded', async () => {
    const pipe = new StalledPipe({ highWaterMark: 1024 });
    const bound = 64 * 1024;
    const w = new BoundedWriter(openLogTarget(pipe), bound);
    const droppedBefore = processStats.logLinesDropped;
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    const total = 200_000; // 40 MB of lines
    for (let i = 0; i < total; i++) {
      w.write(LINE);
      if (i % 1000 === 0) await tick();
    }
    await tick();
    assert.ok(w.pendingBytes <= bound, `${w.pendingBytes} bytes pending over the ${bound} bound`);
    assert.equal(w.written, 0);
    assert.ok(w.dropped >= total - bound / LINE.length, `${w.dropped} dropped`);
    assert.equal(processStats.logLinesDropped - droppedBefore, w.dropped, 'drops reach processStats');
    assert.equal(pipe.chunks, 1, 'one batch went to the stream, then the writer waited for drain');
    gc();
    const grownMb = (process.memoryUsage().heapUsed - heap0) / 1024 / 1024;
    assert.ok(grownMb < 4, `heap grew ${grownMb.toFixed(1)} MiB`);
    const t0 = performance.now();
    await w.flush(100);
    assert.ok(performance.now() - t0 < 1000, 'flush gives up at its deadline');
    w.close();
  });

  test('a slow destination: the writer waits for drain, then resumes and writes everything in order', async () => {
    const got: string[] = [];
    let release: (() => void) | null = null;
    const slow = new Writable({
      highWaterMark: 512,
      write(chunk, _enc, cb) {
        got.push(chunk.toString());
        release = () => cb();
      },
    });
    const w = new BoundedWriter(openLogTarget(slow), 1024 * 1024);
    for (let i = 0; i < 50; i++) w.write(`{"n":${i}}\n`);
    await tick();
    for (let i = 50; i < 100; i++) w.write(`{"n":${i}}\n`);
    // Release the destination step by step, as a slow reader would.
    const flushed = w.flush(2000);
    for (let k = 0; k < 200 && w.written < 100; k++) {
      await new Promise((r) => setTimeout(r, 5));
      const r = release as (() => void) | null;
      release = null;
      r?.();
    }
    await flushed;
    const lines = got.join('').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).n),
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.equal(w.written, 100);
    assert.equal(w.dropped, 0);
    w.close();
  });

  test('batches: many lines in one turn of the event loop are a stream write per 64 KiB, not per line', async () => {
    const pass = new PassThrough();
    const chunks: Buffer[] = [];
    pass.on('data', (c: Buffer) => chunks.push(c));
    const w = new BoundedWriter(openLogTarget(pass), 1024 * 1024);
    const room = w.room(LINE.length);
    const at = w.at;
    w.commit(at + room.write(LINE, at, 'latin1'));
    for (let i = 1; i < 1000; i++) w.write(LINE);
    await w.flush(1000);
    // Lines are not split between chunks: a chunk holds this many whole ones.
    const perChunk = Math.floor(CHUNK_BYTES / LINE.length);
    assert.equal(chunks.length, Math.ceil(1000 / perChunk));
    assert.equal(Buffer.concat(chunks).toString('latin1'), LINE.repeat(1000));
    assert.equal(w.written, 1000);
    w.close();
  });

  test('a full disk (/dev/full): lines are dropped and counted, nothing throws', async () => {
    const w = new BoundedWriter(openLogTarget('/dev/full'), 1024 * 1024);
    const stderrWrite = process.stderr.write;
    const reported: string[] = [];
    process.stderr.write = ((s: string) => {
      reported.push(String(s));
      return true;
    }) as typeof process.stderr.write;
    try {
      for (let i = 0; i < 100; i++) w.write(LINE);
      await w.flush(2000);
      for (let i = 0; i < 100; i++) w.write(LINE);
      await w.flush(2000);
    } finally {
      process.stderr.write = stderrWrite;
    }
    assert.equal(w.written, 0);
    assert.equal(w.dropped, 200);
    assert.equal(w.isFailed, true);
    assert.equal(reported.length, 1, 'the failure is reported once on stderr');
    assert.match(reported[0], /ENOSPC/);
    w.close();
  });

  test('a destination that errors is reopened after a while, and lines flow again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipspan-writer-'));
    const file = join(dir, 'out.log');
    const broken = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('no space'), { code: 'ENOSPC' }));
      },
    });
    broken.on('error', () => {});
    const good = openLogTarget(file);
    const target: LogTarget = { stream: broken, owned: false, reopen: () => good, label: 'test' };
    const stderrWrite = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    const w = new BoundedWriter(target, 1024 * 1024, 50);
    try {
      w.write('{"n":1}\n');
      await w.flush(500);
      assert.equal(w.dropped, 1);
      await new Promise((r) => setTimeout(r, 100));
      w.write('{"n":2}\n');
      await w.flush(1000);
    } finally {
      process.stderr.write = stderrWrite;
      w.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(readFileSync(file, 'utf8'), '{"n":2}\n');
    assert.equal(w.written, 1);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a log file moved away (logrotate) is opened again at its path: lines before go to the old file, lines after to the new, none lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipspan-writer-'));
    const file = join(dir, 'sipspan.log');
    const w = new BoundedWriter(openLogTarget(file), 1024 * 1024);
    try {
      for (let n = 1; n <= 3; n++) w.write(`{"n":${n}}\n`);
      await w.flush(1000);
      renameSync(file, `${file}.1`);
      // Handed to the old file's stream and not yet written when the reopen comes: it ends there.
      w.write('{"n":4}\n');
      const inFlight = w.flush(1000);
      assert.ok(w.pendingBytes > 0, 'a write in flight');
      w.reopenFile();
      // Queued after the reopen: the new file's.
      w.write('{"n":5}\n');
      await inFlight;
      await w.flush(1000);
      assert.equal(w.pendingBytes, 0);
    } finally {
      w.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(readFileSync(`${file}.1`, 'utf8'), '{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n');
    assert.equal(readFileSync(file, 'utf8'), '{"n":5}\n');
    assert.equal(w.written, 5);
    assert.equal(w.dropped, 0);
    rmSync(dir, { recursive: true, force: true });
  });

  test('reopening stdout is nothing: a stream that is not a file stays as it is', async () => {
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    const w = new BoundedWriter({ stream, owned: false, reopen: null, label: 'stdout' }, 1024);
    w.write('{"n":1}\n');
    w.reopenFile();
    w.write('{"n":2}\n');
    await w.flush(1000);
    w.close();
    assert.equal(chunks.join(''), '{"n":1}\n{"n":2}\n');
  });
});

describe('BoundedWriter, any mix of lines and a destination that stalls', () => {
  test('what is written is every line not dropped, whole and in order; counts add up; the bound holds', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            // Short lines, lines near a chunk's size, and lines longer than a chunk.
            size: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 60_000, max: 140_000 })),
            straight: fc.boolean(),
            yieldAfter: fc.boolean(),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        fc.integer({ min: 1024, max: 512 * 1024 }),
        fc.integer({ min: 0, max: 3 }),
        async (lines, bound, slowness) => {
          const got: Buffer[] = [];
          let pendingCallbacks: (() => void)[] = [];
          // highWaterMark 1: every write says "full", and each completes only when released.
          const stream = new Writable({
            highWaterMark: 1,
            write(chunk: Buffer, _enc, cb) {
              got.push(Buffer.from(chunk));
              if (slowness === 0) cb();
              else pendingCallbacks.push(() => cb());
            },
          });
          const w = new BoundedWriter({ stream, owned: false, reopen: null, label: 'test' }, bound);
          const accepted: string[] = [];
          const release = () => {
            const now = pendingCallbacks;
            pendingCallbacks = [];
            for (const cb of now) cb();
          };
          for (let i = 0; i < lines.length; i++) {
            const { size, straight, yieldAfter } = lines[i];
            const line = `${String(i).padStart(6, '0')}${'x'.repeat(size)}\n`;
            const droppedBefore = w.dropped;
            if (straight) {
              const room = w.room(line.length);
              const at = w.at;
              w.commit(at + room.write(line, at, 'latin1'));
            } else w.write(line);
            if (w.dropped === droppedBefore) accepted.push(line);
            assert.ok(w.pendingBytes <= bound, `${w.pendingBytes} pending over ${bound}`);
            if (yieldAfter) {
              await tick();
              if (slowness > 1) release();
            }
          }
          const flushed = w.flush(5000);
          for (let k = 0; k < 10_000 && w.pendingBytes > 0; k++) {
            release();
            await tick();
          }
          await flushed;
          w.close();
          assert.equal(Buffer.concat(got).toString('latin1'), accepted.join(''));
          assert.equal(w.written, accepted.length);
          assert.equal(w.written + w.dropped, lines.length);
        },
      ),
      { numRuns: 60 },
    );
  });
});
