// rollup-drain.mjs: N ExportMetricsServiceRequest bodies of 100 cumulative sums + 100 histograms
// (real JS SDK, cumulative collections), as a RESP file of XADDs for redis-cli --pipe.
// Usage: node bench/rollup-drain.mjs N STREAM OUT.resp [PROJECT_ID] (packages from tests/e2e/node_modules)
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
const require = createRequire(new URL('../tests/e2e/package.json', import.meta.url));
const { MeterProvider, MetricReader, AggregationTemporality } = require('@opentelemetry/sdk-metrics');
const { ProtobufMetricsSerializer } = require('@opentelemetry/otlp-transformer');
const N = Number(process.argv[2] || 200), stream = process.argv[3] || 'sx:stream:metrics', out = process.argv[4];
const project = process.argv[5] || '1';
class R extends MetricReader { async onForceFlush() {} async onShutdown() {} }
const reader = new R({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
const mp = new MeterProvider({ readers: [reader] });
const m = mp.getMeter('bench');
const c = m.createCounter('bench.requests'), h = m.createHistogram('bench.latency', { unit: 'ms' });
const parts = [];
const bulk = (s) => { const b = Buffer.isBuffer(s) ? s : Buffer.from(String(s)); parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')); };
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
for (let i = 0; i < N; i++) {
  for (let s = 0; s < 100; s++) { c.add(1 + (s % 7), { route: `/r/${s}`, method: 'GET' }); h.record(rnd() * 1000, { route: `/r/${s}`, method: 'GET' }); }
  const { resourceMetrics } = await reader.collect();
  const body = Buffer.from(ProtobufMetricsSerializer.serializeRequest(resourceMetrics));
  parts.push(Buffer.from('*13\r\n'));
  for (const a of ['XADD', stream, '*', 'p', project, 'k', '1', 'n', '200', 't', String(Date.now() * 1e6)]) bulk(a);
  bulk('b'); bulk(body);
  await new Promise((r) => setTimeout(r, 2));
}
writeFileSync(out, Buffer.concat(parts));
console.log(`wrote ${N} entries`);
