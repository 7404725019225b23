/**
 * Exporter selection and the resource from the standard OTEL_* variables,
 * checked against a real receiver: each exporter really sends where the
 * variables say, in the format the protocol names.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { ConfigError } from '../../../src/config/config-error.ts';
import { samplerFromEnv } from '../../../src/observe/sampler.ts';
import { OtlpProtoTraceExporter } from '../../../src/sinks/tracing/otlp-proto-exporter.ts';
import { buildSpans } from '../../../src/sinks/tracing/span-builder.ts';
import {
  exportersFromEnv,
  resourceFromEnv,
  tracingEnvProblems,
} from '../../../src/sinks/tracing/tracing-sink.ts';
import { TraceReceiver } from '../../support/otlp-receiver.ts';
import { transactionRecord } from '../../support/records.ts';

function oneTransaction() {
  const t = transactionRecord({
    route: { index: 0, name: 'sip-gateway' },
    method: 'OPTIONS',
    callId: 'c@x',
    branch: 'b',
    downstream: '127.0.0.1:5060',
    requestIn: 10,
  });
  t.traceId = '0af7651916cd43dd8448eb211c80319c';
  t.serverSpanId = 'b7ad6b7169203331';
  t.clientSpanId = 'b7ad6b7169203332';
  t.requestOut = 11;
  t.finalResponseIn = 12;
  t.finalResponseOut = 13;
  t.status = 200;
  t.outcome = 'completed';
  return buildSpans(t, resourceFromAttributes({ 'service.name': 'sipspan' }), { name: 'sipspan' }, null);
}

function exportOnce(exporter: SpanExporter): Promise<number> {
  return new Promise((resolve) => exporter.export(oneTransaction(), (r) => resolve(r.code)));
}

describe('exporters from the environment', () => {
  const receiver = new TraceReceiver();
  before(() => receiver.start());
  after(() => receiver.stop());

  test('unset, empty or none: no exporter (the sink keeps spans in its store)', () => {
    assert.deepEqual(exportersFromEnv({}), []);
    assert.deepEqual(exportersFromEnv({ OTEL_TRACES_EXPORTER: ' ' }), []);
    assert.deepEqual(exportersFromEnv({ OTEL_TRACES_EXPORTER: 'none' }), []);
    assert.deepEqual(exportersFromEnv({ OTEL_TRACES_EXPORTER: 'otlp,none' }), []);
  });

  test('OTEL_SDK_DISABLED=true (any case): no exporter whatever OTEL_TRACES_EXPORTER says', () => {
    assert.deepEqual(exportersFromEnv({ OTEL_SDK_DISABLED: 'TRUE', OTEL_TRACES_EXPORTER: 'otlp' }), []);
    assert.equal(exportersFromEnv({ OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'console' }).length, 1);
  });

  test('unknown exporter or protocol: a configuration error at start', () => {
    assert.throws(() => exportersFromEnv({ OTEL_TRACES_EXPORTER: 'jaeger' }), {
      code: 'SIPSPAN_ERR_CONFIG_INVALID',
    });
    assert.throws(
      () => exportersFromEnv({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml' }),
      { code: 'SIPSPAN_ERR_CONFIG_INVALID' },
    );
  });

  test('a bad protocol is reported under the variable that was set', () => {
    const pathOf = (env: NodeJS.ProcessEnv) => tracingEnvProblems(env).map((p) => p.path);
    assert.deepEqual(pathOf({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http' }), [
      'OTEL_EXPORTER_OTLP_PROTOCOL',
    ]);
    assert.deepEqual(
      pathOf({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http',
      }),
      ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'],
    );
  });

  test('tracingEnvProblems: every problem a start would refuse, nothing for a good environment', () => {
    assert.deepEqual(tracingEnvProblems({}), []);
    assert.deepEqual(
      tracingEnvProblems({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      }),
      [],
    );
    const problems = tracingEnvProblems({ OTEL_TRACES_EXPORTER: 'jaeger', OTEL_TRACES_SAMPLER: 'sometimes' });
    assert.deepEqual(
      problems.map((p) => p.path),
      ['OTEL_TRACES_SAMPLER', 'OTEL_TRACES_EXPORTER'],
    );
    assert.match(problems[0].message, /unknown sampler "sometimes" \(always_on, always_off, traceidratio/);
  });

  test('otlp defaults to http/protobuf at OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, with headers', async () => {
    const [e, ...rest] = exportersFromEnv({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=blue,authorization=Bearer%20t0k',
    });
    assert.equal(rest.length, 0);
    assert.equal(e.name, 'otlp/http/protobuf');
    const n = receiver.requests.length;
    assert.equal(await exportOnce(e.exporter), 0);
    const req = receiver.requests[n];
    assert.equal(req.path, '/v1/traces');
    assert.equal(req.contentType, 'application/x-protobuf');
    assert.equal(req.headers['x-tenant'], 'blue');
    assert.equal(req.headers.authorization, 'Bearer t0k');
    assert.equal(req.spans, 2);
    await e.exporter.shutdown();
  });

  test('the traces protocol and endpoint win over the generic ones; the traces endpoint is used as given', async () => {
    const [e] = exportersFromEnv({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
    });
    assert.equal(e.name, 'otlp/http/json');
    const n = receiver.requests.length;
    assert.equal(await exportOnce(e.exporter), 0);
    assert.equal(receiver.requests[n].contentType, 'application/json');
    await e.exporter.shutdown();
  });

  test('the OTLP/protobuf exporter reads OTEL_EXPORTER_OTLP_ENDPOINT from process.env itself', async () => {
    const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    try {
      const exporter = new OtlpProtoTraceExporter();
      const n = receiver.requests.length;
      assert.equal(await exportOnce(exporter), 0);
      assert.equal(receiver.requests[n].path, '/v1/traces');
      await exporter.shutdown();
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
    }
  });

  test('zipkin at OTEL_EXPORTER_ZIPKIN_ENDPOINT; grpc and console are built; a list gives several', async () => {
    const list = exportersFromEnv({
      OTEL_TRACES_EXPORTER: 'zipkin, otlp ,console,zipkin',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
      OTEL_EXPORTER_ZIPKIN_ENDPOINT: `${receiver.url}/api/v2/spans`,
    });
    assert.deepEqual(
      list.map((e) => e.name),
      ['zipkin', 'otlp/grpc', 'console'],
    );
    const n = receiver.requests.length;
    assert.equal(await exportOnce(list[0].exporter), 0);
    assert.equal(receiver.requests[n].path, '/api/v2/spans');
    for (const e of list) await e.exporter.shutdown();
  });
});

describe('sampler from the environment', () => {
  const problemOf = (env: NodeJS.ProcessEnv) => {
    try {
      samplerFromEnv(env);
      return null;
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems[0];
    }
  };

  test('unset or empty: parentbased_always_on; names in any case', () => {
    assert.equal(samplerFromEnv({}).description, 'parentbased_always_on');
    assert.equal(samplerFromEnv({ OTEL_TRACES_SAMPLER: ' ' }).description, 'parentbased_always_on');
    assert.equal(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'Always_Off' }).description, 'always_off');
    assert.equal(
      samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }).description,
      'traceidratio{0.5}',
    );
    assert.equal(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio' }).description, 'traceidratio{1}');
  });

  test('an unknown sampler is a configuration error, not a silent always on', () => {
    assert.equal(problemOf({ OTEL_TRACES_SAMPLER: 'traceidration' })?.path, 'OTEL_TRACES_SAMPLER');
  });

  test('a ratio that is not a number from 0 to 1 is a configuration error for the ratio samplers only', () => {
    for (const arg of ['abc', '1.5', '-0.1', 'NaN']) {
      assert.deepEqual(problemOf({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: arg }), {
        path: 'OTEL_TRACES_SAMPLER_ARG',
        message: `expected a sampling ratio from 0 to 1, got "${arg}"`,
      });
    }
    assert.equal(problemOf({ OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: 'abc' }), null);
  });
});

describe('resource from the environment', () => {
  test('defaults: service.name sipspan, a uuid instance id, host.name, sipspan.node', () => {
    const a = resourceFromEnv({}, 'node-a').attributes;
    const b = resourceFromEnv({}, 'node-a').attributes;
    assert.equal(a['service.name'], 'sipspan');
    assert.equal(a['sipspan.node'], 'node-a');
    assert.match(String(a['service.instance.id']), /^[0-9a-f-]{36}$/);
    assert.notEqual(a['service.instance.id'], b['service.instance.id']);
    assert.equal(typeof a['host.name'], 'string');
    assert.equal(typeof a['service.version'], 'string');
  });

  test('OTEL_RESOURCE_ATTRIBUTES over the defaults, OTEL_SERVICE_NAME over both; sipspan.node is the config', () => {
    const r = resourceFromEnv(
      {
        OTEL_RESOURCE_ATTRIBUTES:
          'service.name=from-attrs,deployment.environment.name=prod,host.name=edge%201,sipspan.node=x',
      },
      'node-b',
    ).attributes;
    assert.equal(r['service.name'], 'from-attrs');
    assert.equal(r['deployment.environment.name'], 'prod');
    assert.equal(r['host.name'], 'edge 1');
    assert.equal(r['sipspan.node'], 'node-b');
    const s = resourceFromEnv(
      { OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs', OTEL_SERVICE_NAME: 'sbc-tracer' },
      'n',
    ).attributes;
    assert.equal(s['service.name'], 'sbc-tracer');
  });
});
