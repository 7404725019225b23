import {
  convertLegacyOtlpGrpcOptions,
  createOtlpGrpcExportDelegate,
  type OTLPGRPCExporterConfigNode,
} from '@opentelemetry/otlp-grpc-exporter-base';
import { TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { OtlpEncodingExporter } from './otlp-proto-exporter.ts';

/** The component type, service and method OpenTelemetry's own OTLP/gRPC span exporter uses. */
const COMPONENT_TYPE = 'otlp_grpc_span_exporter';
const GRPC_SERVICE = 'TraceExportService';
const GRPC_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/**
 * OTLP over gRPC: the SDK's exporter (endpoint, metadata, credentials,
 * compression and timeout from the OTEL_EXPORTER_OTLP_* variables) with
 * sipspan's encoder, as OtlpProtoTraceExporter is for HTTP. A gRPC request
 * carries the same ExportTraceServiceRequest bytes, so spans for it are
 * queued encoded too.
 */
export class OtlpGrpcTraceExporter extends OtlpEncodingExporter implements SpanExporter {
  constructor(config: OTLPGRPCExporterConfigNode = {}) {
    super((serializer) =>
      createOtlpGrpcExportDelegate(
        convertLegacyOtlpGrpcOptions(config, 'TRACES'),
        serializer,
        COMPONENT_TYPE,
        TraceExporterMetricsHelper,
        undefined,
        GRPC_SERVICE,
        GRPC_PATH,
      ),
    );
  }
}
