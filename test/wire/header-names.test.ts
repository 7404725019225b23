import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CANONICAL_NAME,
  equalsLower,
  HEADER_ID_COUNT,
  HeaderId,
  identifyHeader,
  KNOWN_HEADER_NAMES,
} from '../../src/wire/header-names.ts';
import { skipLws, skipQuoted, trimLwsRight, valueEnd } from '../../src/wire/lws.ts';
import { KNOWN_METHODS, methodLabel, statusClass } from '../../src/wire/methods.ts';
import { readTokenList } from '../../src/wire/read-token-list.ts';
import { bytes } from './bytes.ts';

function id(name: string): number {
  const b = bytes(name);
  return identifyHeader(b, 0, b.length);
}

/** Random-looking but fixed letter casing: upper on odd positions. */
function zigzag(s: string): string {
  return [...s].map((c, i) => (i % 2 === 1 ? c.toUpperCase() : c.toLowerCase())).join('');
}

describe('identifyHeader', () => {
  test('every canonical name is identified, in lower, upper and mixed case', () => {
    assert.equal(CANONICAL_NAME.length, HEADER_ID_COUNT);
    for (let h = 1; h < HEADER_ID_COUNT; h++) {
      const name = CANONICAL_NAME[h];
      assert.equal(id(name), h, name);
      assert.equal(id(name.toLowerCase()), h, name);
      assert.equal(id(name.toUpperCase()), h, name);
      assert.equal(id(zigzag(name)), h, name);
    }
  });

  test('compact forms (RFC 3261 §7.3.3) in both cases', () => {
    const compact: [string, number][] = [
      ['v', HeaderId.VIA],
      ['i', HeaderId.CALL_ID],
      ['f', HeaderId.FROM],
      ['t', HeaderId.TO],
      ['l', HeaderId.CONTENT_LENGTH],
      ['m', HeaderId.CONTACT],
      ['c', HeaderId.CONTENT_TYPE],
    ];
    for (const [name, want] of compact) {
      assert.equal(id(name), want, name);
      assert.equal(id(name.toUpperCase()), want, name);
    }
    for (const other of ['s', 'k', 'e', 'o', 'x']) assert.equal(id(other), HeaderId.OTHER, other);
  });

  test('near misses are OTHER', () => {
    for (const name of [
      'Vias',
      'Vi',
      'Call-IDs',
      'CSeqq',
      'Fro',
      'Tox',
      'Max-Forward',
      'Content-Lengths',
      'X-Trace',
      'Routes',
      'Require-Proxy',
      'Session_ID',
      'traceparent2',
      'Authorisation',
    ]) {
      assert.equal(id(name), HeaderId.OTHER, name);
    }
  });

  test('identifies exactly the names of KNOWN_HEADER_NAMES, which the native header index is given', () => {
    const known = new Map(KNOWN_HEADER_NAMES);
    assert.equal(known.size, KNOWN_HEADER_NAMES.length, 'no name twice');
    for (const [name, want] of KNOWN_HEADER_NAMES) {
      assert.equal(name, name.toLowerCase());
      assert.equal(id(name), want, name);
    }
    // Any other token, and any casing of a known one: the list and identifyHeader agree.
    const nameArb = fc.oneof(
      fc.constantFrom(...KNOWN_HEADER_NAMES.map(([name]) => name)).map(zigzag),
      fc.stringMatching(/^[-.!%*_+`'~a-zA-Z0-9]{1,24}$/),
      fc
        .constantFrom(...KNOWN_HEADER_NAMES.map(([name]) => name))
        .chain((name) => fc.nat(name.length - 1).map((i) => `${name.slice(0, i)}-${name.slice(i + 1)}`)),
    );
    fc.assert(
      fc.property(nameArb, (name) => {
        assert.equal(id(name), known.get(name.toLowerCase()) ?? HeaderId.OTHER, name);
      }),
      { numRuns: 3000, seed: 3261 },
    );
  });

  test('equalsLower compares ASCII letters without case, and only at equal length', () => {
    const b = bytes('Content-Length');
    assert.equal(equalsLower(b, 0, b.length, 'content-length'), true);
    assert.equal(equalsLower(b, 0, b.length - 1, 'content-length'), false);
    assert.equal(equalsLower(bytes('Content_Length'), 0, 14, 'content-length'), false);
    assert.equal(equalsLower(bytes('['), 0, 1, '{'), false, 'only A-Z are folded');
  });
});

describe('lws helpers', () => {
  test('skipLws and trimLwsRight step over SP, HTAB, CR and LF only', () => {
    const b = bytes(' \t\r\n x \r\n\t');
    assert.equal(skipLws(b, 0, b.length), 5);
    assert.equal(trimLwsRight(b, 0, b.length), 6);
    assert.equal(skipLws(b, 0, 3), 3, 'never past end');
  });

  test('skipQuoted honours backslash escapes and reports an unterminated string', () => {
    const b = bytes('"a\\"b" rest');
    assert.equal(skipQuoted(b, 0, b.length), 6);
    assert.equal(skipQuoted(bytes('"open'), 0, 5), -1);
  });

  test('valueEnd finds the comma that ends a value, not one in quotes or <>', () => {
    const b = bytes('"x,y" <sip:a,b@h>;p=1, next');
    assert.equal(valueEnd(b, 0, b.length), b.indexOf(', next'));
    assert.equal(valueEnd(bytes('no comma'), 0, 8), 8);
  });
});

describe('methods and token lists', () => {
  test('known methods are their own label, every other token is `other` (case-sensitive)', () => {
    for (const m of KNOWN_METHODS) assert.equal(methodLabel(m), m);
    assert.equal(methodLabel('invite'), 'other');
    assert.equal(methodLabel('RE%47IST%45R'), 'other');
    assert.equal(methodLabel("!interesting-Method0123456789_*+`.%indeed'~"), 'other');
  });

  test('status classes', () => {
    assert.deepEqual([100, 199, 200, 302, 486, 503, 603, 699].map(statusClass), [
      '1xx',
      '1xx',
      '2xx',
      '3xx',
      '4xx',
      '5xx',
      '6xx',
      '6xx',
    ]);
  });

  test('readTokenList reads option tags separated by commas and LWS (RFC 4475 bext01)', () => {
    const b = bytes(' nothingSupportsThis, \r\n nothingSupportsThisEither ,x;y=1,,  ');
    assert.deepEqual(readTokenList(b, 0, b.length), [
      'nothingSupportsThis',
      'nothingSupportsThisEither',
      'x',
    ]);
    assert.deepEqual(readTokenList(bytes(''), 0, 0), []);
  });
});
