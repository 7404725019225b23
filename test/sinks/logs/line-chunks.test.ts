import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CHUNK_BYTES, LineChunks } from '../../../src/sinks/logs/line-chunks.ts';

function add(q: LineChunks, line: string): void {
  const buf = q.room(line.length);
  q.add(q.at + buf.write(line, q.at, 'latin1'));
}

describe('LineChunks', () => {
  test('lines come out in order, whole, with their count; bytes taken are never written again', () => {
    const q = new LineChunks();
    const line = `${'x'.repeat(999)}\n`;
    const n = Math.floor(CHUNK_BYTES / line.length) * 2 + 5; // two full chunks and part of a third
    for (let i = 0; i < 10; i++) add(q, line);
    const first = q.take() as Buffer;
    assert.equal(q.takenLines, 10);
    const copy = Buffer.from(first);
    for (let i = 10; i < n; i++) add(q, line);
    assert.deepEqual(first, copy, 'lines added later went after the bytes taken');
    assert.equal(q.lines, n - 10);
    assert.equal(q.bytes, (n - 10) * line.length);
    let lines = 10;
    let text = first.toString('latin1');
    for (let b = q.take(); b !== null; b = q.take()) {
      assert.ok(b.length <= CHUNK_BYTES);
      assert.equal(b.length, q.takenLines * line.length);
      lines += q.takenLines;
      text += b.toString('latin1');
    }
    assert.equal(lines, n);
    assert.equal(text, line.repeat(n));
    assert.equal(q.lines, 0);
    assert.equal(q.bytes, 0);
  });

  test('a line longer than a chunk gets a chunk of its own', () => {
    const q = new LineChunks();
    add(q, 'a\n');
    const long = `${'y'.repeat(CHUNK_BYTES * 2)}\n`;
    add(q, long);
    assert.equal((q.take() as Buffer).toString('latin1'), 'a\n');
    assert.equal((q.take() as Buffer).toString('latin1'), long);
    assert.equal(q.take(), null);
  });

  test('clear forgets what is queued and says how many lines that was', () => {
    const q = new LineChunks();
    for (let i = 0; i < 3; i++) add(q, `${'z'.repeat(CHUNK_BYTES / 2)}\n`);
    assert.equal(q.clear(), 3);
    assert.equal(q.take(), null);
    assert.equal(q.bytes, 0);
    add(q, 'b\n');
    assert.equal((q.take() as Buffer).toString('latin1'), 'b\n');
  });
});
