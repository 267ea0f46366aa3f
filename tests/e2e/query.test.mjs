// query.test.mjs: the searches that run in steps (fcgi/api_logs.c, fcgi/api_traces.c):
// a log search with q walks the newest rows, may walk again, then asks the GIN index for
// the rest; a trace list by service walks the newest traces, then finds the rest through
// the service's spans in growing windows. Each step continues after the last row the
// previous one looked at: these tests check that the pages stay newest first, without
// duplicates or gaps, across those steps and across cursors, against PostgreSQL's own
// ordering; and that the log-search queries the API runs are not sequential scans.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually } from './lib/stack.mjs';
import { JSONCT } from './lib/expect.mjs';

// A small scan budget, so the trace searches that test each trace (minDuration,
// operation, attr) stop before the 1,500 newer traces are read and answer partial pages.
const SCAN_MAX = 400;
const stack = useStack('query', { extraConf: `api_trace_scan_max ${SCAN_MAX}` });
const RUN = randomBytes(4).toString('hex');

// A day of its own (2025-03-01 UTC), so no other data shares the range.
const DAY_MS = 1740787200000;
const DAY_NS = BigInt(DAY_MS) * 1000000n;
const WINDOW = { from: DAY_MS, to: DAY_MS + 86399999 };

// ------------------------------------------------------------------ logs --

// 3,000 logs, one every 10 s (every tenth shares its time with the one before,
// so ties in time fall across the steps too). Every log has the common word
// w<RUN>; one in 50 has m<RUN> (60 logs, more than a first walk of 1,000 rows
// finds); one in 600 has r<RUN> (5 logs: a GIN step); one in 3 of the older half has
// o<RUN> (500 logs, none among the newest: the GIN step's windows below an empty top).
const NLOGS = 3000;
const common = `w${RUN}`;
const mid = `m${RUN}`;
const rare = `r${RUN}`;
const old = `o${RUN}`;
function logTime(i) {
  return DAY_NS + BigInt((i % 10 === 9 ? i - 1 : i) * 10) * 1000000000n;
}
function logBody(i) {
  let b = `${common} entry ${i}`;
  if (i % 50 === 7) b += ` ${mid}`;
  if (i % 600 === 13) b += ` ${rare}`;
  if (i < NLOGS / 2 && i % 3 === 0) b += ` ${old}`;
  return b;
}

async function ingestLogs(records) {
  const url = new URL(stack.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/logs');
  const body = JSON.stringify({ resourceLogs: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'query-e2e' } }] },
    scopeLogs: [{ scope: { name: 'e2e' }, logRecords: records }],
  }] });
  const r = await stack.request('POST', url, { headers: { 'Content-Type': JSONCT, 'X-API-Key': stack.ingestKey }, body });
  assert.equal(r.status, 200, `POST /v1/logs: ${r.status} ${r.text.slice(0, 200)}`);
}

async function logPage(query) {
  const r = await stack.api(`projects/${stack.project}/logs`, { query: { ...WINDOW, ...query } });
  assert.equal(r.status, 200, `GET logs ${JSON.stringify(query)}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json();
}

async function allLogs(query) {
  const out = [];
  const pages = [];
  let cursor;
  for (let i = 0; i < 500; i++) {
    const body = await logPage({ ...query, cursor });
    out.push(...body.logs);
    pages.push(body.logs.length);
    if (body.nextCursor === null) return { logs: out, pages };
    assert.notEqual(body.nextCursor, cursor, 'nextCursor repeats itself');
    cursor = body.nextCursor;
  }
  throw new Error('more than 500 pages');
}

/** The logs matching q as PostgreSQL orders them: (time, ctid) newest first, as "time|body". */
async function expectedLogs(q) {
  const out = await stack.psql(`SELECT time_ns || '|' || body FROM logs WHERE project_id = ${stack.projectId}
    AND time_ns BETWEEN ${DAY_NS} AND ${DAY_NS + 86399999999999n}
    AND search @@ websearch_to_tsquery('simple', '${q.replace(/'/g, "''")}') ORDER BY time_ns DESC, ctid DESC`);
  return out === '' ? [] : out.split('\n');
}

stackTest(stack, `${NLOGS} logs on a day of their own are stored`, { timeout: 120_000 }, async () => {
  for (let s = 0; s < NLOGS; s += 500) {
    const records = [];
    for (let i = s; i < Math.min(NLOGS, s + 500); i++) {
      records.push({ timeUnixNano: String(logTime(i)), severityNumber: 9, body: { stringValue: logBody(i) } });
    }
    await ingestLogs(records);
  }
  await eventually(async () => {
    const n = await stack.psql(`SELECT count(*) FROM logs WHERE project_id = ${stack.projectId}
      AND search @@ to_tsquery('simple', '${common}')`);
    assert.equal(n, String(NLOGS));
  }, { what: 'every log stored', timeoutMs: 60_000 });
  await stack.psql('ANALYZE logs');
});

for (const [label, q, count] of [
  ['a common word (every row: the first walk fills each page)', common, NLOGS],
  ['a word in 1 row of 50 (a second walk)', mid, NLOGS / 50],
  ['a word in 1 row of 600 (the GIN step)', rare, NLOGS / 600],
  ['a phrase with an exclusion', `"${common} entry" -${mid}`, NLOGS - NLOGS / 50],
  ['a word common in the older half only (GIN windows)', old, NLOGS / 6],
]) {
  stackTest(stack, `q = ${label}: every page newest first, no duplicates or gaps, as PostgreSQL orders them`, { timeout: 120_000 }, async () => {
    const want = await expectedLogs(q);
    assert.equal(want.length, count, `PostgreSQL finds ${want.length}`);
    for (const limit of [1000, 100, 7]) {
      if (limit === 7 && count > 200) continue; // 400+ pages of 7: the larger pages cover it
      const { logs, pages } = await allLogs({ q, limit });
      const got = logs.map((l) => `${l.timeUnixNano}|${l.body}`);
      assert.equal(got.length, count, `limit ${limit}: ${got.length} logs in pages ${pages.slice(0, 20)}`);
      assert.equal(new Set(got).size, count, `limit ${limit}: duplicates`);
      assert.deepEqual(got, want, `limit ${limit}: not PostgreSQL's order`);
      assert.ok(pages.slice(0, -1).every((n) => n === limit), `limit ${limit}: pages ${pages.slice(0, 20)}`);
    }
  });
}

stackTest(stack, 'the log-search queries the API runs use an index, not a sequential scan of the table', async () => {
  const range = `l.time_ns >= ${DAY_NS} AND l.time_ns <= ${DAY_NS + 86399999999999n}`;
  const cols = 'l.time_ns, l.body, l.row_tid';
  const explain = (sql) => stack.psql(`BEGIN; SET LOCAL ROLE sextant_reader;
    SELECT set_config('sextant.project_ids', '${stack.projectId}', true), set_config('jit', 'off', true);
    EXPLAIN (COSTS OFF) ${sql}; ROLLBACK`);
  for (const word of [common, rare]) {
    // The walk (LOG_WALK in api_logs.c).
    const walk = await explain(`SELECT w.time_ns FROM (SELECT ${cols},
        l.search @@ websearch_to_tsquery('simple', '${word}') AS hit,
        row_number() OVER (ORDER BY l.time_ns DESC, l.row_tid DESC) AS rn
      FROM logs_visible l WHERE l.project_id = ${stack.projectId} AND ${range}
      ORDER BY l.time_ns DESC, l.row_tid DESC LIMIT 1000) w WHERE w.hit OR w.rn = 1000
      ORDER BY w.time_ns DESC, w.row_tid DESC LIMIT 101`);
    assert.match(walk, /Index Scan/, walk);
    assert.doesNotMatch(walk, /Seq Scan/, walk);
    // The GIN step (LOG_GIN).
    const gin = await explain(`SELECT ${cols} FROM logs_visible l WHERE l.project_id = ${stack.projectId}
      AND ${range} AND l.search @@ websearch_to_tsquery('simple', '${word}')
      ORDER BY l.time_ns + 0 DESC, l.row_tid DESC LIMIT 101`);
    assert.doesNotMatch(gin, /Seq Scan/, gin);
  }
});

// ---------------------------------------------------------------- traces --

// 60 older traces of service "rarebird" (2 spans each: frontend root, rarebird child),
// then 1,500 newer traces of "frontend" only: more than the first walk of 1,000 traces,
// so the rest of a rarebird page comes from its spans.
const OLD = 60;
const NEW = 1500;
const hex = (n, len) => n.toString(16).padStart(len, '0');
const tid = (kind, i) => `${RUN}${hex(kind, 2)}${hex(i, 22)}`;
function span(traceId, spanId, parent, service, startNs, durNs) {
  return {
    service,
    span: {
      traceId, spanId, parentSpanId: parent || undefined, name: parent ? 'child work' : 'GET /bird', kind: parent ? 1 : 2,
      startTimeUnixNano: String(startNs), endTimeUnixNano: String(startNs + durNs), status: {},
    },
  };
}
function traceRequest(items) {
  const by = new Map();
  for (const { service, span: s } of items) {
    if (!by.has(service)) by.set(service, []);
    by.get(service).push(s);
  }
  return JSON.stringify({ resourceSpans: [...by].map(([service, spans]) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
    scopeSpans: [{ scope: { name: 'e2e' }, spans }],
  })) });
}
// Old traces start every 60 s from 01:00; new ones every 2 s from 12:00.
const oldStart = (i) => DAY_NS + 3600n * 1000000000n + BigInt(i) * 60000000000n;
const newStart = (i) => DAY_NS + 12n * 3600n * 1000000000n + BigInt(i) * 2000000000n;

stackTest(stack, `${OLD} rarebird traces under ${NEW} newer frontend-only traces are stored`, { timeout: 120_000 }, async () => {
  const items = [];
  for (let i = 0; i < OLD; i++) {
    const t = tid(1, i);
    items.push(span(t, hex(2 * i + 1, 16), null, 'frontend', oldStart(i), 50000000n));
    // the rarebird span starts 30 s into a long trace: after the next trace's start
    items.push(span(t, hex(2 * i + 2, 16), hex(2 * i + 1, 16), 'rarebird', oldStart(i) + 30000000000n, 1000000n));
  }
  for (let i = 0; i < NEW; i++) items.push(span(tid(2, i), hex(1000 + i, 16), null, 'frontend', newStart(i), 1000000n));
  for (let s = 0; s < items.length; s += 600) {
    const r = await stack.ingest(traceRequest(items.slice(s, s + 600)), { contentType: JSONCT });
    assert.equal(r.status, 200, `POST /v1/traces: ${r.status} ${r.text.slice(0, 200)}`);
  }
  await eventually(async () => {
    const n = await stack.psql(`SELECT count(*) FROM traces WHERE project_id = ${stack.projectId}
      AND start_time_ns BETWEEN ${DAY_NS} AND ${DAY_NS + 86399999999999n}`);
    assert.equal(n, String(OLD + NEW));
  }, { what: 'every trace stored', timeoutMs: 60_000 });
});

stackTest(stack, 'trace list by a service found only below the first walk: every page newest first, no duplicates or gaps', async () => {
  const want = Array.from({ length: OLD }, (_, i) => tid(1, OLD - 1 - i));
  for (const limit of [20, 7, 1000]) {
    const { traces, pages } = await stack.allTraces({ ...WINDOW, service: 'rarebird', limit });
    assert.deepEqual(traces.map((t) => t.traceId), want, `limit ${limit}: pages ${pages}`);
    assert.ok(pages.slice(0, -1).every((n) => n === limit), `limit ${limit}: pages ${pages}`);
    for (const t of traces) assert.deepEqual(t.services.sort(), ['frontend', 'rarebird']);
  }
  // the other filters still apply on that path
  const slow = await stack.allTraces({ ...WINDOW, service: 'rarebird', minDuration: 1000, limit: 10 });
  assert.deepEqual(slow.traces.map((t) => t.traceId), want, 'all rarebird traces last 30 s or more');
  assert.deepEqual((await stack.traces({ ...WINDOW, service: 'rarebird', maxDuration: 100 })).traces, []);
  assert.deepEqual((await stack.traces({ ...WINDOW, service: 'rarebird', status: 'error' })).traces, []);
  // a window that ends inside the old traces, and one with none of them
  const to = Number(oldStart(29) / 1000000n);
  const part = await stack.allTraces({ from: WINDOW.from, to, service: 'rarebird', limit: 8 });
  assert.deepEqual(part.traces.map((t) => t.traceId), want.slice(OLD - 30));
  const none = await stack.traces({ from: Number(newStart(0) / 1000000n), to: WINDOW.to, service: 'rarebird' });
  assert.deepEqual(none.traces, []);
  // frontend is in every trace: the first walk fills the page
  const front = await stack.traces({ ...WINDOW, service: 'frontend', limit: 50 });
  assert.deepEqual(front.traces.map((t) => t.traceId), Array.from({ length: 50 }, (_, i) => tid(2, NEW - 1 - i)));
  assert.notEqual(front.nextCursor, null);
});

stackTest(stack, 'a trace search over its scan budget answers partial pages whose cursors resume without loss', async () => {
  // Only the 60 old traces last 1 s or more, and only they have a rarebird span named
  // "child work"; 1,500 newer traces lie above them, more than SCAN_MAX.
  const want = Array.from({ length: OLD }, (_, i) => tid(1, OLD - 1 - i));
  for (const [label, query] of [
    ['minDuration', { minDuration: 1000 }],
    ['operation', { operation: 'child work' }],
    ['minDuration and maxDuration', { minDuration: 1000, maxDuration: 100000 }],
  ]) {
    const first = await stack.traces({ ...WINDOW, ...query, limit: 20 });
    assert.deepEqual(first.traces, [], `${label}: the first ${SCAN_MAX} traces hold no match`);
    assert.equal(first.partial, true, `${label}: partial`);
    assert.notEqual(first.nextCursor, null, `${label}: a cursor to go on`);
    const { traces, pages } = await stack.allTraces({ ...WINDOW, ...query, limit: 20 });
    assert.deepEqual(traces.map((t) => t.traceId), want, `${label}: pages ${pages}`);
    // 1,560 traces read SCAN_MAX at a time: at least 1560 / 400 requests before the end
    assert.ok(pages.length >= Math.ceil((OLD + NEW) / SCAN_MAX), `${label}: pages ${pages}`);
  }
  // a full page is never partial
  const full = await stack.traces({ ...WINDOW, maxDuration: 10, limit: 5 });
  assert.deepEqual(full.traces.map((t) => t.traceId), Array.from({ length: 5 }, (_, i) => tid(2, NEW - 1 - i)));
  assert.equal(full.partial, undefined);
});
