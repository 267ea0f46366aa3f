// metrics.test.mjs: OTLP metrics through the whole stack (POST /v1/metrics ->
// Redis -> sextant-rollup -> metric_points_1m) and back out of GET
// .../metrics and .../metrics/query: the three cumulative fixture
// collections must add up to the LAST cumulative value (not the sum of the
// three), histograms to the last collection's count/sum/buckets, gauges
// keep last/min/max; groupBy, filter, percentiles, project isolation; a
// batch sent again is not counted twice; kill -9 of rollup between
// collections gives the same exact totals.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually, apiError } from './lib/stack.mjs';
import { fixture, fixtureJson } from './lib/otlp.mjs';
import { PROTO } from './lib/expect.mjs';

const stack = useStack('metrics');

const SUMMARY = fixtureJson('summary-proto.json');
const EXPECTED = SUMMARY.metrics.expected_per_collection;
const LAST = EXPECTED[EXPECTED.length - 1];
const GAUGE_VALUES = SUMMARY.metrics.instruments.find((i) => i.name === 'process.memory.usage').observed_values;
const BOUNDS = SUMMARY.metrics.instruments.find((i) => i.name === 'http.server.request.duration').explicit_bounds;
// The fixtures' points all lie in this window (unix ms; see metrics-*-proto.decoded.txt).
const WINDOW = { from: '1795316100000', to: '1795316400000' };
const STEP = '1h';

const REQ_TOTAL = LAST['http.server.requests'].reduce((a, x) => a + x.value, 0);
const HIST_COUNT = LAST['http.server.request.duration'].reduce((a, x) => a + x.count, 0);
const HIST_SUM = LAST['http.server.request.duration'].reduce((a, x) => a + x.sum, 0);

const P = {}; // name -> {id, slug, ingestKey, token}

function ingestMetrics(body, key) {
  const url = new URL(stack.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/metrics');
  return stack.request('POST', url, { headers: { 'Content-Type': PROTO, 'X-API-Key': key }, body });
}

async function sendCollection(n, project) {
  const res = await ingestMetrics(fixture(`metrics-${n}-proto.bin`), project.ingestKey);
  assert.equal(res.status, 200, `POST /v1/metrics (collection ${n}): ${res.status} ${res.text.slice(0, 300)}`);
}

/** GET .../metrics/query; throws unless 200. */
async function mquery(project, query) {
  const r = await stack.api(`projects/${encodeURIComponent(project.slug)}/metrics/query`,
    { query: { ...WINDOW, step: STEP, ...query }, token: project.token });
  if (r.status !== 200) throw new Error(`GET metrics/query ${JSON.stringify(query)}: ${r.status} ${r.text.slice(0, 500)}`);
  const body = r.json();
  assert.ok(Array.isArray(body.series), `no series array: ${r.text.slice(0, 300)}`);
  return body.series;
}

/** The single value of an ungrouped query over the window (one step). */
async function total(project, name, agg, extra = {}) {
  const series = await mquery(project, { name, agg, ...extra });
  assert.equal(series.length, 1, `one series expected for ${name} ${agg}: ${JSON.stringify(series)}`);
  assert.equal(series[0].points.length, 1, `one point expected: ${JSON.stringify(series[0].points)}`);
  return series[0].points[0][1];
}

/** Waits until the rolled-up totals are the last collection's. */
async function waitForTotals(project) {
  await eventually(async () => {
    assert.equal(await total(project, 'http.server.requests', 'sum'), REQ_TOTAL);
    assert.equal(await total(project, 'http.server.request.duration', 'count'), HIST_COUNT);
    assert.equal(await total(project, 'checkout.carts.open', 'sum'), LAST['checkout.carts.open']);
  }, { what: 'rolled-up totals equal to the last collection', timeoutMs: 30_000 });
}

stackTest(stack, 'projects: one per scenario, one for isolation', async () => {
  P.main = { id: String(stack.projectId), slug: stack.project, ingestKey: stack.ingestKey, token: stack.token };
  for (const name of ['kill', 'tag', 'other']) {
    const p = await stack.ctl('project', 'create', `metrics-${name}-${randomBytes(3).toString('hex')}`);
    const t = await stack.ctl('token', 'create', '--project', p.slug);
    P[name] = { id: String(p.id), slug: p.slug, ingestKey: p.ingestKey, token: t.token };
  }
});

stackTest(stack, 'three cumulative collections add up to the last cumulative value, not to their sum', async () => {
  for (const n of [1, 2, 3]) await sendCollection(n, P.main);
  await waitForTotals(P.main);
  assert.equal(REQ_TOTAL, 28, 'fixture expectation changed');
  // The rate over the window times its length is the same total.
  const rate = await total(P.main, 'http.server.requests', 'rate');
  assert.ok(Math.abs(rate * 3600 - REQ_TOTAL) < 1e-9, `rate ${rate} * 3600 != ${REQ_TOTAL}`);
  assert.equal(await total(P.main, 'http.server.request.duration', 'sum'), HIST_SUM);
});

stackTest(stack, 'GET .../metrics lists every instrument with its type, unit and series count', async () => {
  const r = await stack.api(`projects/${P.main.slug}/metrics`, { token: P.main.token });
  assert.equal(r.status, 200, r.text);
  const byName = Object.fromEntries(r.json().metrics.map((m) => [m.name, m]));
  assert.equal(byName['http.server.requests'].type, 'sum');
  assert.equal(byName['http.server.requests'].unit, '{request}');
  assert.equal(byName['http.server.requests'].seriesCount, LAST['http.server.requests'].length);
  assert.equal(byName['http.server.request.duration'].type, 'histogram');
  assert.equal(byName['http.server.request.duration'].unit, 'ms');
  assert.equal(byName['checkout.carts.open'].type, 'sum');
  assert.equal(byName['process.memory.usage'].type, 'gauge');
});

stackTest(stack, 'GET .../metrics/{name}/labels lists the attribute keys and their values, as the points carry them', async () => {
  // What the fixture's collections carry, as text (ints as decimal), resource keys as resource.<key>.
  const text = (v) => v.stringValue ?? (v.intValue !== undefined ? String(v.intValue) : v.boolValue !== undefined ? String(v.boolValue) : undefined);
  const want = {};
  for (const n of [1, 2, 3]) {
    for (const rm of fixtureJson(`metrics-${n}-json.json`).resourceMetrics) {
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) {
          if (m.name !== 'http.server.requests') continue;
          for (const dp of m.sum.dataPoints) {
            const attrs = [...dp.attributes.map((a) => [a.key, a.value]), ...rm.resource.attributes.map((a) => [`resource.${a.key}`, a.value])];
            for (const [k, v] of attrs) (want[k] ??= new Set()).add(text(v));
          }
        }
      }
    }
  }
  const r = await stack.api(`projects/${P.main.slug}/metrics/http.server.requests/labels`, { token: P.main.token });
  assert.equal(r.status, 200, r.text);
  const body = r.json();
  assert.equal(body.seriesCount, LAST['http.server.requests'].length);
  assert.deepEqual(body.labels.map((l) => l.key), Object.keys(want).sort());
  for (const l of body.labels) {
    const values = [...want[l.key]].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1));
    assert.deepEqual(l.values, values, l.key);
    assert.equal(l.valueCount, values.length, l.key);
  }
  const none = await stack.api(`projects/${P.main.slug}/metrics/no.such.metric/labels`, { token: P.main.token });
  assert.equal(none.status, 404);
});

stackTest(stack, 'groupBy and filter give each route its last cumulative value', async () => {
  const series = await mquery(P.main, { name: 'http.server.requests', agg: 'sum',
    groupBy: 'http.route,http.response.status_code' });
  assert.equal(series.length, LAST['http.server.requests'].length);
  for (const exp of LAST['http.server.requests']) {
    const s = series.find((x) => x.labels['http.route'] === exp['http.route'] &&
      x.labels['http.response.status_code'] === String(exp['http.response.status_code']));
    assert.ok(s, `no series for ${exp['http.route']} ${exp['http.response.status_code']}`);
    assert.equal(s.points[0][1], exp.value);
  }
  assert.equal(await total(P.main, 'http.server.requests', 'sum', { filter: 'http.route=/products/:id' }), 15);
  assert.equal(await total(P.main, 'http.server.requests', 'sum',
    { filter: 'http.route=/checkout/:id,http.response.status_code=500' }), 5);
  assert.equal((await mquery(P.main, { name: 'http.server.requests', filter: 'http.route=/nope' })).length, 0);
  const hc = await mquery(P.main, { name: 'http.server.request.duration', agg: 'count', groupBy: 'http.route' });
  assert.equal(hc.find((s) => s.labels['http.route'] === '/checkout/:id').points[0][1], 6);
});

stackTest(stack, 'percentiles fall inside the bucket that holds them', async () => {
  // Every measurement of /checkout/:id status 500 is in (100, 250].
  const p50 = await total(P.main, 'http.server.request.duration', 'p50',
    { filter: 'http.route=/checkout/:id,http.response.status_code=500' });
  assert.ok(p50 > 100 && p50 <= 250, `p50 ${p50}`);
  // All routes: buckets of the last collection added up; find the bucket of each rank.
  const counts = BOUNDS.map(() => 0).concat([0]);
  for (const h of LAST['http.server.request.duration']) h.bucket_counts.forEach((c, i) => { counts[i] += c; });
  const bucketOf = (q) => {
    let cum = 0;
    for (let i = 0; i < counts.length; i++) {
      cum += counts[i];
      if (cum >= q * HIST_COUNT) return [i === 0 ? 0 : BOUNDS[i - 1], i < BOUNDS.length ? BOUNDS[i] : Infinity];
    }
    throw new Error('no bucket');
  };
  for (const [agg, q] of [['p50', 0.5], ['p90', 0.9], ['p99', 0.99]]) {
    const v = await total(P.main, 'http.server.request.duration', agg);
    const [lo, hi] = bucketOf(q);
    assert.ok(v >= lo && v <= hi, `${agg} ${v} outside (${lo}, ${hi}]`);
  }
});

stackTest(stack, 'a gauge keeps its last, min and max; a non-monotonic sum its last value', async () => {
  assert.equal(await total(P.main, 'process.memory.usage', 'last'), GAUGE_VALUES[GAUGE_VALUES.length - 1]);
  assert.equal(await total(P.main, 'process.memory.usage', 'min'), Math.min(...GAUGE_VALUES));
  assert.equal(await total(P.main, 'process.memory.usage', 'max'), Math.max(...GAUGE_VALUES));
  assert.equal(await total(P.main, 'process.memory.usage', 'count'), GAUGE_VALUES.length);
  assert.equal(await total(P.main, 'checkout.carts.open', 'last'), LAST['checkout.carts.open']);
});

stackTest(stack, 'the same batch sent again is not counted twice', async () => {
  await sendCollection(3, P.main);
  await sendCollection(2, P.main); // older cumulative values: a redelivery of an applied batch
  await new Promise((r) => setTimeout(r, 3000)); // rollup blocks 1 s at most between reads
  assert.equal(await total(P.main, 'http.server.requests', 'sum'), REQ_TOTAL);
  assert.equal(await total(P.main, 'http.server.request.duration', 'count'), HIST_COUNT);
});

stackTest(stack, 'kill -9 of rollup between collections, then a restart: the same exact totals', { timeout: 120_000 }, async () => {
  await sendCollection(1, P.kill);
  await eventually(async () => assert.equal(await total(P.kill, 'checkout.carts.open', 'sum'), EXPECTED[0]['checkout.carts.open']),
    { what: 'collection 1 rolled up', timeoutMs: 30_000 });
  await stack.control('stop', 'rollup', '--kill');
  await sendCollection(2, P.kill);
  await stack.control('start', 'rollup');
  await sendCollection(3, P.kill);
  await waitForTotals(P.kill);
  assert.equal(await total(P.kill, 'http.server.request.duration', 'sum'), HIST_SUM);
  await stack.control('stop', 'rollup', '--kill');
  await stack.control('start', 'rollup');
  await sendCollection(3, P.kill);
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await total(P.kill, 'http.server.requests', 'sum'), REQ_TOTAL);
});

/** A JSON request with one point of a monotonic cumulative sum "tag.test.counter". */
function counterBody(startNs, timeNs, value) {
  return JSON.stringify({ resourceMetrics: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'tag-test' } }] },
    scopeMetrics: [{ scope: { name: 'tag-test' }, metrics: [{
      name: 'tag.test.counter', unit: '1',
      sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [{
        startTimeUnixNano: String(startNs), timeUnixNano: String(timeNs), asInt: String(value),
        attributes: [{ key: 'route', value: { stringValue: '/x' } }] }] },
    }] }],
  }] });
}

stackTest(stack, 'the cumulative state only moves with a COMMIT: a state written before a crash resolves through the ledger', async () => {
  const url = new URL(stack.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/metrics');
  const send = async (timeNs, value) => {
    const res = await stack.request('POST', url, { headers: { 'Content-Type': 'application/json', 'X-API-Key': P.tag.ingestKey },
      body: counterBody(start, timeNs, value) });
    assert.equal(res.status, 200, res.text);
  };
  const sumAll = async () => {
    const series = await mquery(P.tag, { name: 'tag.test.counter', agg: 'sum', from: String(start / 1_000_000n - 60_000n),
      to: String(start / 1_000_000n + 120_000n) });
    return series.reduce((a, s) => a + s.points.reduce((b, p) => b + p[1], 0), 0);
  };
  const start = BigInt(Date.now()) * 1_000_000n;
  await send(start + 1_000_000n, 10);
  await eventually(async () => assert.equal(await sumAll(), 10), { what: 'first point rolled up' });
  const sid = await stack.psql(`SELECT id FROM metric_series WHERE project_id = ${P.tag.id} AND name = 'tag.test.counter'`);
  const key = `${stack.config().redis_prefix}:{p${P.tag.id}}:cum:${sid}`;
  assert.equal(await stack.redis('GET', key), `N ${start} ${start + 1_000_000n} 10`);
  // A crash after the tagged write and before COMMIT: the entry is not in the ledger, the old state holds.
  await stack.redis('SET', key, `${'ab'.repeat(16)}|n ${start} 1000|n ${start} 10`);
  await send(start + 2_000_000n, 15);
  await eventually(async () => assert.equal(await sumAll(), 15), { what: 'delta against the old state' });
  // A crash after COMMIT and before the plain write: the entry is in the ledger, the new state holds.
  const applied = await stack.psql("SELECT encode(entry_hash, 'hex') FROM persist_ledger WHERE stream = 'metrics' LIMIT 1");
  await stack.redis('SET', key, `${applied}|n ${start} 20|n ${start} 15`);
  await send(start + 3_000_000n, 26);
  await eventually(async () => assert.equal(await sumAll(), 21), { what: 'delta against the committed state' });
  assert.equal(await stack.redis('GET', key), `N ${start} ${start + 3_000_000n} 26`);
});

stackTest(stack, 'another project sees 404 for these metrics and none of its own', async () => {
  for (const path of ['metrics', 'metrics/query', 'metrics/http.server.requests/labels']) {
    const r = await stack.api(`projects/${P.main.slug}/${path}`, { query: { name: 'http.server.requests' }, token: P.other.token });
    assert.equal(r.status, 404, `${path}: ${r.status} ${r.text}`);
    assert.equal(apiError(r).code, 'not_found');
  }
  const own = await stack.api(`projects/${P.other.slug}/metrics`, { token: P.other.token });
  assert.equal(own.status, 200);
  assert.deepEqual(own.json().metrics, []);
  assert.equal((await mquery(P.other, { name: 'http.server.requests' })).length, 0);
  const bad = await stack.api(`projects/${P.main.slug}/metrics/query`, { query: { name: 'x', agg: 'median' }, token: P.main.token });
  assert.equal(bad.status, 400);
});
