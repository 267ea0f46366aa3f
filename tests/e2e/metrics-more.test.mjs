// metrics-more.test.mjs: exponential histograms (from the real OpenTelemetry
// JS SDK with an exponential-histogram View) and summaries (built by hand:
// the JS SDK emits none) through the whole stack; the 1-hour table against
// the 1-minute rows; raw points kept metrics_raw_retention_s (30 s here) and
// then deleted; the query's choice of raw / 1m / 1h data; two sextant-rollup
// instances on one stream giving exact totals; redelivery counted once;
// the consumer group deleted under a running rollup; isolation. Every
// expected value is computed from what the test sent.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MeterProvider, MetricReader, AggregationType, AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { useStack, stackTest, eventually, sleep } from './lib/stack.mjs';
import { PROTO } from './lib/expect.mjs';

const RETENTION_S = 30;
const stack = useStack('metrics-more', { extraConf: `metrics_raw_retention_s ${RETENTION_S}` });
const P = {}; // name -> {id, slug, ingestKey, token}
const HOUR_MS = 3_600_000;

function post(project, body, type) {
  const url = new URL(stack.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/metrics');
  return stack.request('POST', url, { headers: { 'Content-Type': type, 'X-API-Key': project.ingestKey }, body });
}

async function send(project, body, type = 'application/json') {
  const res = await post(project, body, type);
  assert.equal(res.status, 200, `POST /v1/metrics: ${res.status} ${res.text.slice(0, 300)}`);
}

/** GET .../metrics/query; the whole answer (resolution, stepMs, series). */
async function mquery(project, query) {
  const r = await stack.api(`projects/${encodeURIComponent(project.slug)}/metrics/query`, { query, token: project.token });
  if (r.status !== 200) throw new Error(`GET metrics/query ${JSON.stringify(query)}: ${r.status} ${r.text.slice(0, 500)}`);
  return r.json();
}

/** Sum of every point of every series of a query. */
const total = (ans) => ans.series.reduce((a, s) => a + s.points.reduce((b, p) => b + (p[1] ?? 0), 0), 0);

/** The single value of a query that must answer one series with one point. */
async function single(project, query) {
  const ans = await mquery(project, query);
  assert.equal(ans.series.length, 1, `one series expected: ${JSON.stringify(ans)}`);
  assert.equal(ans.series[0].points.length, 1, `one point expected: ${JSON.stringify(ans.series[0].points)}`);
  return ans.series[0].points[0][1];
}

/** A query window of the whole hour holding t (unix ms), at 1h steps. */
const hourOf = (tMs) => {
  const from = Math.floor(tMs / HOUR_MS) * HOUR_MS;
  return { from: String(from), to: String(from + HOUR_MS - 1), step: '1h' };
};

stackTest(stack, 'projects: one per scenario, one for isolation', async () => {
  P.main = { id: String(stack.projectId), slug: stack.project, ingestKey: stack.ingestKey, token: stack.token };
  for (const name of ['exp', 'summary', 'two', 'raw', 'other']) {
    const p = await stack.ctl('project', 'create', `mm-${name}-${randomBytes(3).toString('hex')}`);
    const t = await stack.ctl('token', 'create', '--project', p.slug);
    P[name] = { id: String(p.id), slug: p.slug, ingestKey: p.ingestKey, token: t.token };
  }
});

// ---------------------------------------------------------- exponential --

class PullReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

// Values spread over four decades, none on a power of two, so each lies
// strictly inside one exponential bucket at any scale.
const COLLECTIONS = [
  [1.3, 2.7, 3.1, 5.9, 7.7, 11.3],
  [13.7, 17.9, 22.1, 35.5, 48.3, 51.7, 66.6, 70.1],
  [101.5, 133.3, 250.7, 377.7, 599.9, 1023.9, 3.3, 9.9],
];

stackTest(stack, 'exponential histograms from the SDK: three cumulative collections, totals exact, percentiles in their bucket', async () => {
  const reader = new PullReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  const provider = new MeterProvider({
    readers: [reader],
    views: [{ instrumentName: 'exp.latency', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM, options: { maxSize: 160 } } }],
  });
  const h = provider.getMeter('mm').createHistogram('exp.latency', { unit: 'ms' });
  const sent = [];
  let last = null, lastBytes = null;
  for (const values of COLLECTIONS) {
    for (const v of values) h.record(v, { route: '/e' });
    sent.push(...values);
    const { resourceMetrics } = await reader.collect();
    last = resourceMetrics.scopeMetrics[0].metrics[0].dataPoints[0];
    lastBytes = ProtobufMetricsSerializer.serializeRequest(resourceMetrics);
    await send(P.exp, lastBytes, PROTO);
  }
  await provider.shutdown();
  const count = sent.length;
  const sum = sent.reduce((a, v) => a + v, 0);
  const win = hourOf(Number(BigInt(last.endTime[0]) * 1000n) + Math.floor(last.endTime[1] / 1e6));
  await eventually(async () => assert.equal(await single(P.exp, { name: 'exp.latency', agg: 'count', ...win }), count),
    { what: 'exponential histogram count rolled up', timeoutMs: 30_000 });
  assert.ok(Math.abs(await single(P.exp, { name: 'exp.latency', agg: 'sum', ...win }) - sum) < 1e-9);
  assert.equal(await single(P.exp, { name: 'exp.latency', agg: 'min', ...win }), Math.min(...sent));
  assert.equal(await single(P.exp, { name: 'exp.latency', agg: 'max', ...win }), Math.max(...sent));
  // The SDK's cumulative scale only goes down, so every delta merges at the
  // last point's scale: the answer lies in the bucket of the rank's value.
  const scale = last.value.scale;
  const sorted = [...sent].sort((a, b) => a - b);
  for (const [agg, q] of [['p50', 0.5], ['p90', 0.9], ['p95', 0.95], ['p99', 0.99]]) {
    const v = await single(P.exp, { name: 'exp.latency', agg, ...win });
    const x = sorted[Math.ceil(q * count) - 1];
    const k = Math.ceil(Math.log2(x) * 2 ** scale) - 1;
    const lo = 2 ** (k / 2 ** scale), hi = 2 ** ((k + 1) / 2 ** scale);
    assert.ok(v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12), `${agg} ${v} outside (${lo}, ${hi}] of ${x} at scale ${scale}`);
  }
  // The same bytes again (a redelivery of an applied batch): nothing moves.
  await send(P.exp, lastBytes, PROTO);
  await sleep(2000);
  assert.equal(await single(P.exp, { name: 'exp.latency', agg: 'count', ...win }), count);
});

// -------------------------------------------------------------- summaries --

function summaryBody(startNs, timeNs, count, sum, quantiles) {
  return JSON.stringify({ resourceMetrics: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'summary-test' } }] },
    scopeMetrics: [{ scope: { name: 'mm' }, metrics: [{
      name: 'rpc.duration', unit: 'ms',
      summary: { dataPoints: [{
        startTimeUnixNano: String(startNs), timeUnixNano: String(timeNs), count: String(count), sum,
        quantileValues: quantiles.map(([quantile, value]) => ({ quantile, value })),
        attributes: [{ key: 'method', value: { stringValue: 'get' } }] }] },
    }] }],
  }] });
}

stackTest(stack, 'summaries: cumulative count and sum become deltas, percentiles from the newest quantiles', async () => {
  // Three collections inside the previous hour, one minute apart.
  const hour = BigInt(Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS) * 1_000_000n;
  const start = hour;
  const points = [
    { t: hour + 60_000_000_000n, count: 10, sum: 100.5, q: [[0.5, 8], [0.9, 20], [0.99, 31]] },
    { t: hour + 120_000_000_000n, count: 25, sum: 300.25, q: [[0.5, 10], [0.9, 25], [0.99, 40]] },
    { t: hour + 180_000_000_000n, count: 40, sum: 520.75, q: [[0.5, 12], [0.9, 30], [0.99, 45]] },
  ];
  for (const p of points) await send(P.summary, summaryBody(start, p.t, p.count, p.sum, p.q));
  const last = points[points.length - 1];
  const win = hourOf(Number(hour / 1_000_000n));
  await eventually(async () => assert.equal(await single(P.summary, { name: 'rpc.duration', agg: 'count', ...win }), last.count),
    { what: 'summary count rolled up', timeoutMs: 30_000 });
  assert.equal(await single(P.summary, { name: 'rpc.duration', agg: 'sum', ...win }), last.sum);
  assert.equal(await single(P.summary, { name: 'rpc.duration', agg: 'p50', ...win }), 12);
  assert.equal(await single(P.summary, { name: 'rpc.duration', agg: 'p90', ...win }), 30);
  assert.equal(await single(P.summary, { name: 'rpc.duration', agg: 'p99', ...win }), 45);
  // p95 lies between the reported 0.9 and 0.99: linear between them.
  const p95 = await single(P.summary, { name: 'rpc.duration', agg: 'p95', ...win });
  assert.ok(Math.abs(p95 - (30 + (45 - 30) * (0.05 / 0.09))) < 1e-9, `p95 ${p95}`);
  // Minute by minute (1m data): each minute holds its collection's delta.
  const byMinute = await mquery(P.summary, { name: 'rpc.duration', agg: 'count', from: win.from, to: win.to, step: '1m' });
  assert.equal(byMinute.resolution, '1m');
  assert.deepEqual(byMinute.series[0].points.map((p) => p[1]), [10, 15, 15]);
  // The same batch again is counted once.
  await send(P.summary, summaryBody(start, last.t, last.count, last.sum, last.q));
  await sleep(2000);
  assert.equal(await single(P.summary, { name: 'rpc.duration', agg: 'count', ...win }), last.count);
});

// ------------------------------------------------------------- 1h vs 1m --

/** Rows of table (buckets of `ns` nanoseconds) that differ from the sums of their 1-minute rows, or lack one. */
async function rollupDiff(table, ns, ids) {
  return stack.psql(`
    SELECT count(*) FROM (
      SELECT series_id, bucket_start_ns / ${ns} AS b, sum(count) AS c, sum(sum) AS s, min(min) AS mn, max(max) AS mx
      FROM metric_points_1m WHERE project_id IN (${ids}) GROUP BY 1, 2) m
    FULL JOIN (SELECT series_id, bucket_start_ns / ${ns} AS b, count AS c, sum AS s, min AS mn, max AS mx
      FROM ${table} WHERE project_id IN (${ids})) o USING (series_id, b)
    WHERE m.c IS DISTINCT FROM o.c OR abs(m.s - o.s) > 1e-9 OR m.s IS NULL OR o.s IS NULL
       OR m.mn IS DISTINCT FROM o.mn OR m.mx IS DISTINCT FROM o.mx`);
}

stackTest(stack, 'the 1-hour table equals the sum of its 1-minute rows', async () => {
  const ids = [P.exp.id, P.summary.id].join(',');
  assert.equal(await rollupDiff('metric_points_1h', '3600000000000', ids), '0');
  const hours = await stack.psql(`SELECT count(*) FROM metric_points_1h WHERE project_id IN (${ids})`);
  assert.ok(Number(hours) >= 2, `hour rows: ${hours}`);
});

// ------------------------------------------------------------- 5m vs 1m --

stackTest(stack, 'the 5-minute table equals its minutes; whole 5-minute steps read it and answer what the minutes do', async () => {
  const ids = [P.exp.id, P.summary.id].join(',');
  assert.equal(await rollupDiff('metric_points_5m', '300000000000', ids), '0');
  assert.ok(Number(await stack.psql(`SELECT count(*) FROM metric_points_5m WHERE project_id IN (${ids})`)) >= 2);
  // The API reads the 5-minute table only for windows from metric_resolutions' start (the
  // migration's time, read once per process): set it after and before the data, restarting
  // the API each time, and compare the answers.
  const FIVE_MS = 300_000;
  const from = String(Math.floor((Date.now() - 6 * HOUR_MS) / FIVE_MS) * FIVE_MS);
  const win = { from, to: String(Date.now()), step: '5m' };
  const asks = [[P.exp, 'exp.latency', ['count', 'sum', 'max', 'min', 'p50', 'p95']],
    [P.summary, 'rpc.duration', ['count', 'sum', 'rate']]];
  const answers = async () => {
    const out = [];
    for (const [p, name, aggs] of asks)
      for (const agg of aggs) out.push(await mquery(p, { name, agg, ...win }));
    return out;
  };
  const since = await stack.psql("SELECT since_ns FROM metric_resolutions WHERE resolution = '5m'");
  try {
    await stack.psql("UPDATE metric_resolutions SET since_ns = 9000000000000000000 WHERE resolution = '5m'");
    await stack.control('restart', 'api');
    const minutes = await answers();
    await stack.psql("UPDATE metric_resolutions SET since_ns = 0 WHERE resolution = '5m'");
    await stack.control('restart', 'api');
    const fives = await answers();
    for (let i = 0; i < minutes.length; i++) {
      assert.equal(minutes[i].resolution, '1m');
      assert.equal(fives[i].resolution, '5m');
      assert.equal(fives[i].stepMs, 300_000);
      assert.ok(total(minutes[i]) !== 0, `answer ${i} has points`);
      for (let s = 0; s < minutes[i].series.length; s++)
        minutes[i].series[s].points.forEach(([t, v], k) => {
          const [t5, v5] = fives[i].series[s].points[k];
          assert.equal(t5, t);
          assert.ok(v === v5 || Math.abs(v - v5) < 1e-9 * Math.max(1, Math.abs(v)), `answer ${i} at ${t}: ${v} vs ${v5}`);
        });
    }
  } finally {
    await stack.psql(`UPDATE metric_resolutions SET since_ns = ${since} WHERE resolution = '5m'`);
    await stack.control('restart', 'api');
  }
});

// ------------------------------------------------------------ raw points --

function gaugeBody(points) {
  return JSON.stringify({ resourceMetrics: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'raw-test' } }] },
    scopeMetrics: [{ scope: { name: 'mm' }, metrics: [{
      name: 'queue.depth', unit: '1',
      gauge: { dataPoints: points.map(([t, v]) => ({ timeUnixNano: String(t), asDouble: v })) },
    }] }],
  }] });
}

stackTest(stack, 'raw points are kept, answer steps under a minute, and are deleted after the retention', { timeout: 120_000 }, async () => {
  const now = BigInt(Date.now()) * 1_000_000n;
  const values = [[now - 3_000_000_000n, 4], [now - 2_000_000_000n, 6], [now - 1_000_000_000n, 11]];
  await send(P.raw, gaugeBody(values));
  const expectSum = values.reduce((a, [, v]) => a + v, 0);
  const sqlRaw = `SELECT count(*) FROM metric_points_raw WHERE project_id = ${P.raw.id}`;
  await eventually(async () => assert.equal(await stack.psql(sqlRaw), String(values.length)),
    { what: 'raw points written', timeoutMs: 15_000 });
  const raw = await mquery(P.raw, { name: 'queue.depth', agg: 'sum', timeRange: '20s', step: '10s' });
  assert.equal(raw.resolution, 'raw');
  assert.equal(raw.stepMs, 10_000);
  assert.equal(total(raw), expectSum);
  const m1 = await mquery(P.raw, { name: 'queue.depth', agg: 'max', timeRange: '10m', step: '1m' });
  assert.equal(m1.resolution, '1m');
  assert.equal(Math.max(...m1.series[0].points.map((p) => p[1])), 11);
  const h1 = await mquery(P.raw, { name: 'queue.depth', agg: 'count', timeRange: '6h', step: '1h' });
  assert.equal(h1.resolution, '1h');
  assert.equal(total(h1), values.length);
  // Over two days: hour rows, the step rounded up to whole hours.
  const week = await mquery(P.raw, { name: 'queue.depth', agg: 'count', timeRange: '7d', step: '5m' });
  assert.equal(week.resolution, '1h');
  assert.equal(week.stepMs, HOUR_MS);
  assert.equal(total(week), values.length);
  // No step: at most 300 steps (1 h: 1m, 24 h: 5m on 1-minute rows, 7 d: 1h), same totals.
  for (const [timeRange, stepMs, resolution] of [['1h', 60_000, '1m'], ['24h', 300_000, '1m'], ['7d', HOUR_MS, '1h']]) {
    const d = await mquery(P.raw, { name: 'queue.depth', agg: 'count', timeRange });
    assert.equal(d.stepMs, stepMs, `${timeRange}: default step`);
    assert.equal(d.resolution, resolution, `${timeRange}: resolution`);
    assert.equal(total(d), values.length, `${timeRange}: total`);
  }
  // A step under a minute over a window older than the retention: 1m data.
  const old = await mquery(P.raw, { name: 'queue.depth', agg: 'count', timeRange: '2h', step: '10s' });
  assert.equal(old.resolution, '1m');
  assert.equal(old.stepMs, 60_000);
  // Expired raw points go (retention 30 s, checked every 5 s); the rollups stay.
  await eventually(async () => assert.equal(await stack.psql(sqlRaw), '0'),
    { what: 'raw points deleted after the retention', timeoutMs: (RETENTION_S + 30) * 1000, intervalMs: 1000 });
  assert.equal(total(await mquery(P.raw, { name: 'queue.depth', agg: 'count', timeRange: '10m', step: '1m' })), values.length);
});

// ------------------------------------------------------- two instances --

function counterBody(startNs, timeNs, cumValue, deltaValue) {
  const attrs = [{ key: 'route', value: { stringValue: '/two' } }];
  return JSON.stringify({ resourceMetrics: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'two-test' } }] },
    scopeMetrics: [{ scope: { name: 'mm' }, metrics: [
      { name: 'two.cumulative', unit: '1', sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [
        { startTimeUnixNano: String(startNs), timeUnixNano: String(timeNs), asInt: String(cumValue), attributes: attrs }] } },
      { name: 'two.delta', unit: '1', sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [
        { startTimeUnixNano: String(timeNs - 1n), timeUnixNano: String(timeNs), asInt: String(deltaValue), attributes: attrs }] } },
    ] }],
  }] });
}

stackTest(stack, 'two rollup instances on one stream: exact totals', { timeout: 120_000 }, async () => {
  await stack.control('start', 'rollup2');
  try {
    const start = BigInt(Date.now() - 60_000) * 1_000_000n;
    const N = 60;
    // Sent 6 at a time: stream order differs from point order, and both
    // instances take entries of the same series at once.
    const jobs = [];
    for (let i = 1; i <= N; i++) jobs.push(() => send(P.two, counterBody(start, start + BigInt(i) * 1_000_000n, 3 * i, i)));
    for (let i = 0; i < jobs.length; i += 6) await Promise.all(jobs.slice(i, i + 6).map((j) => j()));
    const q = { from: String(start / 1_000_000n - 60_000n), to: String(start / 1_000_000n + 120_000n), step: '1m' };
    await eventually(async () => {
      assert.equal(total(await mquery(P.two, { name: 'two.delta', agg: 'sum', ...q })), (N * (N + 1)) / 2);
      assert.equal(total(await mquery(P.two, { name: 'two.cumulative', agg: 'sum', ...q })), 3 * N);
    }, { what: 'exact totals with two instances', timeoutMs: 45_000 });
    // Both instances are consumers of the group.
    const consumers = await stack.redis('XINFO', 'CONSUMERS', `${stack.config().redis_prefix}:stream:metrics`, 'rollup');
    assert.match(consumers, /rollup-2/);
    assert.match(consumers, /rollup-1/);
    await sleep(1500);
    assert.equal(total(await mquery(P.two, { name: 'two.cumulative', agg: 'sum', ...q })), 3 * N);
  } finally {
    await stack.control('stop', 'rollup2');
  }
});

// ------------------------------------------------------ group deleted --

stackTest(stack, 'the metrics group deleted under a running rollup is made again; totals exact', { timeout: 90_000 }, async () => {
  const p = await stack.ctl('project', 'create', `mm-nogroup-${randomBytes(3).toString('hex')}`);
  const t = await stack.ctl('token', 'create', '--project', p.slug);
  const NG = { id: String(p.id), slug: p.slug, ingestKey: p.ingestKey, token: t.token };
  const stream = `${stack.config().redis_prefix || 'sx'}:stream:metrics`;
  const summaryWin = hourOf(Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS);
  const summaryBefore = await single(P.summary, { name: 'rpc.duration', agg: 'count', ...summaryWin });
  assert.equal(await stack.redis('XGROUP', 'DESTROY', stream, 'rollup'), '1');
  // The blocked XREADGROUP gets NOGROUP and the group comes back.
  await eventually(async () => assert.match(await stack.redis('XINFO', 'GROUPS', stream), /rollup/),
    { what: 'group rollup created again' });
  const start = BigInt(Date.now() - 30_000) * 1_000_000n;
  const N = 12;
  for (let i = 1; i <= N; i++) await send(NG, counterBody(start, start + BigInt(i) * 1_000_000n, 5 * i, i));
  const q = { from: String(start / 1_000_000n - 60_000n), to: String(start / 1_000_000n + 120_000n), step: '1m' };
  await eventually(async () => {
    assert.equal(total(await mquery(NG, { name: 'two.delta', agg: 'sum', ...q })), (N * (N + 1)) / 2);
    assert.equal(total(await mquery(NG, { name: 'two.cumulative', agg: 'sum', ...q })), 5 * N);
  }, { what: 'exact totals after the group came back', timeoutMs: 30_000 });
  // Entries still in the stream are read again by the new group: not counted again.
  await sleep(2000);
  assert.equal(total(await mquery(NG, { name: 'two.delta', agg: 'sum', ...q })), (N * (N + 1)) / 2);
  assert.equal(total(await mquery(NG, { name: 'two.cumulative', agg: 'sum', ...q })), 5 * N);
  assert.equal(await single(P.summary, { name: 'rpc.duration', agg: 'count', ...summaryWin }), summaryBefore);
});

// -------------------------------------------------------------- isolation --

stackTest(stack, 'another project sees none of it, at any resolution', async () => {
  for (const step of ['10s', '1m', '1h']) {
    const r = await stack.api(`projects/${P.raw.slug}/metrics/query`, { query: { name: 'queue.depth', step }, token: P.other.token });
    assert.equal(r.status, 404, `${step}: ${r.status} ${r.text}`);
    const own = await mquery(P.other, { name: 'queue.depth', step, timeRange: '1h' });
    assert.deepEqual(own.series, []);
  }
  const rows = await stack.psql(`SELECT count(*) FROM metric_points_1h WHERE project_id = ${P.other.id}`);
  assert.equal(rows, '0');
});
