import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
  type OTLPExporterNodeConfigBase,
} from '@opentelemetry/otlp-exporter-base/node-http';
import {
  type IExportTraceServiceResponse,
  type ISerializer,
  ProtobufTraceSerializer,
  TraceExporterMetricsHelper,
} from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { OtlpTraceEncoder } from './otlp-encoder.ts';
import type { EncodingExporter, QueuedSpan } from './span-batcher.ts';

/** The component type OpenTelemetry's own OTLP/HTTP span exporter reports. */
const COMPONENT_TYPE = 'otlp_http_span_exporter';

/**
 * OTLP over HTTP with protobuf bodies: the SDK's exporter (endpoint, headers,
 * timeout, compression, certificates from the OTEL_EXPORTER_OTLP_* variables;
 * retries; the bounded in-flight queue) with sipspan's encoder in place of
 * the SDK serializer (otlp-encoder.ts). The bodies are the same bytes.
 *
 * The batcher hands each span to encodeSpan() as it is queued, so a batch
 * arrives here as bytes to join. Spans given as spans (export() called
 * directly, or what the encoder leaves alone) are encoded when sent, those
 * the encoder does not cover by the SDK serializer.
 */
export class OtlpProtoTraceExporter
  extends OTLPExporterBase<QueuedSpan[]>
  implements SpanExporter, EncodingExporter
{
  private readonly encoder: OtlpTraceEncoder;

  constructor(config: OTLPExporterNodeConfigBase = {}) {
    const encoder = new OtlpTraceEncoder();
    const serializer: ISerializer<QueuedSpan[], IExportTraceServiceResponse> = {
      serializeRequest: (items) => serialize(encoder, items),
      deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
    };
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
        serializer,
        COMPONENT_TYPE,
        TraceExporterMetricsHelper,
        undefined,
      ),
    );
    this.encoder = encoder;
  }

  /** The span's bytes, now; the span itself when the encoder leaves it to the SDK serializer. */
  encodeSpan(span: ReadableSpan): QueuedSpan {
    try {
      return this.encoder.encodeSpan(span) ?? span;
    } catch {
      // Never into the code that ended the transaction: the span is encoded when sent instead.
      return span;
    }
  }
}

function serialize(encoder: OtlpTraceEncoder, items: QueuedSpan[]): Uint8Array | undefined {
  let allEncoded = true;
  for (let i = 0; i < items.length && allEncoded; i++) allEncoded = items[i] instanceof Uint8Array;
  if (allEncoded) return encoder.request(items as Uint8Array[]);
  const encoded: Uint8Array[] = [];
  const spans: ReadableSpan[] = [];
  for (const item of items) {
    if (item instanceof Uint8Array) encoded.push(item);
    else spans.push(item);
  }
  const rest = encoder.encode(spans) ?? ProtobufTraceSerializer.serializeRequest(spans);
  if (encoded.length === 0 || rest === undefined) return rest;
  // Concatenated protobuf messages merge, repeated fields appending: one request holding both ResourceSpans.
  return Buffer.concat([encoder.request(encoded), rest]);
}
