import { setImmediate as nextTurn } from 'node:timers/promises';
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
import type { PreparingExporter } from './span-batcher.ts';

/** The component type OpenTelemetry's own OTLP/HTTP span exporter reports. */
const COMPONENT_TYPE = 'otlp_http_span_exporter';
/** Spans encoded per event-loop turn when a batch is prepared: ~0.15 ms of encoding. */
const SPANS_PER_TURN = 64;

/** The body prepare() wrote, and the batch array it is for. */
interface Prepared {
  spans: ReadableSpan[] | null;
  body: Uint8Array | null;
}

/**
 * OTLP over HTTP with protobuf bodies: the SDK's exporter (endpoint, headers,
 * timeout, compression, certificates from the OTEL_EXPORTER_OTLP_* variables;
 * retries; the bounded in-flight queue) with sipspan's encoder in place of
 * the SDK serializer (otlp-encoder.ts). The bodies are the same bytes; a
 * batch the encoder leaves alone goes through the SDK serializer.
 *
 * The batcher prepares each batch before exporting it: the body is written
 * SPANS_PER_TURN spans per event-loop turn, so forwarding runs between the
 * slices. export() then sends that body; a batch that was not prepared (an
 * export called directly) is encoded when sent.
 */
export class OtlpProtoTraceExporter
  extends OTLPExporterBase<ReadableSpan[]>
  implements SpanExporter, PreparingExporter
{
  private readonly sliced = new OtlpTraceEncoder();
  private readonly prepared: Prepared;

  constructor(config: OTLPExporterNodeConfigBase = {}) {
    const encoder = new OtlpTraceEncoder();
    const prepared: Prepared = { spans: null, body: null };
    const serializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse> = {
      serializeRequest: (spans) => {
        if (prepared.spans === spans && prepared.body !== null) {
          const body = prepared.body;
          prepared.spans = null;
          prepared.body = null;
          return body;
        }
        return encoder.encode(spans) ?? ProtobufTraceSerializer.serializeRequest(spans);
      },
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
    this.prepared = prepared;
  }

  /** Write the body of `spans` a slice per turn, for the export() of that same array that follows. */
  async prepare(spans: ReadableSpan[]): Promise<void> {
    this.prepared.spans = null;
    this.prepared.body = null;
    const encoder = this.sliced;
    if (spans.length === 0 || !encoder.begin(spans[0])) return;
    for (let from = 0; from < spans.length; from += SPANS_PER_TURN) {
      if (from > 0) await nextTurn();
      // Not encodable here: export() hands the whole batch to the SDK serializer.
      if (!encoder.add(spans, from, Math.min(spans.length, from + SPANS_PER_TURN))) return;
    }
    this.prepared.spans = spans;
    this.prepared.body = encoder.finish();
  }
}
