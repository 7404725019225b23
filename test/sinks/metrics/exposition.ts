/**
 * Reading expositions in tests: samples by name and labels, series counts,
 * promtool (Prometheus text) and a structural check of OpenMetrics.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** The exemplar part (`# {…} v ts`) of an OpenMetrics line, or null. */
  exemplar: string | null;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*?)\})? (\S+)(?: (# .*))?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): ParsedSample[] {
  const out: ParsedSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    assert.ok(m !== null, `unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]), exemplar: m[4] ?? null });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include every pair of `match`. */
export function sumOf(text: string, name: string, match: Record<string, string> = {}): number {
  let n = 0;
  for (const s of parseExposition(text)) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) n += s.value;
  }
  return n;
}

/** Lines that are series (not comments): what a scrape stores. */
export function seriesCount(text: string): number {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
}

export interface PromtoolResult {
  /** 0 clean, 3 lint findings only, 1 the exposition could not be parsed. */
  status: number | null;
  output: string;
}

/**
 * `promtool check metrics` on an exposition. promtool exits 1 when it cannot
 * parse the text (a real error) and 3 when it parsed it but has lint findings
 * (one `name problem` line each). A missing promtool fails the test.
 */
export function promtoolCheck(text: string): PromtoolResult {
  const r = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, 'promtool is not installed (apt-get install prometheus)');
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/**
 * OpenMetrics 1.0 structure: `# EOF` last, one TYPE per family before its
 * samples, counter families named without `_total` and sampled with it,
 * exemplars only on counters and histogram buckets with a label set of at most
 * 128 characters, no series twice.
 */
export function checkOpenMetrics(text: string): void {
  const lines = text.split('\n');
  assert.equal(lines.at(-1), '', 'ends with a newline');
  assert.equal(lines.at(-2), '# EOF', '# EOF is the last line');
  const types = new Map<string, string>();
  const seen = new Set<string>();
  for (const line of lines.slice(0, -2)) {
    assert.notEqual(line, '', 'no blank lines in OpenMetrics');
    if (line.startsWith('# TYPE ')) {
      const [, , family, type] = line.split(' ');
      assert.ok(!types.has(family), `family ${family} declared twice`);
      if (type === 'counter') assert.ok(!family.endsWith('_total'), `counter family ${family} keeps _total`);
      types.set(family, type);
      continue;
    }
    if (line.startsWith('#')) continue;
    const [sample] = parseExposition(line);
    const family = [...types.keys()].find(
      (f) =>
        sample.name === f ||
        (sample.name.startsWith(f) && /^_(total|bucket|sum|count)$/.test(sample.name.slice(f.length))),
    );
    assert.ok(family !== undefined, `sample ${sample.name} before its TYPE`);
    const type = types.get(family);
    if (type === 'counter') assert.equal(sample.name, `${family}_total`, line);
    if (sample.exemplar !== null) {
      assert.ok(type === 'counter' || sample.name.endsWith('_bucket'), `exemplar on ${sample.name}`);
      const m = /^# \{(.*)\} (\S+)(?: (\S+))?$/.exec(sample.exemplar);
      assert.ok(m !== null, `exemplar syntax: ${sample.exemplar}`);
      assert.ok(m[1].length <= 128, 'exemplar label set longer than 128 characters');
      assert.ok(Number.isFinite(Number(m[2])), 'exemplar value');
    }
    const key = `${sample.name}{${Object.entries(sample.labels)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}}`;
    assert.ok(!seen.has(key), `series twice: ${key}`);
    seen.add(key);
  }
}

export async function scrape(port: number, accept?: string): Promise<{ type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: accept === undefined ? {} : { accept },
  });
  assert.equal(res.status, 200);
  return { type: res.headers.get('content-type') ?? '', text: await res.text() };
}

export const OPENMETRICS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
