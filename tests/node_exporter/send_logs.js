// Sends log records written inside a span through the OpenTelemetry JS SDK's OTLP log
// exporters (gRPC, HTTP/protobuf), and a few metrics through its OTLP metric exporters,
// to a seqtrace collector, then exits (#18).
//
// Endpoints as for send.js: SEQTRACE_OTLP_GRPC, SEQTRACE_OTLP_HTTP; auth headers from
// OTEL_EXPORTER_OTLP_HEADERS. Prints one JSON object per log protocol:
// {protocol, traceId, spanId, records: [{body, severityText, attempt}]}, and one per
// metric protocol: {protocol, metricsResult}. Exits 1 if any export failed.
'use strict';

const api = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { BasicTracerProvider } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { OTLPLogExporter: GrpcLogs } = require('@opentelemetry/exporter-logs-otlp-grpc');
const { OTLPLogExporter: ProtoLogs } = require('@opentelemetry/exporter-logs-otlp-proto');
const { OTLPMetricExporter: GrpcMetrics } = require('@opentelemetry/exporter-metrics-otlp-grpc');
const { OTLPMetricExporter: ProtoMetrics } = require('@opentelemetry/exporter-metrics-otlp-proto');

const grpcUrl = process.env.SEQTRACE_OTLP_GRPC;
const httpUrl = process.env.SEQTRACE_OTLP_HTTP;
if (!grpcUrl || !httpUrl) {
  console.error('set SEQTRACE_OTLP_GRPC and SEQTRACE_OTLP_HTTP');
  process.exit(2);
}

let failures = 0;

function counting(exporter, what) {
  return {
    export(items, done) {
      exporter.export(items, (result) => {
        if (result.code !== 0) {
          failures += 1;
          console.error(`${what}: export failed: ${result.error && result.error.message}`);
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => (exporter.forceFlush ? exporter.forceFlush() : Promise.resolve()),
    selectAggregationTemporality: exporter.selectAggregationTemporality
      ? (kind) => exporter.selectAggregationTemporality(kind)
      : undefined,
  };
}

async function sendLogs(protocol, exporter) {
  const resource = resourceFromAttributes({ 'service.name': `node-logs-${protocol}` });
  const tracer = new BasicTracerProvider({ resource }).getTracer('node-shop');
  const provider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter: counting(exporter, `logs ${protocol}`) })],
  });
  const logger = provider.getLogger('node-shop.payments', '1.2.3');
  const span = tracer.startSpan('POST /charge', { kind: api.SpanKind.SERVER });
  const context = api.trace.setSpan(api.context.active(), span);
  const records = [];
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const failed = attempt < 2;
    const record = {
      body: failed ? `charge attempt ${attempt} declined <b>` : `charge attempt ${attempt} ok`,
      severityText: failed ? 'ERROR' : 'INFO',
      attempt,
    };
    logger.emit({
      context,
      severityNumber: failed ? SeverityNumber.ERROR : SeverityNumber.INFO,
      severityText: record.severityText,
      body: record.body,
      attributes: { attempt, 'card.brand': 'visa', tags: ['a', 'b'] },
    });
    records.push(record);
  }
  span.end();
  await provider.forceFlush();
  await provider.shutdown();
  const ids = span.spanContext();
  return { protocol, traceId: ids.traceId, spanId: ids.spanId, records };
}

async function sendMetrics(protocol, exporter) {
  const reader = new PeriodicExportingMetricReader({
    exporter: counting(exporter, `metrics ${protocol}`),
    exportIntervalMillis: 60000,
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': `node-metrics-${protocol}` }),
    readers: [reader],
  });
  const meter = provider.getMeter('node-shop');
  meter.createCounter('orders').add(3, { region: 'eu' });
  meter.createHistogram('latency').record(12.5);
  const before = failures;
  await provider.forceFlush();
  await provider.shutdown();
  return { protocol, metricsResult: failures === before ? 'success' : 'failure' };
}

async function main() {
  const results = [];
  results.push(await sendLogs('grpc', new GrpcLogs({ url: grpcUrl })));
  results.push(await sendLogs('proto', new ProtoLogs({ url: `${httpUrl}/v1/logs` })));
  results.push(await sendMetrics('grpc', new GrpcMetrics({ url: grpcUrl })));
  results.push(await sendMetrics('proto', new ProtoMetrics({ url: `${httpUrl}/v1/metrics` })));
  for (const r of results) console.log(JSON.stringify(r));
  process.exit(failures ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
