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

/** The component type OpenTelemetry's own OTLP/HTTP span exporter reports. */
const COMPONENT_TYPE = 'otlp_http_span_exporter';

/**
 * OTLP over HTTP with protobuf bodies: the SDK's exporter (endpoint, headers,
 * timeout, compression, certificates from the OTEL_EXPORTER_OTLP_* variables;
 * retries; the bounded in-flight queue) with sipspan's one-pass encoder in
 * place of the SDK serializer (otlp-encoder.ts). The bodies are the same
 * bytes; a batch the encoder leaves alone goes through the SDK serializer.
 */
export class OtlpProtoTraceExporter extends OTLPExporterBase<ReadableSpan[]> implements SpanExporter {
  constructor(config: OTLPExporterNodeConfigBase = {}) {
    const encoder = new OtlpTraceEncoder();
    const serializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse> = {
      serializeRequest: (spans) => encoder.encode(spans) ?? ProtobufTraceSerializer.serializeRequest(spans),
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
  }
}
