// sdk.test.mjs: the real OpenTelemetry JS SDK (proto and JSON exporters) emits
// a trace across two services in separate requests; the API must show it
// joined (list summary, tree, waterfall, typed attributes, events), and its
// filters and paging must select the right traces. Then the shared SDK
// fixtures are replayed and checked against summary-proto.json.

import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { useStack, stackTest, eventually, run } from './lib/stack.mjs';
import {
  fixture, fixtureJson, fixtureSummary, jsonSpans, expectedWaterfall, kindName, statusName,
  isNoParent, attrsObject, randomTraceId,
} from './lib/otlp.mjs';
import {
  PROTO, FIXTURE_WINDOW, assertAccepted, byTraceId, assertNewestFirst,
} from './lib/expect.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EMITTER = path.join(HERE, 'sdk-emitter.mjs');
const RUN_ATTR = 'sextant.e2e.run';
const PAGING = 25;

const stack = useStack('sdk');

/** Runs sdk-emitter.mjs with the stack's CA trusted; returns its report. */
async function emit(plan) {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: stack.demo.SEXTANT_CA };
  delete env.NODE_TEST_CONTEXT;
  const full = { endpoint: stack.demo.SEXTANT_OTLP_ENDPOINT, key: stack.ingestKey, ...plan };
  const r = await run(process.execPath, [EMITTER, JSON.stringify(full)], { env, cwd: HERE, timeoutMs: 90_000 });
  let report;
  try {
    report = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    throw new Error(`sdk-emitter printed no report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  assert.deepEqual(report.exports.filter((e) => e.code !== 'SUCCESS'), [],
    `SDK exports failed: ${JSON.stringify(report.exports)}\n${r.stderr.slice(-2000)}`);
  assert.equal(r.code, 0, r.stderr);
  return report;
}

const now = Date.now();
const runs = {
  A: { protocol: 'proto', compression: 'none', order: 'backend-first', runTag: `A-${randomBytes(4).toString('hex')}`, baseMs: Math.floor(now / 1000) * 1000 - 10 * 60_000, paging: PAGING },
  B: { protocol: 'json', compression: 'gzip', order: 'frontend-first', runTag: `B-${randomBytes(4).toString('hex')}`, baseMs: Math.floor(now / 1000) * 1000 - 5 * 60_000, paging: 0 },
};
const reports = {};
// Window holding both SDK runs (unix ms) and nothing of the 2026-01-01 fixtures.
const SDK_WINDOW = { from: runs.A.baseMs - 60_000, to: now + 10 * 60_000 };

const ms2ns = (ms) => (BigInt(ms) * 1_000_000n).toString();

function requireRuns(...names) {
  for (const n of names) assert.ok(reports[n], `SDK run ${n} did not complete (see its test)`);
}
const pagingIds = () => reports.A.paging.map((p) => p.traceId);
const crossIds = () => [reports.A.cross.traceId, reports.B.cross.traceId];

async function idsFor(query) {
  const { traces } = await stack.allTraces({ ...SDK_WINDOW, limit: 1000, ...query });
  return [...byTraceId(traces).keys()].sort();
}

/** The list waits until the given traces are complete (spanCount reached). */
async function waitListed(expected) {
  await eventually(async () => {
    const listed = byTraceId((await stack.allTraces({ ...SDK_WINDOW, limit: 1000 })).traces);
    for (const [id, n] of expected) {
      assert.ok(listed.has(id), `trace ${id} not listed yet`);
      assert.equal(listed.get(id).spanCount, n, `trace ${id} spanCount`);
    }
  }, { what: 'SDK traces listed complete' });
}

// ------------------------------------------------------------------ emission

stackTest(stack, 'SDK proto exporter: backend request first, frontend (with the root) last; both accepted', async () => {
  const rep = await emit(runs.A);
  assert.deepEqual(rep.exports.map((e) => e.label), ['backend', 'frontend'], 'one request per service, backend first');
  assert.deepEqual(rep.exports.map((e) => e.spans), [3, 3 + 2 * PAGING]);
  reports.A = rep;
});

stackTest(stack, 'SDK JSON exporter with gzip: frontend first, then backend; both accepted', async () => {
  const rep = await emit(runs.B);
  assert.deepEqual(rep.exports.map((e) => e.label), ['frontend', 'backend']);
  reports.B = rep;
});

// ------------------------------------------------------------------ the joined trace

for (const name of ['A', 'B']) {
  stackTest(stack, `run ${name} (${runs[name].protocol}, ${runs[name].order}): the list shows the joined trace: root frontend, 6 spans, 1 error, both services`, async () => {
    requireRuns(name);
    const c = reports[name].cross;
    await waitListed(new Map([[c.traceId, 6]]));
    const t = byTraceId((await stack.allTraces({ ...SDK_WINDOW, limit: 1000 })).traces).get(c.traceId);
    assert.equal(t.rootService, 'frontend');
    assert.equal(t.rootName, 'GET /checkout');
    assert.equal(t.spanCount, 6);
    assert.equal(t.errorCount, 1);
    assert.deepEqual([...t.services].sort(), ['backend', 'frontend']);
    assert.equal(t.durationMs, 300);
    assert.equal(t.startTimeUnixNano, ms2ns(runs[name].baseMs));
  });

  stackTest(stack, `run ${name}: trace detail has the parent/child tree, depths and waterfall order (orphan last, depth 0)`, async () => {
    requireRuns(name);
    const c = reports[name].cross;
    const detail = await eventually(async () => {
      const r = await stack.trace(c.traceId);
      assert.equal(r.status, 200, r.text.slice(0, 300));
      const d = r.json();
      assert.equal(d.spans.length, 6);
      return d;
    }, { what: `trace ${c.traceId} complete` });
    assert.equal(detail.traceId, c.traceId);
    assert.equal(detail.spanCount, 6);
    assert.equal(detail.durationMs, 300);
    assert.equal(detail.startTimeUnixNano, ms2ns(runs[name].baseMs));
    assert.deepEqual([...detail.services].sort(), ['backend', 'frontend']);

    const want = [
      { spanId: c.rootId, depth: 0, parent: null, name: 'GET /checkout', service: 'frontend', kind: 'SERVER', offsetMs: 0, durationMs: 300 },
      { spanId: c.clientId, depth: 1, parent: c.rootId, name: 'HTTP POST /charge', service: 'frontend', kind: 'CLIENT', offsetMs: 20, durationMs: 230 },
      { spanId: c.serverId, depth: 2, parent: c.clientId, name: 'POST /charge', service: 'backend', kind: 'SERVER', offsetMs: 40, durationMs: 190 },
      { spanId: c.chargeId, depth: 3, parent: c.serverId, name: 'charge card', service: 'backend', kind: 'INTERNAL', offsetMs: 60, durationMs: 140 },
      { spanId: c.renderId, depth: 1, parent: c.rootId, name: 'render page', service: 'frontend', kind: 'INTERNAL', offsetMs: 260, durationMs: 30 },
      { spanId: c.orphanId, depth: 0, parent: c.missingParentId, name: 'orphan job', service: 'backend', kind: 'INTERNAL', offsetMs: 50, durationMs: 20 },
    ];
    const got = detail.spans.map((s) => ({
      spanId: s.spanId, depth: s.depth, parent: isNoParent(s.parentSpanId) ? null : s.parentSpanId, name: s.name,
      service: s.service, kind: kindName(s.kind), offsetMs: s.offsetMs, durationMs: s.durationMs,
    }));
    assert.deepEqual(got, want);
    for (const s of detail.spans) {
      assert.equal(typeof s.startTimeUnixNano, 'string', 'startTimeUnixNano is a string');
    }
    assert.equal(detail.spans[1].startTimeUnixNano, ms2ns(runs[name].baseMs + 20));
  });

  stackTest(stack, `run ${name}: typed attributes, the exception event, error status and resource survive`, async () => {
    requireRuns(name);
    const c = reports[name].cross;
    const r = await stack.trace(c.traceId);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const spans = new Map(r.json().spans.map((s) => [s.spanId, s]));
    const root = spans.get(c.rootId);
    assert.ok(root.attributes && typeof root.attributes === 'object' && !Array.isArray(root.attributes),
      `attributes must be a JSON object: ${JSON.stringify(root.attributes)}`);
    assert.equal(root.attributes['cart.items'], 3, 'int attribute as a JSON number');
    assert.equal(root.attributes['cart.premium'], true, 'bool attribute as a JSON boolean');
    assert.equal(root.attributes['cart.total'], 12.5, 'double attribute as a JSON number');
    assert.equal(root.attributes['http.route'], '/checkout');
    assert.equal(root.attributes['http.response.status_code'], 200);
    assert.deepEqual(root.attributes['cart.tags'], ['gift', 'express'], 'array attribute as a JSON array');
    assert.equal(root.attributes[RUN_ATTR], runs[name].runTag);
    assert.equal(statusName(root.status?.code), 'UNSET');

    const charge = spans.get(c.chargeId);
    assert.equal(statusName(charge.status?.code), 'ERROR');
    assert.equal(charge.status.message, c.errorMessage);
    assert.equal(charge.attributes['payment.amount_cents'], 4599);
    assert.ok(Array.isArray(charge.events), `events must be a list: ${JSON.stringify(charge.events)}`);
    assert.equal(charge.events.length, 1);
    const ev = charge.events[0];
    assert.equal(ev.name, 'exception');
    const ea = attrsObject(ev.attributes);
    assert.equal(ea['exception.type'], c.exceptionType);
    assert.equal(ea['exception.message'], c.errorMessage);
    assert.match(String(ea['exception.stacktrace']), new RegExp(c.errorMessage));
    for (const other of [c.rootId, c.clientId, c.serverId, c.renderId, c.orphanId]) {
      assert.equal((spans.get(other).events ?? []).length, 0, `span ${other} has no events`);
      assert.notEqual(statusName(spans.get(other).status?.code), 'ERROR');
    }
    const res = attrsObject(charge.resource?.attributes ?? charge.resource);
    assert.equal(res['service.name'], 'backend');
    assert.equal(res['service.version'], '1.0.0');
    assert.equal(attrsObject(root.resource?.attributes ?? root.resource)['service.name'], 'frontend');
  });
}

// ------------------------------------------------------------------ filters and paging

stackTest(stack, 'the 25 paging traces of run A are listed, each with 2 spans', async () => {
  requireRuns('A');
  await waitListed(new Map(reports.A.paging.map((p) => [p.traceId, 2])));
});

stackTest(stack, 'filter service: backend selects the two joined traces only; frontend selects all', async () => {
  requireRuns('A', 'B');
  assert.deepEqual(await idsFor({ service: 'backend' }), crossIds().sort());
  assert.deepEqual(await idsFor({ service: 'frontend' }), [...crossIds(), ...pagingIds()].sort());
  assert.deepEqual(await idsFor({ service: 'no-such-service' }), []);
});

stackTest(stack, 'filter operation: root span names select their traces', async () => {
  requireRuns('A', 'B');
  assert.deepEqual(await idsFor({ service: 'frontend', operation: 'GET /item/:id' }), pagingIds().sort());
  assert.deepEqual(await idsFor({ operation: 'GET /checkout' }), crossIds().sort());
});

stackTest(stack, 'filter status: error selects traces with an error span, ok the others', async () => {
  requireRuns('A', 'B');
  const errPaging = reports.A.paging.filter((p) => p.error).map((p) => p.traceId);
  const okPaging = reports.A.paging.filter((p) => !p.error).map((p) => p.traceId);
  assert.equal(errPaging.length, 5);
  assert.deepEqual(await idsFor({ status: 'error' }), [...crossIds(), ...errPaging].sort());
  assert.deepEqual(await idsFor({ status: 'ok' }), okPaging.sort());
  const errList = (await stack.traces({ ...SDK_WINDOW, limit: 1000, status: 'error' })).traces;
  for (const t of errList) assert.ok(t.errorCount >= 1, `${t.traceId} listed under status=error with errorCount ${t.errorCount}`);
});

stackTest(stack, 'filter minDuration / maxDuration (ms)', async () => {
  requireRuns('A', 'B');
  const dur = (lo, hi) => reports.A.paging.filter((p) => p.durationMs >= lo && p.durationMs <= hi).map((p) => p.traceId);
  // paging durations are 10, 20, ... 250 ms; the joined traces last 300 ms.
  assert.deepEqual(await idsFor({ minDuration: 155 }), [...dur(155, 1e9), ...crossIds()].sort());
  assert.deepEqual(await idsFor({ operation: 'GET /item/:id', maxDuration: 55 }), dur(0, 55).sort());
  assert.deepEqual(await idsFor({ operation: 'GET /item/:id', minDuration: 95, maxDuration: 125 }), dur(95, 125).sort());
  assert.equal(dur(95, 125).length, 3);
});

stackTest(stack, 'filter attr=key=value, repeatable, for string and int attributes', async () => {
  requireRuns('A', 'B');
  assert.deepEqual(await idsFor({ attr: `${RUN_ATTR}=${runs.A.runTag}` }), [reports.A.cross.traceId, ...pagingIds()].sort());
  assert.deepEqual(await idsFor({ attr: `${RUN_ATTR}=${runs.B.runTag}` }), [reports.B.cross.traceId]);
  const err500 = reports.A.paging.filter((p) => p.error).map((p) => p.traceId).sort();
  assert.deepEqual(await idsFor({ attr: [`${RUN_ATTR}=${runs.A.runTag}`, 'http.response.status_code=500'] }), err500);
  assert.deepEqual(await idsFor({ attr: 'http.route=/checkout' }), crossIds().sort());
  assert.deepEqual(await idsFor({ attr: `${RUN_ATTR}=no-such-run` }), []);
});

stackTest(stack, 'cursor paging: limit 10 walks the 25 item traces newest first in pages of 10, 10, 5', async () => {
  requireRuns('A');
  const { traces, pages } = await stack.allTraces({ ...SDK_WINDOW, operation: 'GET /item/:id', limit: 10 });
  assert.deepEqual(pages, [10, 10, 5]);
  const expected = [...reports.A.paging].sort((a, b) => b.startMs - a.startMs).map((p) => p.traceId);
  assert.deepEqual(traces.map((t) => t.traceId), expected);
  assertNewestFirst(traces);
  for (const t of traces) {
    const p = reports.A.paging.find((x) => x.traceId === t.traceId);
    assert.equal(t.durationMs, p.durationMs);
    assert.equal(t.spanCount, 2);
    assert.equal(t.errorCount, p.error ? 1 : 0);
    assert.equal(t.rootName, 'GET /item/:id');
  }
});

stackTest(stack, 'from/to bound the list, as unix ms and as RFC 3339', async () => {
  requireRuns('A');
  const p = reports.A.paging;
  const from = p[10].startMs - 100;
  const to = p[14].startMs + 100;
  const want = p.slice(10, 15).map((x) => x.traceId).sort();
  assert.deepEqual(await idsFor({ from, to, operation: 'GET /item/:id' }), want);
  assert.deepEqual(await idsFor({
    from: new Date(from).toISOString(), to: new Date(to).toISOString(), operation: 'GET /item/:id',
  }), want);
});

stackTest(stack, 'services endpoint lists frontend and backend with their span counts', async () => {
  requireRuns('A', 'B');
  const r = await stack.api(`projects/${stack.project}/services`);
  assert.equal(r.status, 200, r.text.slice(0, 300));
  const body = r.json();
  const list = Array.isArray(body) ? body : body.services;
  assert.ok(Array.isArray(list), `services answer: ${r.text.slice(0, 300)}`);
  const counts = new Map(list.map((s) => [s.name ?? s.service, s.spanCount ?? s.count]));
  assert.equal(counts.get('frontend'), 3 + 2 * PAGING + 3, `frontend in ${r.text.slice(0, 300)}`);
  assert.equal(counts.get('backend'), 3 + 3, `backend in ${r.text.slice(0, 300)}`);
});

stackTest(stack, 'an unknown trace id answers 404 with an error body', async () => {
  const r = await stack.trace(randomTraceId());
  assert.equal(r.status, 404);
  const e = r.json().error;
  assert.ok(e && typeof e.code === 'string' && typeof e.message === 'string', r.text);
});

// ------------------------------------------------------------------ SDK fixtures replay

const SUMMARY = fixtureSummary();
const EXPECTED = SUMMARY.expected;
const FIXTURE_SPANS = [
  ...jsonSpans(fixtureJson('traces-json.json')),
  ...jsonSpans(fixtureJson('traces-payments-worker-json.json')),
];
const spansOf = (id) => FIXTURE_SPANS.filter((s) => s.traceId === id);

stackTest(stack, 'replaying traces-proto.bin then traces-payments-worker-proto.bin: both accepted (chunked, as sent)', async () => {
  for (const f of ['traces-proto.bin', 'traces-payments-worker-proto.bin']) {
    const r = await stack.ingest(fixture(f), { contentType: PROTO, chunked: true, headers: { 'User-Agent': SUMMARY.sdk.user_agent } });
    assertAccepted(r, PROTO);
  }
});

stackTest(stack, 'fixture window lists exactly the 28 traces with summary-proto.json\'s span counts, roots and errors', async () => {
  const want = EXPECTED.span_count_per_trace;
  assert.equal(Object.keys(want).length, EXPECTED.trace_count);
  const listed = await eventually(async () => {
    const m = byTraceId((await stack.allTraces({ ...FIXTURE_WINDOW, limit: 1000 })).traces);
    assert.deepEqual([...m.keys()].sort(), Object.keys(want).sort());
    for (const [id, n] of Object.entries(want)) assert.equal(m.get(id).spanCount, n, `spanCount of ${id}`);
    return m;
  }, { what: 'the 28 fixture traces, complete' });
  const total = [...listed.values()].reduce((a, t) => a + t.spanCount, 0);
  assert.equal(total, EXPECTED.span_count);
  for (const t of SUMMARY.traces.all) {
    const got = listed.get(t.trace_id);
    assert.equal(got.rootName, t.root.name, `rootName of ${t.trace_id}`);
    assert.equal(got.rootService, 'checkout-api');
    const errors = spansOf(t.trace_id).filter((s) => s.status?.code === 2).length;
    assert.equal(got.errorCount, errors, `errorCount of ${t.trace_id}`);
    assert.deepEqual([...got.services].sort(), Object.keys(t.span_count_by_service).sort(), `services of ${t.trace_id}`);
  }
});

stackTest(stack, 'the error trace joins the payments-worker span from the second request', async () => {
  const id = EXPECTED.error_trace_id;
  const r = await stack.trace(id);
  assert.equal(r.status, 200, r.text.slice(0, 300));
  const d = r.json();
  assert.equal(d.spanCount, 5);
  assert.equal(d.spans.length, 5);
  assert.deepEqual([...d.services].sort(), ['checkout-api', 'payments-worker']);
  assert.deepEqual(d.spans.map((s) => ({ spanId: s.spanId, depth: s.depth })), expectedWaterfall(spansOf(id)));
  const detailed = SUMMARY.traces.detailed['error-trace-A'].spans;
  for (const want of detailed) {
    const got = d.spans.find((s) => s.spanId === want.span_id);
    assert.ok(got, `span ${want.span_id} missing`);
    assert.equal(got.service, want.service);
    assert.equal(got.name, want.name);
    assert.equal(kindName(got.kind), want.kind);
    assert.equal(statusName(got.status?.code), want.status);
    assert.equal(got.durationMs, want.duration_ms);
    assert.equal(isNoParent(got.parentSpanId) ? null : got.parentSpanId, want.parent_span_id);
    assert.equal((got.events ?? []).length, want.exception_events);
  }
  const worker = d.spans.find((s) => s.service === 'payments-worker');
  assert.equal(worker.depth, 1);
  assert.equal(worker.attributes['payment.amount_cents'], 4599, 'intValue attribute as a JSON number');
  assert.equal(worker.attributes['messaging.system'], 'rabbitmq');
  const hydrate = d.spans.find((s) => s.name === 'hydrate order rows');
  const ea = attrsObject(hydrate.events[0].attributes);
  assert.equal(hydrate.events[0].name, 'exception');
  assert.equal(ea['exception.type'], 'TypeError');
});

stackTest(stack, 'every fixture trace\'s detail follows the waterfall order of its parent links', async () => {
  for (const id of Object.keys(EXPECTED.span_count_per_trace)) {
    const r = await stack.trace(id);
    assert.equal(r.status, 200, `${id}: ${r.text.slice(0, 200)}`);
    const d = r.json();
    assert.deepEqual(d.spans.map((s) => ({ spanId: s.spanId, depth: s.depth })), expectedWaterfall(spansOf(id)), `waterfall of ${id}`);
    for (const s of d.spans) {
      const src = spansOf(id).find((x) => x.spanId === s.spanId);
      assert.equal(s.startTimeUnixNano, src.startTimeUnixNano, `start of ${s.spanId}`);
      const off = Number(BigInt(src.startTimeUnixNano) - BigInt(d.startTimeUnixNano)) / 1e6;
      assert.equal(s.offsetMs, off, `offsetMs of ${s.spanId}`);
    }
  }
});

stackTest(stack, 'fixture list: default page of 20 with a nextCursor, then limit 10 pages 10/10/8 newest first', async () => {
  const first = await stack.traces({ ...FIXTURE_WINDOW });
  assert.equal(first.traces.length, 20);
  assert.ok(first.nextCursor, 'a nextCursor when more traces remain');
  const { traces, pages } = await stack.allTraces({ ...FIXTURE_WINDOW, limit: 10 });
  assert.deepEqual(pages, [10, 10, 8]);
  assert.equal(new Set(traces.map((t) => t.traceId)).size, 28);
  assertNewestFirst(traces);
  assert.deepEqual(first.traces.map((t) => t.traceId), traces.slice(0, 20).map((t) => t.traceId));
});

stackTest(stack, 'timeRange=1h lists the SDK traces and none of the 2026-01-01 fixture traces', async () => {
  requireRuns('A', 'B');
  const ids = new Set((await stack.allTraces({ timeRange: '1h', limit: 1000 })).traces.map((t) => t.traceId));
  for (const id of crossIds()) assert.ok(ids.has(id), `recent trace ${id} missing from timeRange=1h`);
  for (const id of Object.keys(EXPECTED.span_count_per_trace)) assert.ok(!ids.has(id), `old trace ${id} in timeRange=1h`);
  // and the fixture window selects none of the recent ones
  const old = new Set((await stack.allTraces({ ...FIXTURE_WINDOW, limit: 1000 })).traces.map((t) => t.traceId));
  for (const id of crossIds()) assert.ok(!old.has(id), `recent trace ${id} in the 2026-01-01 window`);
});
