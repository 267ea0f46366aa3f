// sdk-errors-emitter.mjs: records exceptions with the real OpenTelemetry JS SDK
// (span.recordException on a BasicTracerProvider with a service.version), as an
// instrumented application does, and exports them in one request.
//
//   NODE_EXTRA_CA_CERTS=$SEXTANT_CA node sdk-errors-emitter.mjs '<plan JSON>'
//
// plan: { endpoint, key, protocol: "proto" | "json", release, runTag, count }
// Prints one JSON object: {traceIds, spanIds, type, messages, exports}; exits 1
// if the export failed.

import { trace, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

const plan = JSON.parse(process.argv[2] ?? '{}');
const Exporter = plan.protocol === 'json' ? JsonTraceExporter : ProtoTraceExporter;
const exporter = new Exporter({
  url: `${plan.endpoint.replace(/\/+$/, '')}/v1/traces`,
  headers: { 'X-API-Key': plan.key },
  timeoutMillis: 10_000,
});
const spans = [];
const results = [];
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({
    [ATTR_SERVICE_NAME]: 'sdk-errors',
    [ATTR_SERVICE_VERSION]: plan.release,
    'deployment.environment.name': 'e2e',
    'telemetry.sdk.language': 'nodejs',
  }),
  spanProcessors: [new SimpleSpanProcessor({
    export(batch, done) {
      exporter.export(batch, (r) => {
        results.push({ code: r.code === 0 ? 'SUCCESS' : 'FAILED', error: r.error ? String(r.error.message ?? r.error) : null });
        done(r);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => Promise.resolve(),
  })],
});
const tracer = provider.getTracer('e2e-errors', '1.0.0');

class QuotaExceededError extends Error {
  constructor(msg) {
    super(msg);
    this.name = 'QuotaExceededError';
  }
}

function chargeQuota(account, n) {
  throw new QuotaExceededError(`account ${account} used ${n} of 100 requests`);
}

const messages = [];
for (let i = 0; i < (plan.count ?? 2); i++) {
  tracer.startActiveSpan('POST /quota', { attributes: { 'sextant.e2e.run': plan.runTag, 'http.route': '/quota',
    'enduser.id': `user-${i}` } }, (span) => {
    try {
      chargeQuota(`acct-${i}`, 100 + i);
    } catch (e) {
      span.recordException(e);
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
      messages.push(e.message);
    }
    spans.push({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId });
    span.end();
  });
}
await new Promise((r) => setTimeout(r, 200));
await provider.shutdown();
console.log(JSON.stringify({ spans, type: 'QuotaExceededError', messages, exports: results }));
process.exit(results.length && results.every((r) => r.code === 'SUCCESS') ? 0 : 1);
