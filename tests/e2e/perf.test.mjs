// perf.test.mjs: API performance from spans through the whole stack (POST
// /v1/traces -> Redis -> sextant-rollup -> red_1m, edges_1m) and back out of
// GET .../services/{name}/performance, .../services/{name}/dependencies and
// .../service-map. The expected figures are computed here from the shared
// fixtures themselves (decoded with lib/otlp.mjs): requests, errors and
// status classes per route of checkout-api's SERVER spans, p95 inside the
// bucket that holds it, the checkout-api -> payments-worker edge (the
// worker's CONSUMER span has a parent sent in another request); another
// project sees 404; the same request sent again is counted once.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually, apiError } from './lib/stack.mjs';
import { fixture, decodeTraceRequestSpans } from './lib/otlp.mjs';

const stack = useStack('perf');

const MAIN_BIN = fixture('traces-proto.bin');
const WORKER_BIN = fixture('traces-payments-worker-proto.bin');
const MAIN = decodeTraceRequestSpans(MAIN_BIN);
const WORKER = decodeTraceRequestSpans(WORKER_BIN);
// Upper bounds (ms) of the duration buckets, as in sql/007_red.sql.
const BOUNDS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

const durMs = (s) => Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6;
const httpStatus = (s) => Number(s.attributes['http.response.status_code'] ?? s.attributes['http.status_code'] ?? 0);
const isError = (s) => s.statusCode === 2 || httpStatus(s) >= 500;
const isServer = (s) => s.kind === 2 || s.kind === 5;

/** The [lo, hi] of the bucket holding the q-quantile of durations (ms). */
function bucketOf(durations, q) {
  const counts = new Array(BOUNDS.length + 1).fill(0);
  for (const d of durations) {
    let b = 0;
    while (b < BOUNDS.length && d > BOUNDS[b]) b++;
    counts[b]++;
  }
  let cum = 0;
  for (let i = 0; i < counts.length; i++) {
    cum += counts[i];
    if (counts[i] > 0 && cum >= q * durations.length) {
      return [i === 0 ? 0 : BOUNDS[i - 1], i < BOUNDS.length ? BOUNDS[i] : BOUNDS[BOUNDS.length - 1]];
    }
  }
  throw new Error('no bucket');
}

/** Expected endpoints of one service: operation -> {kind, requests, errors, status, durations}. */
function expectedEndpoints(service) {
  const out = new Map();
  for (const s of [...MAIN, ...WORKER]) {
    if (s.service !== service || !isServer(s)) continue;
    const op = s.attributes['http.route'] || s.name;
    const key = `${op}|${s.kind}`;
    if (!out.has(key)) out.set(key, { operation: op, kind: s.kind === 5 ? 'consumer' : 'server', requests: 0, errors: 0,
      status: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, durations: [] });
    const e = out.get(key);
    e.requests++;
    if (isError(s)) e.errors++;
    const st = httpStatus(s);
    if (st >= 200 && st < 600) e.status[`${Math.floor(st / 100)}xx`]++;
    e.durations.push(durMs(s));
  }
  return [...out.values()];
}

/** Expected edges: a parent in the same request with another service, or a
 * SERVER/CONSUMER span whose (SERVER, CLIENT or PRODUCER) parent came in the other request. */
function expectedEdges() {
  const edges = new Map();
  for (const [mine, other] of [[MAIN, WORKER], [WORKER, MAIN]]) {
    const local = new Map(mine.map((s) => [s.spanId, s]));
    const remote = new Map(other.filter((s) => [2, 3, 4].includes(s.kind)).map((s) => [s.spanId, s]));
    for (const s of mine) {
      if (!s.parentSpanId) continue;
      const p = local.get(s.parentSpanId) ?? (isServer(s) ? remote.get(s.parentSpanId) : undefined);
      if (!p || p.service === s.service) continue;
      const key = `${p.service}->${s.service}`;
      if (!edges.has(key)) edges.set(key, { from: p.service, to: s.service, calls: 0, errors: 0 });
      edges.get(key).calls++;
      if (isError(s)) edges.get(key).errors++;
    }
  }
  return [...edges.values()].sort((a, b) => (a.from + a.to < b.from + b.to ? -1 : 1));
}

// The fixtures' spans all start in this window (unix ms).
const startsMs = [...MAIN, ...WORKER].map((s) => Number(BigInt(s.startTimeUnixNano) / 1_000_000n));
const WINDOW = { from: String(Math.min(...startsMs) - 60_000), to: String(Math.max(...startsMs) + 60_000) };

const P = {};

async function send(body, project) {
  const res = await stack.ingest(body, { key: project.ingestKey });
  assert.equal(res.status, 200, `POST /v1/traces: ${res.status} ${res.text.slice(0, 300)}`);
}

async function get(project, path, token = project.token) {
  return stack.api(`projects/${encodeURIComponent(project.slug)}/${path}`, { query: WINDOW, token });
}

async function perf(project, service) {
  const r = await get(project, `services/${service}/performance`);
  assert.equal(r.status, 200, r.text.slice(0, 500));
  return r.json();
}

const totalRequests = (body) => body.endpoints.reduce((a, e) => a + e.requests, 0);

stackTest(stack, 'projects: the demo one, and one for isolation', async () => {
  P.main = { id: String(stack.projectId), slug: stack.project, ingestKey: stack.ingestKey, token: stack.token };
  const p = await stack.ctl('project', 'create', `perf-other-${randomBytes(3).toString('hex')}`);
  const t = await stack.ctl('token', 'create', '--project', p.slug);
  P.other = { id: String(p.id), slug: p.slug, ingestKey: p.ingestKey, token: t.token };
});

stackTest(stack, 'requests, errors and status classes per route of checkout-api match its SERVER spans', async () => {
  await send(MAIN_BIN, P.main);
  await send(WORKER_BIN, P.main);
  const expected = expectedEndpoints('checkout-api');
  const want = expected.reduce((a, e) => a + e.requests, 0);
  assert.ok(want > 0, 'the fixture has SERVER spans of checkout-api');
  await eventually(async () => assert.equal(totalRequests(await perf(P.main, 'checkout-api')), want),
    { what: 'checkout-api rolled up', timeoutMs: 30_000 });
  const body = await perf(P.main, 'checkout-api');
  assert.equal(body.endpoints.length, expected.length, JSON.stringify(body.endpoints));
  for (const exp of expected) {
    const got = body.endpoints.find((e) => e.operation === exp.operation && e.kind === exp.kind);
    assert.ok(got, `no endpoint ${exp.operation}`);
    assert.equal(got.requests, exp.requests, exp.operation);
    assert.equal(got.errors, exp.errors, exp.operation);
    assert.ok(Math.abs(got.errorRate - exp.errors / exp.requests) < 1e-9, exp.operation);
    assert.deepEqual(got.status, exp.status, exp.operation);
    assert.equal(got.durationMs.min, Math.min(...exp.durations), exp.operation);
    assert.equal(got.durationMs.max, Math.max(...exp.durations), exp.operation);
    const avg = exp.durations.reduce((a, d) => a + d, 0) / exp.durations.length;
    assert.ok(Math.abs(got.durationMs.avg - avg) < 1e-6, `${exp.operation} avg ${got.durationMs.avg} != ${avg}`);
    for (const [k, q] of [['p50', 0.5], ['p95', 0.95], ['p99', 0.99]]) {
      const [lo, hi] = bucketOf(exp.durations, q);
      assert.ok(got.durationMs[k] >= lo && got.durationMs[k] <= hi,
        `${exp.operation} ${k} ${got.durationMs[k]} outside [${lo}, ${hi}]`);
    }
  }
  // The series add up to the same figures.
  const sum = (pts) => pts.reduce((a, p) => a + p[1], 0);
  assert.equal(sum(body.series.requests), want);
  assert.equal(sum(body.series.errors), expected.reduce((a, e) => a + e.errors, 0));
  assert.equal(body.series.p95.length, body.series.requests.length);
});

stackTest(stack, 'payments-worker: its CONSUMER span is an endpoint of its own', async () => {
  const expected = expectedEndpoints('payments-worker');
  await eventually(async () => {
    const body = await perf(P.main, 'payments-worker');
    assert.deepEqual(body.endpoints.map((e) => [e.operation, e.kind, e.requests, e.errors]),
      expected.map((e) => [e.operation, e.kind, e.requests, e.errors]));
  }, { what: 'payments-worker rolled up', timeoutMs: 30_000 });
});

stackTest(stack, 'the checkout-api -> payments-worker edge (a parent from another request) is on the map', async () => {
  const expected = expectedEdges();
  assert.ok(expected.some((e) => e.from === 'checkout-api' && e.to === 'payments-worker'), 'fixture edge');
  await eventually(async () => {
    const r = await get(P.main, 'service-map');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json().edges.map(({ from, to, calls, errors }) => ({ from, to, calls, errors })), expected);
  }, { what: 'edges rolled up', timeoutMs: 30_000 });
  const edge = (await get(P.main, 'service-map')).json().edges.find((e) => e.to === 'payments-worker');
  const [lo, hi] = bucketOf(WORKER.filter((s) => s.service === 'payments-worker' && isServer(s)).map(durMs), 0.95);
  assert.ok(edge.p95Ms >= lo && edge.p95Ms <= hi, `edge p95 ${edge.p95Ms} outside [${lo}, ${hi}]`);
  for (const svc of ['checkout-api', 'payments-worker']) {
    const r = await get(P.main, `services/${svc}/dependencies`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json().edges.map(({ from, to }) => `${from}->${to}`),
      expected.filter((e) => e.from === svc || e.to === svc).map((e) => `${e.from}->${e.to}`));
  }
});

stackTest(stack, 'the same request sent again is counted once', async () => {
  const before = await perf(P.main, 'checkout-api');
  const edgesBefore = (await get(P.main, 'service-map')).json();
  await send(MAIN_BIN, P.main);
  await send(WORKER_BIN, P.main);
  await new Promise((r) => setTimeout(r, 3000)); // rollup blocks 1 s at most between reads
  assert.deepEqual(await perf(P.main, 'checkout-api'), before);
  assert.deepEqual((await get(P.main, 'service-map')).json(), edgesBefore);
  const ledger = await stack.psql("SELECT count(*) FROM persist_ledger WHERE stream = 'spans-red'");
  assert.equal(ledger, '2', 'one ledger row per distinct request');
});

stackTest(stack, 'another project sees 404 for these endpoints and none of its own', async () => {
  for (const path of ['services/checkout-api/performance', 'services/checkout-api/dependencies', 'service-map']) {
    const r = await get(P.main, path, P.other.token);
    assert.equal(r.status, 404, `${path}: ${r.status} ${r.text}`);
    assert.equal(apiError(r).code, 'not_found');
  }
  const own = await get(P.other, 'services/checkout-api/performance');
  assert.equal(own.status, 200);
  assert.deepEqual(own.json().endpoints, []);
  assert.deepEqual((await get(P.other, 'service-map')).json().edges, []);
  const bad = await stack.api(`projects/${P.main.slug}/service-map`, { query: { from: 'x' }, token: P.main.token });
  assert.equal(bad.status, 400);
});
