import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import { decodeProtobuf, type ReceivedSpan, SpanArrivals } from './otlp-receiver.ts';

const raw = (b: Buffer) => b;

/** The OTLP trace service, its messages left as bytes (decoded by the tests' own protobuf reader). */
const TRACE_SERVICE = {
  Export: {
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};

/** A real OTLP/gRPC trace receiver on 127.0.0.1:0 (HTTP/2, no TLS). */
export class GrpcTraceReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Spans per request, in arrival order. */
  readonly requests: number[] = [];
  /** When set, every request is answered with this gRPC status (exporter failure tests). */
  failWith: status | null = null;
  port = 0;
  private readonly server = new Server();
  private readonly arrivals = new SpanArrivals();

  constructor() {
    this.server.addService(TRACE_SERVICE, {
      Export: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
        if (this.failWith !== null) {
          callback({ code: this.failWith, details: 'refused by the test' });
          return;
        }
        let spans: ReceivedSpan[];
        try {
          spans = decodeProtobuf(call.request);
        } catch (err) {
          callback({ code: status.INVALID_ARGUMENT, details: String(err) });
          return;
        }
        this.requests.push(spans.length);
        this.spans.push(...spans);
        // An empty ExportTraceServiceResponse: full success.
        callback(null, Buffer.alloc(0));
        this.arrivals.arrived(this.spans);
      },
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) =>
        err === null ? resolve(port) : reject(err),
      ),
    );
    return this;
  }

  /** Resolves when at least n spans have arrived, or after timeoutMs (whatever came). */
  waitForSpans(n: number, timeoutMs: number): Promise<void> {
    return this.arrivals.wait(this.spans, n, timeoutMs);
  }

  stop(): void {
    this.server.forceShutdown();
  }
}
