/**
 * The catalog is the contract: every route and process series of
 * docs/telemetry-contract.md with its type, labels, label values and buckets,
 * and nothing else. A change to either without the other fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  B2BUA_STITCH,
  CALL_OUTCOMES,
  DIRECTIONS,
  DURATION_BUCKETS,
  FINALS,
  LATENCY_BUCKETS,
  LIMITS,
  METHOD_LABELS,
  maxSeries,
  PROCESS_METRICS,
  PROXY_BUCKETS,
  REASONS,
  RESULTS,
  ROUTE_METRICS,
  STATUS_CLASSES,
  UPSTREAM_ERROR_KINDS,
} from '../../../src/sinks/metrics/catalog.ts';

const contract = readFileSync(
  join(import.meta.dirname, '..', '..', '..', 'docs', 'telemetry-contract.md'),
  'utf8',
);

/** Rows of the route series table: name → [type, extra label names]. */
function routeTable(): Map<string, { type: string; labels: string[] }> {
  const section = contract.slice(contract.indexOf('## Route series'), contract.indexOf('## Process series'));
  const rows = new Map<string, { type: string; labels: string[] }>();
  for (const line of section.split('\n')) {
    const m = /^\| `([a-z0-9_]+)` \| (\w+) \| ([^|]*) \|/.exec(line);
    if (m === null) continue;
    const labels =
      m[3].trim() === '—' ? [] : m[3].split(',').map((l) => l.trim().split(/\s/)[0].replaceAll('`', ''));
    rows.set(m[1], { type: m[2], labels });
  }
  return rows;
}

/** A closed set as the contract lists it on its `- \`label\`…:` line: backticked values, or bare words then `, else \`x\``. */
function labelSet(label: string): string[] {
  const line = contract.split('\n').find((l) => l.startsWith(`- \`${label}\``));
  assert.ok(line !== undefined, `contract lists ${label}`);
  const values = line.slice(line.indexOf(':') + 1);
  const otherwise = /, else `([^`]+)`/.exec(values);
  if (otherwise !== null) return [...values.slice(0, otherwise.index).trim().split(/\s+/), otherwise[1]];
  return [...values.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
}

function bucketLine(prefix: string): number[] {
  const line = contract.split('\n').find((l) => l.startsWith(prefix));
  assert.ok(line !== undefined, prefix);
  return line
    .slice(line.indexOf(':') + 1)
    .trim()
    .replace(/\.$/, '')
    .split(/\s+/)
    .map(Number);
}

describe('metrics catalog', () => {
  test('has exactly the route series of the contract, with their types and labels', () => {
    const table = routeTable();
    const specs = Object.values(ROUTE_METRICS);
    assert.deepEqual(specs.map((s) => s.name).sort(), [...table.keys()].sort());
    for (const spec of specs) {
      const row = table.get(spec.name)!;
      assert.equal(spec.type, row.type, spec.name);
      assert.deepEqual(Object.keys(spec.labels), row.labels, spec.name);
    }
  });

  test('takes label values from the closed sets the contract lists', () => {
    assert.deepEqual([...METHOD_LABELS], labelSet('method'));
    assert.deepEqual([...STATUS_CLASSES], labelSet('status_class'));
    assert.deepEqual([...DIRECTIONS], labelSet('direction'));
    assert.deepEqual([...CALL_OUTCOMES], labelSet('outcome'));
    assert.deepEqual([...FINALS], labelSet('final'));
    assert.deepEqual([...RESULTS], labelSet('result'));
    assert.deepEqual([...B2BUA_STITCH], labelSet('stitch'));
    assert.deepEqual([...LIMITS], labelSet('limit'));
    for (const example of labelSet('reason').filter((r) => r.includes('-')))
      assert.ok(REASONS.includes(example), `reason ${example}`);
    const kinds = /send failures toward the service \(([^)]*)\)/.exec(contract)![1];
    for (const kind of UPSTREAM_ERROR_KINDS.filter((k) => k !== 'other'))
      assert.ok(kinds.includes(`\`${kind}\``));
  });

  test('uses the contract buckets', () => {
    assert.deepEqual([...LATENCY_BUCKETS], bucketLine('Latency histogram buckets'));
    assert.deepEqual([...PROXY_BUCKETS], bucketLine('Proxy time buckets'));
    assert.deepEqual([...DURATION_BUCKETS], bucketLine('Session duration buckets'));
    for (const spec of Object.values(ROUTE_METRICS)) {
      if (spec.type !== 'histogram') continue;
      const expected =
        spec.name === 'sipspan_proxy_seconds'
          ? PROXY_BUCKETS
          : spec.name === 'sip_session_duration_seconds'
            ? DURATION_BUCKETS
            : LATENCY_BUCKETS;
      assert.deepEqual(spec.buckets, expected, spec.name);
    }
  });

  test('has the process series of the contract', () => {
    const section = contract.slice(contract.indexOf('## Process series'), contract.indexOf('## RFC 6076'));
    const named = [...section.matchAll(/`(sipspan_[a-z0-9_]+)/g)].map((m) => m[1]);
    assert.deepEqual(
      Object.values(PROCESS_METRICS)
        .map((s) => s.name)
        .sort(),
      [...new Set(named)].sort(),
    );
  });

  test('keeps every label set closed and free of duplicates, with a fixed worst case per route', () => {
    let lines = 0;
    for (const spec of Object.values(ROUTE_METRICS)) {
      for (const [label, values] of Object.entries(spec.labels)) {
        assert.equal(new Set(values).size, values.length, `${spec.name} ${label} has a duplicate value`);
        assert.ok(values.length > 0 && values.length <= 64, `${spec.name} ${label}`);
      }
      lines += maxSeries(spec);
    }
    // 15 methods x 7 classes x 18 lines dominate: the bound is a property of the catalog, not of traffic.
    assert.ok(lines < 5000, `worst case ${lines} series lines per route`);
  });
});
