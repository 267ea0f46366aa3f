// perf.test.mjs: API performance from spans through the whole stack (POST /v1/traces -> Redis ->
// sextant-rollup's span thread -> red_1m, edges_1m, db_statements_1m) and back out of
// GET .../services/{name}/performance, .../services/{name}/dependencies, .../service-map,
// .../services/{name}/database and .../health. Spans are built here, and every expected figure
// is computed from what was sent: requests, errors, status classes, min/avg/max and the bucket
// that must hold each percentile; edges between services whose parent and child came in separate
// requests (either one first); database statements grouped after normalization; health of
// endpoints whose recent error rate or latency jumped against a baseline sent in the past;
// redelivered entries (rollup killed, every stream entry added again) and a deleted consumer
// group counted exactly once; another project sees 404 or nothing.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually, apiError, sleep } from './lib/stack.mjs';
import { encodeTraceRequest } from './lib/otlp.mjs';

const stack = useStack('perf');

// Upper bounds (ms, inclusive) of the duration buckets: lib/red.c, sql/007_red.sql.
const BOUNDS = [0.5, 1, 2.5, 5, 7.5, 10, 15, 25, 35, 50, 75, 100, 150, 200, 250, 350, 500, 750, 1000, 1500,
  2500, 3500, 5000, 7500, 10000, 15000, 30000, 60000];
const MINUTE_NS = 60_000_000_000n;
const NOW_MS = Date.now();
// The RED scenario lives in one minute 40 minutes ago, away from the health windows.
const T0 = (BigInt(NOW_MS - 40 * 60_000) * 1_000_000n / MINUTE_NS) * MINUTE_NS;
const WINDOW = { from: String(Number(T0 / 1_000_000n) - 60_000), to: String(Number(T0 / 1_000_000n) + 5 * 60_000) };

const hex = (n) => randomBytes(n).toString('hex');
const P = {};

/** A span: durations in ms (sent as exact integer ns), start at T0 + offset ms. */
function span({ name, kind, ms, offsetMs = 0, attributes = {}, error = false, parent, id = hex(8), trace = hex(16),
  startNs }) {
  const start = startNs ?? T0 + BigInt(offsetMs) * 1_000_000n;
  return { traceId: trace, spanId: id, parentSpanId: parent, name, kind, start, end: start + BigInt(Math.round(ms * 1e6)),
    attributes, ...(error ? { status: { code: 2, message: 'boom' } } : {}), ms };
}

async function send(project, resources) {
  const res = await stack.ingest(encodeTraceRequest(resources), { key: project.ingestKey });
  assert.equal(res.status, 200, `POST /v1/traces: ${res.status} ${res.text.slice(0, 300)}`);
}

async function get(project, path, query = WINDOW, token = project.token) {
  return stack.api(`projects/${encodeURIComponent(project.slug)}/${path}`, { query, token });
}

async function ok(project, path, query) {
  const r = await get(project, path, query);
  assert.equal(r.status, 200, `${path}: ${r.status} ${r.text.slice(0, 500)}`);
  return r.json();
}

async function ledgerRows() {
  return Number(await stack.psql("SELECT count(*) FROM persist_ledger WHERE stream = 'spans-red'"));
}

/** The [lo, hi] of the bucket holding the q-quantile of durations (ms), as the rollup buckets them. */
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

function assertPercentiles(got, durations, what) {
  const lo = Math.min(...durations);
  const hi = Math.max(...durations);
  for (const [k, q] of [['p50Ms', 0.5], ['p95Ms', 0.95], ['p99Ms', 0.99]]) {
    const [blo, bhi] = bucketOf(durations, q);
    assert.ok(got[k] >= Math.max(blo, lo) - 1e-9 && got[k] <= Math.min(bhi, hi) + 1e-9,
      `${what} ${k} ${got[k]} outside [${Math.max(blo, lo)}, ${Math.min(bhi, hi)}]`);
  }
}

// ---- the RED scenario: sent in several requests, so in several stream entries ----------------
const httpStatus = (s) => Number(s.attributes['http.response.status_code'] ?? s.attributes['http.status_code'] ?? 0);
const isError = (s) => Boolean(s.status) || (s.kind === 2 && httpStatus(s) >= 500);
const operationOf = (s) => (s.attributes['http.route']
  ? (s.attributes['http.request.method'] ?? s.attributes['http.method']
    ? `${s.attributes['http.request.method'] ?? s.attributes['http.method']} ${s.attributes['http.route']}`
    : s.attributes['http.route'])
  : s.name);

const SHOP = [];
for (let i = 0; i < 40; i++) {
  const status = i < 30 ? 200 : i < 35 ? 404 : 500;
  SHOP.push(span({ name: 'GET /items/{id}', kind: 2, ms: 1 + i * 7.25, offsetMs: i * 100,
    attributes: { 'http.route': '/items/:id', 'http.request.method': 'GET', 'http.response.status_code': status } }));
}
for (let i = 0; i < 10; i++) {
  SHOP.push(span({ name: 'POST /orders', kind: 2, ms: 300 + i * 45, offsetMs: 5000 + i * 10, error: i === 0,
    attributes: { 'http.route': '/orders', 'http.method': 'POST', 'http.status_code': i < 8 ? 201 : '302' } }));
}
SHOP.push(span({ name: 'healthcheck', kind: 2, ms: 0.3, offsetMs: 7000 }));
const WORKER = [];
for (let i = 0; i < 6; i++) {
  WORKER.push(span({ name: 'process order', kind: 5, ms: 20 + i * 30, offsetMs: 8000 + i, error: i === 2,
    attributes: { 'messaging.system': 'kafka' } }));
}

function expectedEndpoints(spans) {
  const out = new Map();
  for (const s of spans) {
    const key = `${operationOf(s)}|${s.kind}`;
    if (!out.has(key)) {
      out.set(key, { operation: operationOf(s), kind: s.kind === 5 ? 'consumer' : 'server', requests: 0, errors: 0,
        s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0, durations: [] });
    }
    const e = out.get(key);
    e.requests++;
    if (isError(s)) e.errors++;
    const st = httpStatus(s);
    if (st >= 200 && st < 600) e[`s${Math.floor(st / 100)}xx`]++;
    e.durations.push(s.ms);
  }
  return [...out.values()];
}

function checkEndpoints(body, spans, what) {
  const expected = expectedEndpoints(spans);
  assert.equal(body.endpoints.length, expected.length, `${what}: ${JSON.stringify(body.endpoints)}`);
  const windowSec = (Number(WINDOW.to) - Number(WINDOW.from)) / 1000;
  for (const exp of expected) {
    const got = body.endpoints.find((e) => e.operation === exp.operation && e.kind === exp.kind);
    assert.ok(got, `${what}: no endpoint ${exp.operation} in ${JSON.stringify(body.endpoints)}`);
    for (const k of ['requests', 'errors', 's2xx', 's3xx', 's4xx', 's5xx']) assert.equal(got[k], exp[k], `${exp.operation} ${k}`);
    assert.ok(Math.abs(got.errorRate - exp.errors / exp.requests) < 1e-12, `${exp.operation} errorRate`);
    assert.ok(Math.abs(got.rps - exp.requests / windowSec) < 1e-3 * got.rps + 1e-9, `${exp.operation} rps ${got.rps}`);
    assert.ok(Math.abs(got.minMs - Math.min(...exp.durations)) < 1e-9, `${exp.operation} min ${got.minMs}`);
    assert.ok(Math.abs(got.maxMs - Math.max(...exp.durations)) < 1e-9, `${exp.operation} max ${got.maxMs}`);
    const avg = exp.durations.reduce((a, d) => a + d, 0) / exp.durations.length;
    assert.ok(Math.abs(got.avgMs - avg) < 1e-6, `${exp.operation} avg ${got.avgMs} != ${avg}`);
    assertPercentiles(got, exp.durations, exp.operation);
  }
}

stackTest(stack, 'projects: the demo one, and one for isolation', async () => {
  P.main = { id: String(stack.projectId), slug: stack.project, ingestKey: stack.ingestKey, token: stack.token };
  const p = await stack.ctl('project', 'create', `perf-other-${hex(3)}`);
  const t = await stack.ctl('token', 'create', '--project', p.slug);
  P.other = { id: String(p.id), slug: p.slug, ingestKey: p.ingestKey, token: t.token };
});

stackTest(stack, 'requests, errors, status classes and latency per route match the SERVER and CONSUMER spans sent', async () => {
  for (let i = 0; i < SHOP.length; i += 9) await send(P.main, [{ resource: { 'service.name': 'shop-api' }, spans: SHOP.slice(i, i + 9) }]);
  await send(P.main, [{ resource: { 'service.name': 'shop-worker' }, spans: WORKER }]);
  await eventually(async () => {
    const body = await ok(P.main, 'services/shop-api/performance');
    assert.equal(body.endpoints.reduce((a, e) => a + e.requests, 0), SHOP.length);
  }, { what: 'shop-api rolled up', timeoutMs: 30_000 });
  const body = await ok(P.main, 'services/shop-api/performance');
  checkEndpoints(body, SHOP, 'shop-api');
  // The series add up to the same totals, per step.
  assert.equal(body.series.reduce((a, p) => a + p.requests, 0), SHOP.length);
  assert.equal(body.series.reduce((a, p) => a + p.errors, 0), SHOP.filter(isError).length);
  assert.ok(body.series.every((p) => p.p95Ms > 0 && Number.isInteger(p.timeUnixMs)));
  await eventually(async () => checkEndpoints(await ok(P.main, 'services/shop-worker/performance'), WORKER, 'shop-worker'),
    { what: 'shop-worker rolled up', timeoutMs: 30_000 });
});

// ---- edges ---------------------------------------------------------------------------------
stackTest(stack, 'edges: in one request, and across requests with the parent first or the child first', async () => {
  const callerA = span({ name: 'POST billing', kind: 3, ms: 50, offsetMs: 100, attributes: { 'http.request.method': 'POST' } });
  const calleeA = span({ name: 'POST /charge', kind: 2, ms: 40, offsetMs: 105, parent: callerA.spanId, trace: callerA.traceId,
    attributes: { 'http.route': '/charge', 'http.request.method': 'POST', 'http.response.status_code': 200 } });
  const callerB = span({ name: 'POST billing', kind: 3, ms: 90, offsetMs: 200 });
  const calleeB = span({ name: 'POST /charge', kind: 2, ms: 80, offsetMs: 205, parent: callerB.spanId, trace: callerB.traceId,
    attributes: { 'http.route': '/charge', 'http.request.method': 'POST', 'http.response.status_code': 503 } });
  const callerC = span({ name: 'GET stock', kind: 3, ms: 5, offsetMs: 300 });
  const calleeC = span({ name: 'GET /stock', kind: 2, ms: 3, offsetMs: 301, parent: callerC.spanId, trace: callerC.traceId });
  const dbCall = span({ name: 'SELECT', kind: 3, ms: 2, offsetMs: 302, parent: calleeC.spanId, trace: callerC.traceId,
    attributes: { 'db.system.name': 'postgresql', 'db.query.text': 'SELECT 1' } });

  // Parent first: its entry is rolled up before the child's is sent.
  // Each entry is waited for before the next is sent, so each count is exact.
  const before = await ledgerRows();
  await send(P.main, [{ resource: { 'service.name': 'shop-api' }, spans: [callerA] }]);
  await eventually(async () => assert.equal(await ledgerRows(), before + 1), { what: 'parent rolled up' });
  await send(P.main, [{ resource: { 'service.name': 'billing-api' }, spans: [calleeA] }]);
  await eventually(async () => assert.equal(await ledgerRows(), before + 2), { what: 'its child rolled up' });
  // Child first.
  await send(P.main, [{ resource: { 'service.name': 'billing-api' }, spans: [calleeB] }]);
  await eventually(async () => assert.equal(await ledgerRows(), before + 3), { what: 'child rolled up' });
  await send(P.main, [{ resource: { 'service.name': 'shop-api' }, spans: [callerB] }]);
  // One request, two services; the database call is no edge.
  await send(P.main, [{ resource: { 'service.name': 'shop-api' }, spans: [callerC] },
    { resource: { 'service.name': 'inventory' }, spans: [calleeC, dbCall] }]);

  const expected = [
    { from: 'shop-api', to: 'billing-api', calls: 2, errors: [calleeA, calleeB].filter(isError).length, durations: [40, 80] },
    { from: 'shop-api', to: 'inventory', calls: 1, errors: 0, durations: [3] },
  ];
  assert.equal(expected[0].errors, 1, 'the 503 is an error');
  await eventually(async () => {
    const map = await ok(P.main, 'service-map');
    assert.deepEqual(map.edges.map(({ from, to, calls, errors }) => ({ from, to, calls, errors })),
      expected.map(({ from, to, calls, errors }) => ({ from, to, calls, errors })));
  }, { what: 'edges rolled up', timeoutMs: 30_000 });
  const map = await ok(P.main, 'service-map');
  assert.deepEqual(map.nodes.map((n) => n.service), ['billing-api', 'inventory', 'shop-api']);
  for (const exp of expected) {
    const e = map.edges.find((x) => x.to === exp.to);
    const [lo, hi] = bucketOf(exp.durations, 0.95);
    assert.ok(e.p95Ms >= lo && e.p95Ms <= hi, `${exp.to} p95 ${e.p95Ms} outside [${lo}, ${hi}]`);
    assert.ok(Math.abs(e.errorRate - exp.errors / exp.calls) < 1e-12);
  }
  const deps = await ok(P.main, 'services/billing-api/dependencies');
  assert.deepEqual(deps.edges.map((e) => `${e.from}->${e.to}`), ['shop-api->billing-api']);
  const inv = await ok(P.main, 'services/inventory/dependencies');
  assert.deepEqual(inv.edges.map((e) => `${e.from}->${e.to}`), ['shop-api->inventory']);
});

// ---- database statements -----------------------------------------------------------------
stackTest(stack, 'database: statements that differ only in literals are one, slowest p95 first', async () => {
  const mk = (attrs, ms, i, error = false) => span({ name: 'db', kind: 3, ms, offsetMs: 9000 + i, attributes: attrs, error });
  const STMTS = [
    { norm: 'SELECT * FROM users WHERE id = ?', system: 'postgresql', dbName: 'shop',
      spans: [42, 7, 1001].map((id, i) => mk({ 'db.system.name': 'postgresql', 'db.namespace': 'shop',
        'db.query.text': `SELECT *  FROM users\n WHERE id = ${id}` }, 2 + i, i)) },
    { norm: 'SELECT name FROM t1 WHERE x IN (?) AND s = ?', system: 'mysql', dbName: 'legacy',
      spans: [[1, 2, 3], [4], [5, 6]].map((xs, i) => mk({ 'db.system': 'mysql', 'db.name': 'legacy',
        'db.statement': `SELECT name FROM t1 WHERE x IN (${xs.join(', ')}) AND s = 'it''s ${i}'` }, 120 + 30 * i, 10 + i, i === 1)) },
    { norm: 'INSERT INTO orders (id, total) VALUES (?)', system: 'postgresql', dbName: null,
      spans: [mk({ 'db.system.name': 'postgresql', 'db.query.text': "INSERT INTO orders (id, total) VALUES (1, -2.5), (2, 3e2) -- bulk" }, 30, 20),
        mk({ 'db.system.name': 'postgresql', 'db.query.text': 'INSERT INTO orders (id, total) VALUES ($1, $2)' }, 31, 21)] },
  ];
  const spans = STMTS.flatMap((s) => s.spans);
  await send(P.main, [{ resource: { 'service.name': 'shop-db-user' }, spans: spans.slice(0, 4) }]);
  await send(P.main, [{ resource: { 'service.name': 'shop-db-user' }, spans: spans.slice(4) }]);
  await eventually(async () => {
    const body = await ok(P.main, 'services/shop-db-user/database');
    assert.equal(body.statements.reduce((a, s) => a + s.calls, 0), spans.length);
  }, { what: 'statements rolled up', timeoutMs: 30_000 });
  const body = await ok(P.main, 'services/shop-db-user/database');
  assert.equal(body.statements.length, STMTS.length, JSON.stringify(body.statements));
  for (const exp of STMTS) {
    const got = body.statements.find((s) => s.statement === exp.norm);
    assert.ok(got, `no statement ${exp.norm}: ${JSON.stringify(body.statements.map((s) => s.statement))}`);
    const durations = exp.spans.map((s) => s.ms);
    assert.equal(got.dbSystem, exp.system);
    assert.equal(got.dbName, exp.dbName);
    assert.equal(got.calls, exp.spans.length);
    assert.equal(got.errors, exp.spans.filter((s) => s.status).length);
    assert.ok(Math.abs(got.avgMs - durations.reduce((a, d) => a + d, 0) / durations.length) < 1e-6);
    assert.ok(Math.abs(got.maxMs - Math.max(...durations)) < 1e-9);
    const [lo, hi] = bucketOf(durations, 0.95);
    assert.ok(got.p95Ms >= lo && got.p95Ms <= Math.min(hi, Math.max(...durations)), `${exp.norm} p95 ${got.p95Ms}`);
  }
  const p95s = body.statements.map((s) => s.p95Ms);
  assert.deepEqual(p95s, [...p95s].sort((a, b) => b - a), 'slowest first');
  assert.equal((await ok(P.main, 'services/shop-db-user/database', { ...WINDOW, limit: 1 })).statements.length, 1);
});

// ---- health --------------------------------------------------------------------------------
stackTest(stack, 'health: a jump in error rate fails, a jump in p95 degrades, against the 24 h baseline', async () => {
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const ago = (minutes) => nowNs - BigInt(Math.round(minutes * 60e9));
  const server = (route, ms, startNs, error = false) => span({ name: route, kind: 2, ms, startNs,
    attributes: { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': error ? 500 : 200 } });
  const R = {
    pay: { base: 200, baseErr: 1, recent: 50, recentErr: 10, baseMs: 50, recentMs: 50 },
    status: { base: 100, baseErr: 0, recent: 30, recentErr: 0, baseMs: 20, recentMs: 60 },
    fresh: { base: 0, baseErr: 0, recent: 20, recentErr: 0, baseMs: 0, recentMs: 10 },
    rare: { base: 50, baseErr: 0, recent: 3, recentErr: 3, baseMs: 10, recentMs: 10 },
  };
  const spans = [];
  for (const [name, c] of Object.entries(R)) {
    const route = `/${name}`;
    for (let i = 0; i < c.base; i++) spans.push(server(route, c.baseMs, ago(60 + (i % 120)), i < c.baseErr));
    for (let i = 0; i < c.recent; i++) spans.push(server(route, c.recentMs, ago(1 + (i % 8) * 0.5), i < c.recentErr));
  }
  for (let i = 0; i < spans.length; i += 100) await send(P.main, [{ resource: { 'service.name': 'pay-api' }, spans: spans.slice(i, i + 100) }]);
  const total = Object.values(R).reduce((a, c) => a + c.base + c.recent, 0);
  let body;
  await eventually(async () => {
    body = await ok(P.main, 'health', { service: 'pay-api' });
    assert.equal(body.endpoints.reduce((a, e) => a + e.requests + e.baseline.requests, 0), total);
  }, { what: 'pay-api rolled up', timeoutMs: 30_000 });
  const ep = (route) => body.endpoints.find((e) => e.operation === `GET /${route}`);
  const pct = (e, n) => (n ? (100 * e) / n : 0).toFixed(1);
  for (const [name, c] of Object.entries(R)) {
    assert.equal(ep(name).requests, c.recent, name);
    assert.equal(ep(name).errors, c.recentErr, name);
    assert.equal(ep(name).baseline.requests, c.base, name);
    assert.equal(ep(name).baseline.errors, c.baseErr, name);
  }
  assert.equal(ep('pay').status, 'failing');
  assert.match(ep('pay').reason, new RegExp(`^error rate ${pct(10, 50)}% \\(baseline ${pct(1, 200)}%\\)`));
  assert.equal(ep('status').status, 'degraded');
  const x = ep('status');
  assert.match(x.reason, /^p95 \d+ ms is \d+\.\dx baseline \d+ ms/);
  const [rlo, rhi] = bucketOf([R.status.recentMs], 0.95);
  assert.ok(x.p95Ms >= rlo && x.p95Ms <= rhi && x.baseline.p95Ms <= R.status.baseMs, JSON.stringify(x));
  assert.equal(ep('fresh').status, 'healthy');
  assert.match(ep('fresh').reason, /no baseline yet/);
  assert.equal(ep('rare').status, 'healthy', 'three requests never flag');
  assert.match(ep('rare').reason, /3 requests in the window/);
  assert.deepEqual(body.summary, { healthy: 2, degraded: 1, failing: 1 });
  assert.deepEqual(body.endpoints.slice(0, 2).map((e) => e.status), ['failing', 'degraded'], 'worst first');
  // A window of three hours takes in the whole baseline: nothing is left before it.
  const wide = await ok(P.main, 'health', { service: 'pay-api', window: '3h' });
  assert.equal(wide.endpoints.reduce((a, e) => a + e.baseline.requests, 0), 0);
  assert.equal((await get(P.main, 'health', { window: 'x' })).status, 400);
});

// ---- redelivery and a lost group -----------------------------------------------------------
stackTest(stack, 'rollup killed, every stream entry added again: each entry is counted once', async () => {
  const dup = Array.from({ length: 25 }, (_, i) => span({ name: 'dup', kind: 2, ms: 5 + i, offsetMs: 20_000 + i,
    attributes: { 'http.route': '/dup', 'http.response.status_code': i % 5 === 0 ? 500 : 200 } }));
  await stack.control('stop', 'rollup', '--kill');
  try {
    for (let i = 0; i < dup.length; i += 5) await send(P.main, [{ resource: { 'service.name': 'dup-svc' }, spans: dup.slice(i, i + 5) }]);
    const stream = `${stack.config().redis_prefix || 'sx'}:stream:spans`;
    // Binary-safe copy of every entry still in the stream, inside Redis.
    const copied = Number(await stack.redis('EVAL',
      "local n = 0 for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do redis.call('XADD', KEYS[1], '*', unpack(e[2])) n = n + 1 end return n",
      '1', stream));
    assert.ok(copied >= 5, `copied ${copied} entries`);
  } finally {
    await stack.control('start', 'rollup');
  }
  await eventually(async () => {
    const body = await ok(P.main, 'services/dup-svc/performance');
    assert.equal(body.endpoints[0]?.requests, dup.length);
  }, { what: 'dup-svc rolled up', timeoutMs: 30_000 });
  await sleep(3000); // the copies are read after the originals: give them time to be (not) counted
  const body = await ok(P.main, 'services/dup-svc/performance');
  checkEndpoints(body, dup, 'dup-svc');
  // And what was there before is unchanged.
  checkEndpoints(await ok(P.main, 'services/shop-api/performance'), SHOP, 'shop-api after the copies');
});

stackTest(stack, 'the consumer group deleted under a running rollup is made again; nothing is lost or doubled', async () => {
  const stream = `${stack.config().redis_prefix || 'sx'}:stream:spans`;
  assert.equal(await stack.redis('XGROUP', 'DESTROY', stream, 'rollup'), '1');
  // The blocked XREADGROUP gets NOGROUP at once and the group comes back.
  await eventually(async () => assert.match(await stack.redis('XINFO', 'GROUPS', stream), /rollup/),
    { what: 'group rollup created again' });
  const spans = Array.from({ length: 7 }, (_, i) => span({ name: 'ng', kind: 5, ms: 3 * i + 1, offsetMs: 30_000 + i }));
  await send(P.main, [{ resource: { 'service.name': 'nogroup-svc' }, spans }]);
  await eventually(async () => {
    const body = await ok(P.main, 'services/nogroup-svc/performance');
    assert.equal(body.endpoints[0]?.requests, spans.length);
  }, { what: 'nogroup-svc rolled up', timeoutMs: 30_000 });
  await sleep(2000); // entries still in the stream are read again by the new group: not counted again
  checkEndpoints(await ok(P.main, 'services/nogroup-svc/performance'), spans, 'nogroup-svc');
  checkEndpoints(await ok(P.main, 'services/shop-api/performance'), SHOP, 'shop-api after the new group');
});

// ---- isolation -----------------------------------------------------------------------------
// ---- hourly rows -----------------------------------------------------------------------------
stackTest(stack, 'red_1h holds exactly the hours of red_1m (after redelivery too); overview by hours equals by minutes', async () => {
  // Every column of every hour row against the minute rows added up, element by element.
  const H = '3600000000000';
  const diff = await stack.psql(`
    WITH m AS (SELECT project_id, service, operation, kind, bucket_start_ns - bucket_start_ns % ${H} AS h,
                      sum(requests) rq, sum(errors) er, sum(s2xx) a, sum(s3xx) b, sum(s4xx) c, sum(s5xx) d,
                      round(sum(dur_sum_ms)::numeric, 6) ds, min(dur_min_ms) lo, max(dur_max_ms) hi
               FROM red_1m GROUP BY 1, 2, 3, 4, 5),
         mb AS (SELECT project_id, service, operation, kind, h, array_agg(v ORDER BY o) bk
                FROM (SELECT project_id, service, operation, kind, bucket_start_ns - bucket_start_ns % ${H} AS h, o, sum(v) v
                      FROM red_1m, unnest(dur_buckets) WITH ORDINALITY u(v, o) GROUP BY 1, 2, 3, 4, 5, 6) x
                GROUP BY 1, 2, 3, 4, 5),
         hh AS (SELECT project_id, service, operation, kind, bucket_start_ns AS h, requests rq, errors er, s2xx a, s3xx b,
                       s4xx c, s5xx d, round(dur_sum_ms::numeric, 6) ds, dur_min_ms lo, dur_max_ms hi, dur_buckets bk FROM red_1h)
    SELECT (SELECT count(*) FROM red_1h) || ' ' || (SELECT count(*) FROM
      ((SELECT * FROM m JOIN mb USING (project_id, service, operation, kind, h)) EXCEPT (SELECT * FROM hh)) x) || ' ' ||
      (SELECT count(*) FROM ((SELECT * FROM hh) EXCEPT (SELECT * FROM m JOIN mb USING (project_id, service, operation, kind, h))) y)`);
  const [rows, missing, extra] = diff.split(' ').map(Number);
  assert.ok(rows > 0, 'red_1h has rows');
  assert.equal(missing, 0, 'every hour of red_1m is in red_1h, equal');
  assert.equal(extra, 0, 'red_1h has nothing red_1m does not');
  // The overview over 6 h: whole hours from red_1h when the step is 1h, every minute from red_1m
  // when it is 1m; the window does not start on an hour, so both tables are read.
  const q = { timeRange: '6h' };
  const byHour = await ok(P.main, 'overview', { ...q, step: '1h' });
  const byMinute = await ok(P.main, 'overview', { ...q, step: '1m' });
  assert.ok(byMinute.totals.requests > 0);
  for (const k of ['requests', 'errors', 'p50', 'p95', 'p99', 'services'])
    assert.equal(byHour.totals[k], byMinute.totals[k], k);
  assert.deepEqual(byHour.topEndpoints, byMinute.topEndpoints);
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  assert.equal(sum(byHour.series.requests), byMinute.totals.requests);
});

stackTest(stack, 'another project sees 404 for these endpoints and nothing of its own', async () => {
  const paths = ['services/shop-api/performance', 'services/shop-api/dependencies', 'service-map',
    'services/shop-db-user/database', 'health'];
  for (const path of paths) {
    const r = await get(P.main, path, WINDOW, P.other.token);
    assert.equal(r.status, 404, `${path}: ${r.status} ${r.text}`);
    assert.equal(apiError(r).code, 'not_found');
    const own = await ok(P.other, path);
    const arrays = Object.values(own).filter(Array.isArray);
    assert.ok(arrays.length > 0 && arrays.every((a) => a.length === 0), `${path} of the other project: ${JSON.stringify(own)}`);
  }
  const bad = await stack.api(`projects/${P.main.slug}/service-map`, { query: { from: 'x' }, token: P.main.token });
  assert.equal(bad.status, 400);
  const none = await stack.api(`projects/${P.main.slug}/service-map`, { query: WINDOW, token: null });
  assert.equal(none.status, 401);
});
