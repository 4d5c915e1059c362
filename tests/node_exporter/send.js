// Sends the same small trace through each of the OpenTelemetry JS SDK's OTLP trace
// exporters (gRPC, HTTP/protobuf, HTTP/JSON) to a seqtrace collector, then exits.
//
// Endpoints come from the environment:
//   SEQTRACE_OTLP_GRPC  e.g. http://127.0.0.1:4317
//   SEQTRACE_OTLP_HTTP  e.g. http://127.0.0.1:4318   (/v1/traces is appended)
// Auth headers, if any, come from OTEL_EXPORTER_OTLP_HEADERS, which every exporter reads.
// Prints one JSON object per protocol: {protocol, traceId, spans: [{name, spanId}]}.
// Exits 1 if any export failed.
'use strict';

const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { OTLPTraceExporter: GrpcExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const { OTLPTraceExporter: ProtoExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { OTLPTraceExporter: JsonExporter } = require('@opentelemetry/exporter-trace-otlp-http');

const grpcUrl = process.env.SEQTRACE_OTLP_GRPC;
const httpUrl = process.env.SEQTRACE_OTLP_HTTP;
if (!grpcUrl || !httpUrl) {
  console.error('set SEQTRACE_OTLP_GRPC and SEQTRACE_OTLP_HTTP');
  process.exit(2);
}

let failures = 0;

// Wraps an exporter to count failed exports: the batch processor only logs them.
function counting(exporter, protocol) {
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        if (result.code !== 0) {
          failures += 1;
          console.error(`${protocol}: export failed: ${result.error && result.error.message}`);
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => (exporter.forceFlush ? exporter.forceFlush() : Promise.resolve()),
  };
}

async function send(protocol, exporter, Provider) {
  const provider = new Provider({
    resource: resourceFromAttributes({
      'service.name': `node-${protocol}`,
      'service.version': '2.0.0',
      'deployment.environment': 'test',
      'process.pid': 4242,
    }),
    spanProcessors: [new BatchSpanProcessor(counting(exporter, protocol), { maxQueueSize: 10000 })],
  });
  const tracer = provider.getTracer('node-shop', '0.3.1');

  const earlier = tracer.startSpan('warmup', { kind: api.SpanKind.INTERNAL });
  earlier.end();

  const root = tracer.startSpan('POST /orders', {
    kind: api.SpanKind.SERVER,
    attributes: {
      'http.request.method': 'POST',
      'http.response.status_code': 502,
      'order.id': 'ord-js-7',
      'cart.total': 12.75,
      'user.vip': false,
      'tags': ['x', 'y'],
      'quantities': [4, 5],
    },
  });
  const rootContext = api.trace.setSpan(api.context.active(), root);
  const child = tracer.startSpan(
    'call inventory',
    {
      kind: api.SpanKind.CLIENT,
      attributes: { 'peer.service': 'inventory', 'retry.count': 2 },
      links: [{ context: earlier.spanContext(), attributes: { 'link.reason': 'caused-by' } }],
    },
    rootContext,
  );
  child.addEvent('request.sent', { 'bytes': 512 });
  child.recordException(new Error('inventory timeout'));
  child.setStatus({ code: api.SpanStatusCode.ERROR, message: 'inventory timeout' });
  child.end();
  root.setStatus({ code: api.SpanStatusCode.ERROR });
  root.end();

  await provider.forceFlush();
  await provider.shutdown();
  const spans = [earlier, root, child].map((s) => ({ name: s.name, spanId: s.spanContext().spanId }));
  return { protocol, traceId: root.spanContext().traceId, warmupTraceId: earlier.spanContext().traceId, spans };
}

async function main() {
  const results = [];
  results.push(await send('grpc', new GrpcExporter({ url: grpcUrl }), NodeTracerProvider));
  results.push(await send('proto', new ProtoExporter({ url: `${httpUrl}/v1/traces` }), BasicTracerProvider));
  results.push(await send('json', new JsonExporter({ url: `${httpUrl}/v1/traces` }), BasicTracerProvider));
  for (const r of results) console.log(JSON.stringify(r));
  process.exit(failures ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
