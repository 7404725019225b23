import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hasAddress, locateAddress, readParam, readTag, readUser } from '../../src/wire/read-name-addr.ts';
import { bytes } from './bytes.ts';

function tag(value: string): string | null {
  const b = bytes(value);
  return readTag(b, 0, b.length);
}

function uriOf(value: string): string | null {
  const b = bytes(value);
  const span = locateAddress(b, 0, b.length);
  // Filling a given span, and only asking whether there is one, agree with a new span.
  const into = { uriStart: 7, uriEnd: 7, paramsStart: 7, bracketed: true };
  const filled = locateAddress(b, 0, b.length, into);
  assert.equal(hasAddress(b, 0, b.length), span !== null);
  if (span === null) assert.equal(filled, null);
  else assert.deepEqual(filled, span);
  return span === null ? null : b.toString('latin1', span.uriStart, span.uriEnd);
}

describe('locateAddress', () => {
  test('finds the URI inside <...> after a token display name', () => {
    const b = bytes('Bob <sip:bob@biloxi.example.com>;tag=a6c85cf');
    const span = locateAddress(b, 0, b.length)!;
    assert.equal(b.toString('latin1', span.uriStart, span.uriEnd), 'sip:bob@biloxi.example.com');
    assert.equal(span.bracketed, true);
    assert.equal(b.toString('latin1', span.paramsStart), ';tag=a6c85cf');
  });

  test('skips a quoted display name with escaped quotes and "<" inside it (RFC 4475 wsinv)', () => {
    assert.equal(uriOf('"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>'), 'sip:jdrosen@example.com');
    assert.equal(uriOf('"a <fake@x> b" <sip:real@example.com>'), 'sip:real@example.com');
  });

  test('no LWS between display name and "<" is fine (RFC 4475 lwsdisp)', () => {
    assert.equal(uriOf('caller<sip:caller@example.com>;tag=323'), 'sip:caller@example.com');
  });

  test('an addr-spec without <> ends at ";", "," or whitespace: what follows are header parameters', () => {
    const b = bytes('sip:user@example.com;tag=81x2');
    const span = locateAddress(b, 0, b.length)!;
    assert.equal(b.toString('latin1', span.uriStart, span.uriEnd), 'sip:user@example.com');
    assert.equal(span.bracketed, false);
    assert.equal(span.paramsStart, 'sip:user@example.com'.length);
    assert.equal(uriOf('  sip:a@b ;tag=1'), 'sip:a@b');
  });

  test('an IPv6 host inside <> is kept whole', () => {
    assert.equal(uriOf('"Caller" <sip:caller@[2001:db8::1]>'), 'sip:caller@[2001:db8::1]');
  });

  test('an unterminated quote or a missing ">" gives null (RFC 4475 quotbal)', () => {
    assert.equal(uriOf('"Mr. J. User <sip:j.user@example.com>;tag=93334'), null);
    assert.equal(uriOf('<sip:a@example.com'), null);
    assert.equal(uriOf(''), null);
    assert.equal(uriOf(';tag=1'), null);
  });
});

describe('readTag', () => {
  test('reads the tag of a name-addr and of an addr-spec', () => {
    assert.equal(tag('Alice <sip:alice@atlanta.example.com>;tag=1928301774'), '1928301774');
    assert.equal(tag('sip:user@example.com;tag=81x2'), '81x2');
  });

  test('LWS around ";" and "=" and folding are allowed (RFC 4475 wsinv)', () => {
    assert.equal(tag('sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n'), '1918181833n');
    assert.equal(
      tag('"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8'),
      '98asjd8',
    );
  });

  test('a tag after other parameters is found; the name is case-insensitive', () => {
    assert.equal(tag('<sip:a@example.com>;x=1;y;TAG=abc;z=2'), 'abc');
  });

  test('a URI parameter named tag inside <> is not the header tag', () => {
    assert.equal(tag('<sip:a@example.com;tag=inside>'), null);
    assert.equal(tag('<sip:a@example.com;tag=inside>;tag=outside'), 'outside');
  });

  test('no tag gives null; a tag without a value gives ""', () => {
    assert.equal(tag('Bob <sip:bob@example.com>'), null);
    assert.equal(tag('<sip:a@example.com>;tag'), '');
  });

  test('a tag made of token characters is kept byte for byte (RFC 4475 intmeth)', () => {
    assert.equal(tag("<sip:a@example.com>;tag=_token~1'+`*%!-."), "_token~1'+`*%!-.");
  });
});

describe('readParam and readUser', () => {
  test('readParam reads a quoted value with its quotes', () => {
    const b = bytes(';a=1;b="x;y";c');
    assert.equal(readParam(b, 0, b.length, 'b'), '"x;y"');
    assert.equal(readParam(b, 0, b.length, 'c'), '');
    assert.equal(readParam(b, 0, b.length, 'd'), null);
  });

  test('readUser gives the user part, or null when the URI has none', () => {
    const a = bytes('"Bob" <sip:bob@example.com>;tag=1');
    assert.equal(readUser(a, 0, a.length), 'bob');
    const b = bytes('<sip:example.com>');
    assert.equal(readUser(b, 0, b.length), null);
    const c = bytes('sip:alice@example.com;tag=2');
    assert.equal(readUser(c, 0, c.length), 'alice');
  });
});
