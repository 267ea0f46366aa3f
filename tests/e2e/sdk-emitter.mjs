// sdk-emitter.mjs: emits traces to Sextant with the real OpenTelemetry JS SDK
// (BasicTracerProvider + BatchSpanProcessor + the OTLP/HTTP exporters), as an
// instrumented application would. Run as a child process so that
// NODE_EXTRA_CA_CERTS (read only at process start) can trust the stack's
// self-signed certificate:
//
//   NODE_EXTRA_CA_CERTS=$SEXTANT_CA node sdk-emitter.mjs '<plan JSON>'
//
// plan: {
//   endpoint:    SEXTANT_OTLP_ENDPOINT (the exporter posts to <endpoint>/v1/traces)
//   key:         ingest key, sent as X-API-Key
//   protocol:    "proto" | "json"
//   compression: "none" | "gzip"
//   order:       "backend-first" | "frontend-first" (which service's request goes first)
//   runTag:      value of the "sextant.e2e.run" attribute on every span
//   baseMs:      start of the cross-service trace (unix ms); timestamps are explicit
//   paging:      number of extra one-service traces to emit (for filters and paging)
//   drain:       optional base64 OTLP/protobuf trace body POSTed (with the key) just before
//                the SDK exports, e.g. to empty a rate-limit bucket with no delay between the
//                two; its HTTP status is reported as drainStatus
// }
// Prints one JSON object on stdout: the ids and times it used and every
// export's result ({label, code, error, spans}); exits 1 if any export failed.

import { trace, SpanKind, SpanStatusCode, TraceFlags, ROOT_CONTEXT } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { randomBytes } from 'node:crypto';

const plan = JSON.parse(process.argv[2] ?? '{}');
for (const k of ['endpoint', 'key', 'protocol', 'runTag', 'baseMs']) {
  if (plan[k] === undefined) {
    console.error(`sdk-emitter: plan lacks ${k}`);
    process.exit(2);
  }
}
const compression = plan.compression ?? 'none';
const order = plan.order ?? 'backend-first';
const RUN = 'sextant.e2e.run';

const exports = [];

/** Delegating exporter that records each export's outcome (a BatchSpanProcessor swallows them). */
class RecordingExporter {
  constructor(inner, label) {
    this.inner = inner;
    this.label = label;
  }
  export(spans, done) {
    this.inner.export(spans, (result) => {
      exports.push({
        label: this.label,
        code: result.code === 0 ? 'SUCCESS' : 'FAILED',
        error: result.error ? String(result.error.message ?? result.error) : null,
        spans: spans.length,
      });
      done(result);
    });
  }
  shutdown() {
    return this.inner.shutdown();
  }
  forceFlush() {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function makeProvider(service, label) {
  const Exporter = plan.protocol === 'json' ? JsonTraceExporter : ProtoTraceExporter;
  const exporter = new Exporter({
    url: `${plan.endpoint.replace(/\/+$/, '')}/v1/traces`,
    headers: { 'X-API-Key': plan.key },
    compression,
    timeoutMillis: 10_000,
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: service,
      [ATTR_SERVICE_VERSION]: '1.0.0',
      'deployment.environment.name': 'e2e',
    }),
    spanProcessors: [
      // Nothing leaves before forceFlush: one request per provider flush.
      new BatchSpanProcessor(new RecordingExporter(exporter, label), {
        maxExportBatchSize: 2048,
        maxQueueSize: 4096,
        scheduledDelayMillis: 600_000,
        exportTimeoutMillis: 15_000,
      }),
    ],
  });
  return { provider, tracer: provider.getTracer(`e2e-${service}`, '1.0.0') };
}

const ms = (offset) => plan.baseMs + offset;
const under = (span) => trace.setSpan(ROOT_CONTEXT, span);
const spanInfo = (span) => span.spanContext().spanId;

// ---------------------------------------------------------------- cross-service trace
// frontend: GET /checkout (SERVER, 0-300 ms)
//             ├─ HTTP POST /charge (CLIENT, 20-250 ms)
//             │    └─ [backend] POST /charge (SERVER, 40-230 ms, remote parent)
//             │          └─ [backend] charge card (INTERNAL, 60-200 ms, ERROR + exception event)
//             └─ render page (INTERNAL, 260-290 ms)
// backend:  orphan job (INTERNAL, 50-70 ms) whose parent span never arrives
const frontend = makeProvider('frontend', 'frontend');
const backend = makeProvider('backend', 'backend');

const root = frontend.tracer.startSpan('GET /checkout', {
  kind: SpanKind.SERVER,
  startTime: ms(0),
  attributes: {
    [RUN]: plan.runTag,
    'http.request.method': 'GET',
    'http.route': '/checkout',
    'http.response.status_code': 200,
    'cart.items': 3,
    'cart.premium': true,
    'cart.total': 12.5,
    'cart.tags': ['gift', 'express'],
  },
});
const client = frontend.tracer.startSpan('HTTP POST /charge', {
  kind: SpanKind.CLIENT,
  startTime: ms(20),
  attributes: { [RUN]: plan.runTag, 'http.request.method': 'POST', 'server.address': 'backend' },
}, under(root));
const render = frontend.tracer.startSpan('render page', {
  kind: SpanKind.INTERNAL,
  startTime: ms(260),
  attributes: { [RUN]: plan.runTag },
}, under(root));

// The backend learns the client span through propagation: a remote parent.
const remoteParent = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: root.spanContext().traceId,
  spanId: client.spanContext().spanId,
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
});
const server = backend.tracer.startSpan('POST /charge', {
  kind: SpanKind.SERVER,
  startTime: ms(40),
  attributes: { [RUN]: plan.runTag, 'http.request.method': 'POST', 'http.route': '/charge', 'http.response.status_code': 502 },
}, remoteParent);
const charge = backend.tracer.startSpan('charge card', {
  kind: SpanKind.INTERNAL,
  startTime: ms(60),
  attributes: { [RUN]: plan.runTag, 'payment.amount_cents': 4599 },
}, under(server));
const chargeError = new Error(`card declined for run ${plan.runTag}`);
chargeError.name = 'CardDeclinedError';
charge.recordException(chargeError, ms(190));
charge.setStatus({ code: SpanStatusCode.ERROR, message: chargeError.message });

const missingParentId = randomBytes(8).toString('hex');
const orphan = backend.tracer.startSpan('orphan job', {
  kind: SpanKind.INTERNAL,
  startTime: ms(50),
  attributes: { [RUN]: plan.runTag },
}, trace.setSpanContext(ROOT_CONTEXT, {
  traceId: root.spanContext().traceId,
  spanId: missingParentId,
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
}));

// End in an order unlike start order, so the backend has to sort.
render.end(ms(290));
orphan.end(ms(70));
charge.end(ms(200));
server.end(ms(230));
client.end(ms(250));
root.end(ms(300));

const cross = {
  traceId: root.spanContext().traceId,
  rootId: spanInfo(root),
  clientId: spanInfo(client),
  renderId: spanInfo(render),
  serverId: spanInfo(server),
  chargeId: spanInfo(charge),
  orphanId: spanInfo(orphan),
  missingParentId,
  errorMessage: chargeError.message,
  exceptionType: chargeError.name,
};

// ---------------------------------------------------------------- paging traces
// frontend "GET /item/:id" traces, i = 0..n-1: start base+1000+i*500 ms,
// duration 10*(i+1) ms, a CLIENT child; every 5th is an error (status code 500).
const paging = [];
for (let i = 0; i < (plan.paging ?? 0); i++) {
  const start = 1000 + i * 500;
  const dur = 10 * (i + 1);
  const error = i % 5 === 0;
  const r = frontend.tracer.startSpan('GET /item/:id', {
    kind: SpanKind.SERVER,
    startTime: ms(start),
    attributes: {
      [RUN]: plan.runTag,
      'http.request.method': 'GET',
      'http.route': '/item/:id',
      'http.response.status_code': error ? 500 : 200,
      'item.id': i,
    },
  });
  const c = frontend.tracer.startSpan('SELECT item', {
    kind: SpanKind.CLIENT,
    startTime: ms(start + 1),
    attributes: { [RUN]: plan.runTag, 'db.system.name': 'postgresql' },
  }, under(r));
  c.end(ms(start + 1 + Math.floor(dur / 2)));
  if (error) r.setStatus({ code: SpanStatusCode.ERROR, message: `item ${i} failed` });
  r.end(ms(start + dur));
  paging.push({ traceId: r.spanContext().traceId, startMs: ms(start), durationMs: dur, error, index: i });
}

// ---------------------------------------------------------------- export
const firstP = order === 'backend-first' ? backend : frontend;
const secondP = order === 'backend-first' ? frontend : backend;
let drainStatus = null;
if (plan.drain) {
  const res = await fetch(`${plan.endpoint.replace(/\/+$/, '')}/v1/traces`, {
    method: 'POST',
    headers: { 'X-API-Key': plan.key, 'Content-Type': 'application/x-protobuf' },
    body: Buffer.from(plan.drain, 'base64'),
  });
  await res.arrayBuffer();
  drainStatus = res.status;
}
await firstP.provider.forceFlush();
await secondP.provider.forceFlush();
await frontend.provider.shutdown();
await backend.provider.shutdown();

const failed = exports.filter((e) => e.code !== 'SUCCESS');
process.stdout.write(JSON.stringify({ plan, cross, paging, exports, drainStatus }) + '\n');
process.exit(failed.length ? 1 : 0);

