import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { TransactionRecord } from '../../src/observe/records.ts';
import { buildSpans, FinishedSpan } from '../../src/sinks/tracing/span-builder.ts';
import { completed, transactionRecord } from './records.ts';

/** The resource and scope of the spans built here. */
export const spanResource = resourceFromAttributes({ 'service.name': 'sipspan', 'sipspan.node': 'node-1' });
export const spanScope = { name: 'sipspan', version: '0.1.0' };

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** Finished transaction n (INVITE when n is even, else BYE), answered through sipspan, ids distinct per n. */
export function finishedTransaction(n: number): TransactionRecord {
  const t = transactionRecord({ method: n % 2 === 0 ? 'INVITE' : 'BYE', branch: `z9hG4bK-${n}` });
  t.traceId = hex(n + 1, 32);
  t.serverSpanId = hex(2 * n + 1, 16);
  t.clientSpanId = hex(2 * n + 2, 16);
  return completed(t, { requestOut: 100.5, finalResponseIn: 130, finalResponseOut: 130.25 });
}

/** The spans the sink builds for finishedTransaction(n): SERVER and CLIENT. */
export function transactionSpans(n: number): ReadableSpan[] {
  return buildSpans(finishedTransaction(n), spanResource, spanScope, null);
}

/**
 * A span sipspan never builds (an array attribute value, another resource): what
 * sipspan's encoder leaves to the SDK serializer.
 */
export function oddSpan(
  name: string,
  spanId: string,
  attributes: FinishedSpan['attributes'],
  resource: Resource = spanResource,
): ReadableSpan {
  return new FinishedSpan(
    name,
    SpanKind.SERVER,
    { traceId: 'ffffffffffffffffffffffffffffff01', spanId, traceFlags: TraceFlags.SAMPLED },
    undefined,
    10,
    20,
    { code: SpanStatusCode.UNSET },
    attributes,
    [],
    [],
    resource,
    spanScope,
  );
}
