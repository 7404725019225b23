import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  isAcceptableTracestate,
  parseSessionId,
  parseTraceId,
  parseTraceparent,
} from '../../src/wire/read-trace-context.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const VALID = `00-${TRACE}-${SPAN}-01`;

describe('parseTraceparent (W3C Trace Context §3.2)', () => {
  test('reads a version 00 value', () => {
    assert.deepEqual(parseTraceparent(VALID), { traceId: TRACE, spanId: SPAN, flags: 1 });
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-00`), { traceId: TRACE, spanId: SPAN, flags: 0 });
  });

  test('surrounding whitespace is ignored', () => {
    assert.equal(parseTraceparent(`  ${VALID} \t`)?.traceId, TRACE);
  });

  test('uppercase hex is invalid anywhere ("lowercase hex" is required)', () => {
    assert.equal(parseTraceparent(`00-${TRACE.toUpperCase()}-${SPAN}-01`), null);
    assert.equal(parseTraceparent(`00-${TRACE}-${SPAN.toUpperCase()}-01`), null);
    assert.equal(parseTraceparent(`0A-${TRACE}-${SPAN}-01`), null);
    assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-0A`), null);
  });

  test('an all-zero trace id or parent id is invalid', () => {
    assert.equal(parseTraceparent(`00-${'0'.repeat(32)}-${SPAN}-01`), null);
    assert.equal(parseTraceparent(`00-${TRACE}-${'0'.repeat(16)}-01`), null);
  });

  test('version ff is invalid', () => {
    assert.equal(parseTraceparent(`ff-${TRACE}-${SPAN}-01`), null);
  });

  test('version 00 must be exactly 55 characters', () => {
    assert.equal(parseTraceparent(`${VALID}-extra`), null);
    assert.equal(parseTraceparent(`${VALID}0`), null);
    assert.equal(parseTraceparent(VALID.slice(0, 54)), null);
  });

  test('a future version is read by its first four fields, and may append fields after a dash', () => {
    assert.deepEqual(parseTraceparent(`cc-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN, flags: 1 });
    assert.deepEqual(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-the-future-will-be-like`), {
      traceId: TRACE,
      spanId: SPAN,
      flags: 1,
    });
    assert.equal(parseTraceparent(`cc-${TRACE}-${SPAN}-01.what`), null, 'extra data must start with a dash');
  });

  test('unknown flag bits are carried (the value is the whole byte)', () => {
    assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-ff`)?.flags, 255);
    assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-09`)?.flags, 9);
  });

  for (const bad of [
    '',
    'garbage',
    `00_${TRACE}-${SPAN}-01`,
    `00-${TRACE}_${SPAN}-01`,
    `00-${TRACE}-${SPAN}_01`,
    `00-${TRACE.slice(1)}g-${SPAN}-01`,
    `00-${TRACE}-${SPAN.slice(1)}z-01`,
    `0-${TRACE}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-1`,
    `00-${TRACE}-${SPAN}-0\u0131`,
  ]) {
    test(`malformed ${JSON.stringify(bad.slice(0, 20))}… is null`, () => {
      assert.equal(parseTraceparent(bad), null);
    });
  }
});

describe('X-Trace-Id and Session-ID', () => {
  test('X-Trace-Id is 32 hex digits, non-zero, normalised to lowercase', () => {
    assert.equal(parseTraceId(TRACE), TRACE);
    assert.equal(parseTraceId(` ${TRACE.toUpperCase()} `), TRACE);
    assert.equal(parseTraceId('0'.repeat(32)), null);
    assert.equal(parseTraceId(TRACE.slice(1)), null);
    assert.equal(parseTraceId(`${TRACE}0`), null);
    assert.equal(parseTraceId(`${TRACE.slice(1)}x`), null);
  });

  test('Session-ID gives the local uuid and ignores ;remote= (RFC 7989)', () => {
    const local = 'ab30317f1a784dc48ff824d0d3715d86';
    const remote = '47755a9de7794ba387653f2099600ef2';
    assert.equal(parseSessionId(local), local);
    assert.equal(parseSessionId(`${local};remote=${remote}`), local);
    assert.equal(parseSessionId(` ${local.toUpperCase()} ;remote=00000000000000000000000000000000`), local);
  });

  test('a Session-ID that is not 32 hex, or all zero, is null', () => {
    assert.equal(parseSessionId('not-a-uuid'), null);
    assert.equal(parseSessionId('ab30317f-1a78-4dc4-8ff8-24d0d3715d86'), null);
    assert.equal(parseSessionId('0'.repeat(32)), null);
    assert.equal(parseSessionId(''), null);
  });

  test('tracestate is accepted up to 512 characters and 32 members of printable ASCII', () => {
    assert.equal(isAcceptableTracestate('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'), true);
    assert.equal(isAcceptableTracestate(''), false);
    assert.equal(isAcceptableTracestate('a'.repeat(513)), false);
    assert.equal(isAcceptableTracestate(Array.from({ length: 32 }, (_, i) => `k${i}=v`).join(',')), true);
    assert.equal(isAcceptableTracestate(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')), false);
    assert.equal(isAcceptableTracestate('a=b\r\nX-Injected: 1'), false);
  });
});
