import { type IOtlpExportDelegate, OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
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
import type { EncodedBodyExporter } from './encoded-span-queue.ts';
import { OtlpTraceEncoder } from './otlp-encoder.ts';
import type { ExportDone } from './span-queue.ts';

/** The component type OpenTelemetry's own OTLP/HTTP span exporter reports. */
const COMPONENT_TYPE = 'otlp_http_span_exporter';

/** A body exportEncoded() hands to export(), and the array that stands for its spans there. */
interface Encoded {
  items: ReadableSpan[] | null;
  body: Uint8Array | null;
}

/**
 * An OTLP exporter of the SDK (its transport, retries, bounded in-flight
 * queue and its own metrics) whose request bodies are written by sipspan's
 * encoder (otlp-encoder.ts) in place of the SDK serializer. The bodies are
 * the same bytes; a batch the encoder leaves alone goes through the SDK
 * serializer. The transport is the subclass's: OTLP/HTTP here, gRPC in
 * otlp-grpc-exporter.ts.
 *
 * The batcher queues spans for these exporters already encoded
 * (encoded-span-queue.ts) and sends each batch's body with exportEncoded();
 * export() encodes the spans it is given.
 */
export class OtlpEncodingExporter extends OTLPExporterBase<ReadableSpan[]> implements EncodedBodyExporter {
  private readonly encoded: Encoded;

  protected constructor(
    delegateFor: (
      serializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse>,
    ) => IOtlpExportDelegate<ReadableSpan[]>,
  ) {
    const encoder = new OtlpTraceEncoder();
    const encoded: Encoded = { items: null, body: null };
    super(
      delegateFor({
        serializeRequest: (spans) => {
          if (spans === encoded.items && encoded.body !== null) return encoded.body;
          return encoder.encode(spans) ?? ProtobufTraceSerializer.serializeRequest(spans);
        },
        deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
      }),
    );
    this.encoded = encoded;
  }

  /**
   * Send a request already encoded. The SDK's export path takes an array of
   * spans, and counts the batch by its length for its own metrics: an empty
   * array of that length stands for the spans, and the serializer returns the
   * body for it. The path serializes before it returns, so the slot is
   * cleared when export() returns.
   */
  exportEncoded(body: Uint8Array, spans: number, done: ExportDone): void {
    const items = new Array<ReadableSpan>(spans);
    this.encoded.items = items;
    this.encoded.body = body;
    try {
      this.export(items, done);
    } finally {
      this.encoded.items = null;
      this.encoded.body = null;
    }
  }
}

/**
 * OTLP over HTTP with protobuf bodies: the SDK's exporter (endpoint, headers,
 * timeout, compression, certificates from the OTEL_EXPORTER_OTLP_* variables)
 * with sipspan's encoder.
 */
export class OtlpProtoTraceExporter extends OtlpEncodingExporter implements SpanExporter {
  constructor(config: OTLPExporterNodeConfigBase = {}) {
    super((serializer) =>
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
        serializer,
        COMPONENT_TYPE,
        TraceExporterMetricsHelper,
        undefined,
      ),
    );
  }
}
