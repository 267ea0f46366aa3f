// logs-histogram.test.mjs: GET .../logs/histogram, log volume per step and
// severity. Logs sent here at known times; exact counts per bucket and per
// severity class for every filter of the log search (q through the GIN path,
// severity, service, traceId, attr, from/to), steps (default, given, bad),
// isolation (another project's logs are never counted), and the bounded
// fallback (a second stack with api_log_hist_ms 0: the newest
// api_log_hist_rows rows only, "partial" with null buckets past them).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually, apiError } from './lib/stack.mjs';
import { randomTraceId } from './lib/otlp.mjs';
import { JSONCT } from './lib/expect.mjs';

const stack = useStack('loghist');
const walkStack = useStack('loghist-walk', { extraConf: 'api_log_hist_ms 0\napi_log_hist_rows 5' });

const MIN = 60000;
const T0 = Math.floor(Date.now() / MIN) * MIN - 20 * MIN; // minute-aligned, inside the default day
const WINDOW = { from: String(T0), to: String(T0 + 5 * MIN - 1), step: '1m' }; // five 1-minute buckets
const RUN = randomBytes(4).toString('hex');
const WORD = `zebra${RUN}`;
const TRACE = randomTraceId();

// [ms offset from T0, severityNumber (0: none), service, body, attributes, traceId]
const RECORDS = [
  [1000, 17, 'hist-a', 'payment failed alpha'],
  [2000, 21, 'hist-a', 'fatal crash alpha'],
  [3000, 13, 'hist-a', 'slow query alpha'],
  [4000, 9, 'hist-a', 'request served alpha', { route: '/pay' }],
  [5000, 9, 'hist-a', 'request served alpha'],
  [6000, 9, 'hist-a', 'request served alpha'],
  [7000, 5, 'hist-a', 'debug detail'],
  [8000, 1, 'hist-a', 'trace detail'],
  [9000, 0, 'hist-a', 'no severity at all'],
  [2 * MIN + 5000, 9, 'hist-b', `${WORD} arrived`, { route: '/pay' }],
  [2 * MIN + 6000, 13, 'hist-b', 'warn with trace', {}, TRACE],
  [-30000, 17, 'hist-a', 'before the window alpha'],
  [5 * MIN + 1000, 17, 'hist-b', 'after the window'],
];

function logsBody() {
  const byService = new Map();
  for (const [off, sev, service, body, attrs = {}, traceId] of RECORDS) {
    const rec = {
      timeUnixNano: String(BigInt(T0 + off) * 1000000n),
      body: { stringValue: body },
      attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } })),
    };
    if (sev) rec.severityNumber = sev;
    if (traceId) rec.traceId = traceId;
    if (!byService.has(service)) byService.set(service, []);
    byService.get(service).push(rec);
  }
  return JSON.stringify({
    resourceLogs: [...byService].map(([service, logRecords]) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeLogs: [{ scope: { name: 'e2e' }, logRecords }],
    })),
  });
}

async function ingestLogs(s, key) {
  const url = new URL(s.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/logs');
  const r = await s.request('POST', url, { headers: { 'Content-Type': JSONCT, 'X-API-Key': key }, body: logsBody() });
  assert.equal(r.status, 200, `POST /v1/logs: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(Number(r.json().partialSuccess?.rejectedLogRecords ?? 0), 0, r.text);
}

/** GET .../logs/histogram; throws unless 200. */
async function hist(query, { s = stack, project = s.project, token } = {}) {
  const r = await s.api(`projects/${encodeURIComponent(project)}/logs/histogram`, { query, token });
  if (r.status !== 200) throw new Error(`GET histogram ${JSON.stringify(query)}: ${r.status} ${r.text.slice(0, 500)}`);
  return r.json();
}

const Z = { error: 0, warn: 0, info: 0, debug: 0, other: 0 };
/** A bucket of the 1-minute window: minute k with count and classes. */
const bucket = (k, sev = {}) => {
  const bySeverity = { ...Z, ...sev };
  return { t: T0 + k * MIN, count: Object.values(bySeverity).reduce((a, b) => a + b, 0), bySeverity };
};
const empty = (...except) => [0, 1, 2, 3, 4].map((k) => except.find((b) => b.t === T0 + k * MIN) ?? bucket(k));

/** Asserts the answer over WINDOW at 1-minute steps. */
function assertBuckets(body, want, what) {
  assert.equal(body.from, T0, `${what}: from`);
  assert.equal(body.to, T0 + 5 * MIN - 1, `${what}: to`);
  assert.equal(body.stepMs, MIN, `${what}: stepMs`);
  assert.equal(body.partial, false, `${what}: partial`);
  assert.deepEqual(body.buckets, want, what);
}

const ALL_B0 = { error: 2, warn: 1, info: 3, debug: 2, other: 1 };
const ALL_B2 = { info: 1, warn: 1 };

stackTest(stack, 'logs sent at known times are counted per minute and severity class, zeros included', async () => {
  await ingestLogs(stack, stack.ingestKey);
  const body = await eventually(async () => {
    const b = await hist(WINDOW);
    assert.equal(b.buckets.reduce((a, x) => a + x.count, 0), 11, JSON.stringify(b.buckets));
    return b;
  }, { what: 'the logs persisted' });
  assertBuckets(body, empty(bucket(0, ALL_B0), bucket(2, ALL_B2)), 'no filter');
  // The log search sees the same rows.
  const list = await stack.api(`projects/${stack.project}/logs`, { query: { ...WINDOW, limit: 100 } });
  assert.equal(list.json().logs.length, 11);
});

stackTest(stack, 'every filter of the log search: severity, service, traceId, attr, q (GIN), together', async () => {
  assertBuckets(await hist({ ...WINDOW, severity: 'WARN' }),
    empty(bucket(0, { error: 2, warn: 1 }), bucket(2, { warn: 1 })), 'severity=WARN');
  assertBuckets(await hist({ ...WINDOW, severity: '17' }), empty(bucket(0, { error: 2 })), 'severity=17');
  assertBuckets(await hist({ ...WINDOW, service: 'hist-b' }), empty(bucket(2, ALL_B2)), 'service');
  assertBuckets(await hist({ ...WINDOW, service: 'nope' }), empty(), 'unknown service');
  assertBuckets(await hist({ ...WINDOW, traceId: TRACE }), empty(bucket(2, { warn: 1 })), 'traceId');
  assertBuckets(await hist({ ...WINDOW, attr: 'route=/pay' }),
    empty(bucket(0, { info: 1 }), bucket(2, { info: 1 })), 'attr');
  assertBuckets(await hist({ ...WINDOW, q: WORD }), empty(bucket(2, { info: 1 })), 'q: a rare word');
  assertBuckets(await hist({ ...WINDOW, q: 'alpha' }), empty(bucket(0, { error: 2, warn: 1, info: 3 })), 'q: alpha');
  assertBuckets(await hist({ ...WINDOW, q: 'alpha -fatal' }), empty(bucket(0, { error: 1, warn: 1, info: 3 })),
    'q: exclusion');
  assertBuckets(await hist({ ...WINDOW, q: '"served alpha"', severity: 'INFO', service: 'hist-a' }),
    empty(bucket(0, { info: 3 })), 'q + severity + service');
  assertBuckets(await hist({ ...WINDOW, q: 'nothinglikethis' }), empty(), 'q: no match');
  // The window's bounds: the rows just outside it are not counted.
  const wide = await hist({ from: String(T0 - MIN), to: String(T0 + 6 * MIN - 1), step: '60000' });
  assert.equal(wide.buckets.length, 7);
  assert.deepEqual(wide.buckets.map((b) => b.count), [1, 9, 0, 2, 0, 0, 1]);
  // Bad filters answer as the log search does.
  for (const q of [{ severity: 'LOUD' }, { traceId: 'xyz' }, { q: '-alpha' }, { attr: '=x' }]) {
    const r = await stack.api(`projects/${stack.project}/logs/histogram`, { query: { ...WINDOW, ...q } });
    assert.equal(r.status, 400, `${JSON.stringify(q)}: ${r.status}`);
    assert.equal(apiError(r).code, 'bad_request');
  }
});

stackTest(stack, 'steps: given (aligned to the epoch), the default (at most ~120 nice buckets), 400 for a bad one', async () => {
  const two = await hist({ ...WINDOW, step: '2m' });
  assert.equal(two.stepMs, 2 * MIN);
  const want = new Map();
  for (const [off, sev] of RECORDS.slice(0, 11)) {
    const t = Math.floor((T0 + off) / (2 * MIN)) * 2 * MIN;
    want.set(t, (want.get(t) ?? 0) + 1);
    assert.ok(sev >= 0);
  }
  for (const b of two.buckets) {
    assert.equal(b.t % (2 * MIN), 0, 'aligned to the epoch');
    assert.equal(b.count, want.get(b.t) ?? 0, `bucket ${b.t}`);
  }
  assert.equal(two.buckets.reduce((a, b) => a + b.count, 0), 11);
  const secs = await hist({ ...WINDOW, step: '30s' });
  assert.equal(secs.buckets.length, 10);
  assert.equal(secs.buckets[0].count, 9, 'the first 30 s hold the nine minute-0 logs');

  for (const [range, step] of [['15m', 10000], ['1h', 60000], ['24h', 900000], ['7d', 7200000]]) {
    const b = await hist({ timeRange: range });
    assert.equal(b.stepMs, step, `timeRange=${range}`);
    assert.ok(b.buckets.length <= 121, `${range}: ${b.buckets.length} buckets`);
    assert.ok(b.buckets[0].t <= b.from && b.from < b.buckets[0].t + step);
    for (let i = 1; i < b.buckets.length; i++) assert.equal(b.buckets[i].t - b.buckets[i - 1].t, step);
  }
  // The day holds all 13 logs, the two outside WINDOW too.
  assert.equal((await hist({ timeRange: '24h' })).buckets.reduce((a, b) => a + b.count, 0), 13);

  for (const step of ['abc', '0', '999', '1500', '-60000', '1.5m', '5x']) {
    const r = await stack.api(`projects/${stack.project}/logs/histogram`, { query: { ...WINDOW, step } });
    assert.equal(r.status, 400, `step=${step}: ${r.status}`);
    assert.match(apiError(r).message, /step/);
  }
  const many = await stack.api(`projects/${stack.project}/logs/histogram`, { query: { timeRange: '7d', step: '1s' } });
  assert.equal(many.status, 400);
  assert.match(apiError(many).message, /steps/);
  const twice = await stack.api(`projects/${stack.project}/logs/histogram?step=1m&step=2m`, {});
  assert.equal(twice.status, 400);
});

stackTest(stack, 'isolation: another project\'s logs are never counted, nor readable with its token', async () => {
  const p = await stack.ctl('project', 'create', `loghist-b-${RUN}`);
  const t = await stack.ctl('token', 'create', '--project', p.slug);
  await ingestLogs(stack, p.ingestKey);
  await eventually(async () => {
    const b = await hist(WINDOW, { project: p.slug, token: t.token });
    assert.equal(b.buckets.reduce((a, x) => a + x.count, 0), 11);
  }, { what: 'project B\'s logs' });
  assertBuckets(await hist(WINDOW), empty(bucket(0, ALL_B0), bucket(2, ALL_B2)), 'A after B ingested');
  assertBuckets(await hist({ ...WINDOW, q: WORD }), empty(bucket(2, { info: 1 })), 'A, q');
  const r = await stack.api(`projects/${stack.project}/logs/histogram`, { query: WINDOW, token: t.token });
  assert.equal(r.status, 404);
});

stackTest(walkStack, 'fallback: the newest api_log_hist_rows rows of the window only, exact steps newer than them, null before', async () => {
  await ingestLogs(walkStack, walkStack.ingestKey);
  await eventually(async () => {
    const all = await walkStack.api(`projects/${walkStack.project}/logs`, { query: { ...WINDOW, limit: 100 } });
    assert.equal(all.json().logs.length, 11);
  }, { what: 'the logs persisted' });
  // A window holding fewer rows than the cap (minutes 2-4: two logs) is counted exactly.
  const late = await hist({ from: String(T0 + 2 * MIN), to: WINDOW.to, step: '1m' }, { s: walkStack });
  assert.equal(late.partial, false);
  assert.deepEqual(late.buckets, empty(bucket(2, ALL_B2)).slice(2));
  // The newest 5 rows of WINDOW are the two of minute 2 and the three newest of minute 0.
  const p = await hist(WINDOW, { s: walkStack });
  assert.equal(p.partial, true);
  assert.equal(p.countedFromMs, T0 + 7000, 'the oldest row read');
  assert.equal(p.buckets[0].count, null);
  assert.equal(p.buckets[0].bySeverity, null);
  assert.deepEqual(p.buckets.slice(1), empty(bucket(2, ALL_B2)).slice(1));
  // Filters and q are tested on those same rows: the rows read stay 5 however few match.
  const q = await hist({ ...WINDOW, q: WORD }, { s: walkStack });
  assert.equal(q.partial, true);
  assert.equal(q.countedFromMs, T0 + 7000);
  assert.equal(q.buckets[0].count, null);
  assert.deepEqual(q.buckets.slice(1), empty(bucket(2, { info: 1 })).slice(1));
  const svc = await hist({ ...WINDOW, service: 'hist-a' }, { s: walkStack });
  assert.equal(svc.partial, true);
  assert.equal(svc.countedFromMs, T0 + 7000);
  assert.deepEqual(svc.buckets.slice(1), empty().slice(1), 'minute 2 holds no hist-a log');
});
