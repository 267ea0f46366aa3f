// logs.test.mjs: OTLP logs through the whole stack (POST /v1/logs -> Redis ->
// sextant-persist -> PostgreSQL) and back out of GET .../logs: the shared
// fixtures in every encoding (one project each), logs built here without an
// SDK (structured bodies, no timestamps, services, attributes, a fresh trace),
// every filter, full-text search (words, "phrases", -exclusions, non-ASCII),
// byte-exact bodies, paging, trace correlation (logCount) and project isolation.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually, apiError } from './lib/stack.mjs';
import { fixture, fixtureJson, randomTraceId, randomSpanId } from './lib/otlp.mjs';
import { PROTO, JSONCT, FIXTURE_WINDOW, assertAccepted } from './lib/expect.mjs';

const stack = useStack('logs');

const FIXTURE = fixtureJson('logs-json.json');
const FIXTURE_RECORDS = FIXTURE.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords));
const FAILED_TRACE = '5654e161600dfb2ffdfaf7d91808ac81';
const UMLAUT = 'Zahlung fehlgeschlagen: Größe überschritten ✓';
const MULTILINE = 'checkout failed for cart c_a4db9a\n  step: hydrate order rows\n  order: 48213\n' +
  '  hint: unit price missing, item row is null';

// One project per fixture encoding: the same batch sent twice to one project
// is recognized as a redelivery and stored once.
const ENCODINGS = [
  { name: 'proto', body: () => fixture('logs-proto.bin'), contentType: PROTO },
  { name: 'json', body: () => fixture('logs-json.json'), contentType: JSONCT },
  { name: 'proto-gzip', body: () => fixture('logs-proto.bin.gz'), contentType: PROTO, encoding: 'gzip' },
  { name: 'json-gzip', body: () => fixture('logs-json.json.gz'), contentType: JSONCT, encoding: 'gzip' },
];
const P = {}; // encoding name -> {id, slug, ingestKey, token}
const B = {}; // another project for isolation

/** POST /v1/logs. */
function ingestLogs(body, { contentType = PROTO, encoding, key = stack.ingestKey } = {}) {
  const url = new URL(stack.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/logs');
  const headers = { 'Content-Type': contentType };
  if (encoding) headers['Content-Encoding'] = encoding;
  if (key) headers['X-API-Key'] = key;
  return stack.request('POST', url, { headers, body });
}

/** A 200 ExportLogsServiceResponse without rejected records. */
function assertLogsAccepted(res, contentType) {
  assert.equal(res.status, 200, `POST /v1/logs: ${res.status} ${res.text.slice(0, 300)}`);
  if (contentType === JSONCT) {
    const ps = res.json().partialSuccess;
    assert.equal(Number(ps?.rejectedLogRecords ?? 0), 0, `rejected records: ${res.text}`);
  }
}

/** GET .../logs; throws unless 200. */
async function logs(query, { project = stack.project, token } = {}) {
  const r = await stack.api(`projects/${encodeURIComponent(project)}/logs`, { query, token });
  if (r.status !== 200) throw new Error(`GET logs ${JSON.stringify(query)}: ${r.status} ${r.text.slice(0, 500)}`);
  const body = r.json();
  assert.ok(Array.isArray(body.logs), `no logs array: ${r.text.slice(0, 300)}`);
  assert.ok('nextCursor' in body, 'no nextCursor');
  return body;
}

/** Every page; returns all logs and the page sizes. */
async function allLogs(query, opts) {
  const out = [];
  const pages = [];
  let cursor;
  for (let i = 0; i < 200; i++) {
    const body = await logs({ ...query, cursor }, opts);
    out.push(...body.logs);
    pages.push(body.logs.length);
    if (body.nextCursor === null) return { logs: out, pages };
    assert.notEqual(body.nextCursor, cursor, 'nextCursor repeats itself');
    cursor = body.nextCursor;
  }
  throw new Error('more than 200 pages');
}

const fixtureQuery = (extra = {}) => ({ ...FIXTURE_WINDOW, limit: 1000, ...extra });
const bodies = (list) => list.map((l) => l.body);

function assertNewestFirst(list) {
  for (let i = 1; i < list.length; i++) {
    assert.ok(BigInt(list[i - 1].timeUnixNano) >= BigInt(list[i].timeUnixNano),
      `not newest first at ${i}: ${list[i - 1].timeUnixNano} then ${list[i].timeUnixNano}`);
  }
}

/** A log as the API must show the fixture record r. */
function expectedFixtureLog(r) {
  return {
    timeUnixNano: r.timeUnixNano,
    observedTimeUnixNano: r.observedTimeUnixNano,
    severityNumber: r.severityNumber,
    severityText: r.severityText,
    body: r.body.stringValue,
    traceId: r.traceId || null,
    spanId: r.spanId || null,
    service: 'checkout-api',
  };
}

// ------------------------------------------------------------------ setup --

stackTest(stack, 'projects for each fixture encoding and for isolation', async () => {
  P.proto = { id: String(stack.projectId), slug: stack.project, ingestKey: stack.ingestKey, token: stack.token };
  for (const name of ['json', 'proto-gzip', 'json-gzip', 'other']) {
    const p = await stack.ctl('project', 'create', `logs-${name}-${randomBytes(3).toString('hex')}`);
    const t = await stack.ctl('token', 'create', '--project', p.slug);
    const rec = { id: String(p.id), slug: p.slug, ingestKey: p.ingestKey, token: t.token };
    if (name === 'other') Object.assign(B, rec);
    else P[name] = rec;
  }
});

// ------------------------------------------------------------- fixtures --

stackTest(stack, 'the fixture in every encoding: 10 records, INFO 4 / WARN 3 / ERROR 3, 7 with trace context', async () => {
  for (const enc of ENCODINGS) {
    assertLogsAccepted(await ingestLogs(enc.body(), { contentType: enc.contentType, encoding: enc.encoding,
      key: P[enc.name].ingestKey }), enc.contentType);
  }
  // The trace the failing logs belong to, for logCount.
  assertAccepted(await stack.ingest(fixture('traces-proto.bin')), PROTO);

  const want = FIXTURE_RECORDS.map(expectedFixtureLog)
    .sort((a, b) => (BigInt(b.timeUnixNano) > BigInt(a.timeUnixNano) ? 1 : -1));
  for (const enc of ENCODINGS) {
    const p = P[enc.name];
    const got = await eventually(async () => {
      const { logs: list } = await logs(fixtureQuery(), { project: p.slug, token: p.token });
      assert.equal(list.length, 10, `${enc.name}: ${list.length} logs`);
      return list;
    }, { what: `${enc.name} fixture logs persisted` });
    assertNewestFirst(got);
    const count = (n) => got.filter((l) => l.severityNumber === n).length;
    assert.deepEqual([count(9), count(13), count(17)], [4, 3, 3], enc.name);
    assert.equal(got.filter((l) => l.traceId !== null).length, 7, enc.name);
    assert.deepEqual(got.map((l) => ({
      timeUnixNano: l.timeUnixNano, observedTimeUnixNano: l.observedTimeUnixNano,
      severityNumber: l.severityNumber, severityText: l.severityText, body: l.body, traceId: l.traceId,
      spanId: l.spanId, service: l.service,
    })), want, `${enc.name}: logs differ from the fixture`);
    for (const l of got) {
      assert.equal(l.resource['service.name'], 'checkout-api');
      assert.equal(l.attributes['test.run_id'], 'fixture-0001');
      assert.equal(typeof l.attributes['test.log_seq'], 'number', 'typed attribute values');
    }
  }
});

stackTest(stack, 'non-ASCII and multi-line bodies come back byte-exact', async () => {
  const { logs: list } = await logs(fixtureQuery());
  const umlaut = list.find((l) => l.body.startsWith('Zahlung'));
  assert.ok(umlaut, 'no Zahlung log');
  assert.equal(Buffer.compare(Buffer.from(umlaut.body, 'utf8'), Buffer.from(UMLAUT, 'utf8')), 0,
    `body ${JSON.stringify(umlaut.body)}`);
  const multi = list.find((l) => l.body.includes('\n'));
  assert.equal(multi?.body, MULTILINE);
});

stackTest(stack, 'the same request sent again is stored once', async () => {
  assertLogsAccepted(await ingestLogs(fixture('logs-proto.bin')), PROTO);
  // Something after it in the same stream, so we know the repeat was consumed.
  const marker = `marker${randomBytes(6).toString('hex')}`;
  assertLogsAccepted(await ingestLogs(JSON.stringify(logsRequest([{ service: 'marker', records: [
    { body: { stringValue: `repeat ${marker}` }, severityNumber: 9 }] }])), { contentType: JSONCT }), JSONCT);
  await eventually(async () => assert.equal((await logs({ q: marker })).logs.length, 1), { what: 'marker log' });
  assert.equal((await logs(fixtureQuery())).logs.length, 10);
});

// -------------------------------------------------------------- filters --

stackTest(stack, 'severity is a minimum, by name or number', async () => {
  const n = async (severity) => (await logs(fixtureQuery({ severity }))).logs.length;
  assert.equal(await n('TRACE'), 10);
  assert.equal(await n('INFO'), 10);
  assert.equal(await n('WARN'), 6);
  assert.equal(await n('warn'), 6);
  assert.equal(await n('13'), 6);
  assert.equal(await n('14'), 3);
  assert.equal(await n('ERROR'), 3);
  assert.equal(await n('17'), 3);
  assert.equal(await n('FATAL'), 0);
  for (const bad of ['LOUD', '0', '25', 'WARN9']) {
    const r = await stack.api(`projects/${stack.project}/logs`, { query: { severity: bad } });
    assert.equal(r.status, 400, `severity=${bad}: ${r.status}`);
    assert.match(apiError(r).message, /severity/);
  }
  for (const l of (await logs(fixtureQuery({ severity: 'WARN' }))).logs) assert.ok(l.severityNumber >= 13);
});

stackTest(stack, 'trace correlation: traceId and spanId filters, logCount on the trace', async () => {
  // traceId alone searches all time (the fixture is older than the default 24 h).
  const t = await logs({ traceId: FAILED_TRACE });
  assert.equal(t.logs.length, 5);
  for (const l of t.logs) assert.equal(l.traceId, FAILED_TRACE);
  assert.equal((await logs(fixtureQuery({ traceId: FAILED_TRACE, severity: 'ERROR' }))).logs.length, 2);
  assert.equal((await logs({ traceId: FAILED_TRACE, spanId: 'e6ddfe79ddf866f4' })).logs.length, 2);
  assert.equal((await logs(fixtureQuery({ spanId: 'b02cb7489ca21563' }))).logs.length, 2);
  assert.equal((await logs({ traceId: randomTraceId() })).logs.length, 0);
  for (const q of [{ traceId: 'xyz' }, { traceId: FAILED_TRACE.slice(2) }, { spanId: '00' }]) {
    const r = await stack.api(`projects/${stack.project}/logs`, { query: q });
    assert.equal(r.status, 400, `${JSON.stringify(q)}: ${r.status}`);
  }
  const detail = await eventually(async () => {
    const r = await stack.trace(FAILED_TRACE);
    assert.equal(r.status, 200, r.text.slice(0, 200));
    return r.json();
  }, { what: 'the failing trace' });
  assert.equal(detail.logCount, 5);
  const ok = await stack.trace('9f5986aee4ad4cb66d52362fc5ca4688');
  assert.equal(ok.json().logCount, 1);
});

stackTest(stack, 'full-text search: words, "phrases", -exclusions, non-ASCII', async () => {
  const q = async (text) => bodies((await logs(fixtureQuery({ q: text }))).logs).sort();
  assert.deepEqual(await q('hydrate'), [MULTILINE, (await q('unitPrice'))[0]].sort());
  assert.equal((await q('checkout')).length, 3);
  assert.equal((await q('checkout cart')).length, 3, 'words are ANDed');
  assert.equal((await q('checkout completed')).length, 1);
  assert.equal((await q('"order rows"')).length, 3);
  assert.equal((await q('"postgres from"')).length, 0, 'a phrase keeps its word order');
  assert.equal((await q('"from postgres"')).length, 1);
  assert.deepEqual(await q('"order rows" -postgres'), (await q('hydrate')).sort());
  assert.equal((await q('checkout -"cart c_ok_14df1d"')).length, 2);
  assert.equal((await q('CHECKOUT')).length, 3, 'case-insensitive');
  assert.deepEqual(await q('Größe'), [UMLAUT]);
  assert.deepEqual(await q('größe überschritten'), [UMLAUT]);
  assert.deepEqual(await q('"Zahlung fehlgeschlagen"'), [UMLAUT]);
  assert.deepEqual(await q('48213'), (await q('hydrate')).sort(), 'numbers are words');
  assert.equal((await q('nothinglikethis')).length, 0);
  // SQL and tsquery syntax are plain text to the search.
  assert.equal((await q("'; DROP TABLE logs; -- & | ! :* <->")).length, 0);
  assert.equal((await logs(fixtureQuery())).logs.length, 10);
  for (const bad of ['-postgres', '   ', 'x'.repeat(600)]) {
    const r = await stack.api(`projects/${stack.project}/logs`, { query: { q: bad } });
    assert.equal(r.status, 400, `q=${bad.slice(0, 20)}: ${r.status}`);
  }
});

// --------------------------------------------- logs built without an SDK --

/** An ExportLogsServiceRequest (OTLP JSON) of resources [{service, records}]. */
function logsRequest(resources) {
  return {
    resourceLogs: resources.map(({ service, records }) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeLogs: [{ scope: { name: 'e2e' }, logRecords: records }],
    })),
  };
}

const RUN = randomBytes(4).toString('hex');
const OWN_TRACE = randomTraceId();
const OWN_SPAN = randomSpanId();

stackTest(stack, 'JSON logs without an SDK: structured bodies, missing times, services and attributes', async () => {
  const now = BigInt(Date.now()) * 1000000n;
  const req = logsRequest([
    {
      service: 'billing-worker',
      records: [
        {
          timeUnixNano: String(now - 3000000000n), severityNumber: 17, severityText: 'ERROR',
          body: { kvlistValue: { values: [
            { key: 'event', value: { stringValue: `invoice${RUN} rejected` } },
            { key: 'amount', value: { doubleValue: 12.5 } },
            { key: 'lines', value: { arrayValue: { values: [{ intValue: '1' }, { boolValue: true }] } } },
          ] } },
          traceId: OWN_TRACE, spanId: OWN_SPAN,
          attributes: [{ key: 'order.id', value: { stringValue: `o-${RUN}` } }, { key: 'retry', value: { intValue: '42' } }],
        },
        { timeUnixNano: String(now - 2000000000n), severityNumber: 9, body: { intValue: '7' },
          attributes: [{ key: 'order.id', value: { stringValue: `o-${RUN}` } }] },
        // No time and no observed time: stored at the receive time.
        { severityNumber: 13, severityText: 'WARN', body: { stringValue: `untimed${RUN} tab\there back\\slash` } },
      ],
    },
    {
      service: 'mailer',
      records: [{ observedTimeUnixNano: String(now - 1000000000n), severityNumber: 5,
        body: { stringValue: `observed${RUN} only` }, traceId: OWN_TRACE }],
    },
  ]);
  const before = BigInt(Date.now()) * 1000000n;
  assertLogsAccepted(await ingestLogs(JSON.stringify(req), { contentType: JSONCT }), JSONCT);

  const mine = await eventually(async () => {
    const { logs: list } = await logs({ timeRange: '1h', traceId: OWN_TRACE });
    assert.equal(list.length, 2);
    return list;
  }, { what: 'the SDK-less logs' });
  assert.deepEqual(mine.map((l) => l.service), ['mailer', 'billing-worker']);
  const structured = mine[1];
  assert.deepEqual(structured.body, { event: `invoice${RUN} rejected`, amount: 12.5, lines: [1, true] });
  assert.equal(structured.spanId, OWN_SPAN);
  assert.equal(structured.severityText, 'ERROR');
  assert.deepEqual(structured.attributes, { 'order.id': `o-${RUN}`, retry: 42 });
  assert.equal(mine[0].observedTimeUnixNano, mine[0].timeUnixNano, 'observed time stands in for time');
  assert.equal(mine[0].severityText, null);

  const byOrder = (await logs({ timeRange: '1h', attr: `order.id=o-${RUN}` })).logs;
  assert.deepEqual(byOrder.map((l) => l.body), [7, structured.body], 'an int body is a JSON number');
  assert.equal((await logs({ timeRange: '1h', attr: [`order.id=o-${RUN}`, 'retry=42'] })).logs.length, 1);
  assert.equal((await logs({ timeRange: '1h', attr: 'order.id=nope' })).logs.length, 0);
  const r = await stack.api(`projects/${stack.project}/logs`, { query: { attr: 'novalue' } });
  assert.equal(r.status, 400);

  const untimed = (await logs({ q: `untimed${RUN}` })).logs;
  assert.equal(untimed.length, 1, 'found with the default 24 h window');
  assert.equal(untimed[0].body, `untimed${RUN} tab\there back\\slash`);
  assert.equal(untimed[0].observedTimeUnixNano, '0');
  const t = BigInt(untimed[0].timeUnixNano);
  assert.ok(t >= before - 5000000000n && t <= BigInt(Date.now()) * 1000000n, `receive time ${t}`);

  assert.equal((await logs({ q: `invoice${RUN}` })).logs.length, 1, 'structured bodies are searchable');
  assert.equal((await logs({ q: `invoice${RUN} -rejected` })).logs.length, 0);
  assert.equal((await logs({ service: 'mailer', timeRange: '1h' })).logs.length, 1);
  assert.equal((await logs({ service: 'billing-worker', timeRange: '1h' })).logs.length, 3);
  assert.equal((await logs({ service: 'billing-worker', severity: 'WARN', timeRange: '1h' })).logs.length, 2);
  assert.equal((await logs({ service: 'checkout-api', timeRange: '1h' })).logs.length, 0);
});

// --------------------------------------------------------------- paging --

stackTest(stack, 'paging: limit and cursor walk every log once, newest first', async () => {
  const all = (await logs(fixtureQuery())).logs;
  for (const limit of [1, 3, 4, 10]) {
    const { logs: paged, pages } = await allLogs({ ...FIXTURE_WINDOW, limit });
    assert.equal(paged.length, 10, `limit ${limit}: pages ${pages}`);
    assert.deepEqual(paged, all, `limit ${limit}`);
    assert.ok(pages.slice(0, -1).every((n) => n === limit), `limit ${limit}: pages ${pages}`);
  }
  const one = await logs({ ...FIXTURE_WINDOW, limit: 10 });
  assert.equal(one.nextCursor, null);
  for (const query of [{ cursor: 'garbage' }, { limit: 0 }, { limit: 'x' }, { from: 'yesterday' }]) {
    const r = await stack.api(`projects/${stack.project}/logs`, { query });
    assert.equal(r.status, 400, `${JSON.stringify(query)}: ${r.status}`);
  }
});

// ------------------------------------------------------------ isolation --

stackTest(stack, 'isolation: another project\'s token gets 404, and each project sees only its logs', async () => {
  assert.ok(B.token, 'project B was not created');
  // B has no logs at all.
  assert.equal((await logs(fixtureQuery(), { project: B.slug, token: B.token })).logs.length, 0);
  assert.equal((await logs({ traceId: OWN_TRACE }, { project: B.slug, token: B.token })).logs.length, 0);
  assert.equal((await logs({ q: `invoice${RUN}` }, { project: B.id, token: B.token })).logs.length, 0);
  // A's logs through B's token, and B through A's token: 404 like a missing project.
  for (const [project, token] of [[P.proto.slug, B.token], [P.proto.id, B.token], [B.slug, P.proto.token],
    [P.json.slug, P.proto.token]]) {
    const r = await stack.api(`projects/${project}/logs`, { query: fixtureQuery(), token });
    assert.equal(r.status, 404, `${project}: ${r.status}`);
    assert.equal(apiError(r).code, 'not_found');
  }
  const r = await stack.api(`projects/${P.proto.slug}/logs`, { token: null });
  assert.equal(r.status, 401);
  const k = await stack.api(`projects/${P.proto.slug}/logs`, { token: P.proto.ingestKey });
  assert.equal(k.status, 401, 'an ingest key cannot read');
  // The JSON project's logCount counts its own logs only (its trace is absent: 404).
  assert.equal((await stack.trace(FAILED_TRACE, { project: P.json.slug, token: P.json.token })).status, 404);
  assert.equal((await logs({ traceId: FAILED_TRACE }, { project: P.json.slug, token: P.json.token })).logs.length, 5);
});

stackTest(stack, 'an undecodable log entry goes to the dead letter stream, and the stream moves on', async () => {
  const prefix = stack.config().redis_prefix || 'sx';
  const stream = `${prefix}:stream:logs`;
  const id = await stack.redis('XADD', stream, '*', 'p', String(stack.projectId), 'k', '1', 'n', '1',
    't', String(Date.now() * 1e6), 'b', 'garbage');
  const marker = `after${randomBytes(6).toString('hex')}`;
  assertLogsAccepted(await ingestLogs(JSON.stringify(logsRequest([{ service: 'dl', records: [
    { body: { stringValue: marker }, severityNumber: 9 }] }])), { contentType: JSONCT }), JSONCT);
  await eventually(async () => assert.equal((await logs({ q: marker })).logs.length, 1), { what: 'the log after it' });
  const dead = await eventually(async () => {
    const out = await stack.redis('XRANGE', `${stream}:dead`, '-', '+');
    assert.match(out, /garbage/, `dead letters: ${out}`);
    return out;
  }, { what: 'the dead letter' });
  assert.match(dead, /error/);
  const pending = await stack.redis('XPENDING', stream, 'persist', '-', '+', '10');
  assert.ok(!pending.includes(id), `entry ${id} still pending: ${pending}`);
});

stackTest(stack, 'persist killed (SIGKILL) while logs and spans arrive: every record stored once', { timeout: 240_000 }, async () => {
  const run = `kill-${randomBytes(4).toString('hex')}`;
  const REQUESTS = 60;
  const PER = 20;
  let next = 0;
  let answered = 0;
  const failures = [];
  const worker = async () => {
    while (next < REQUESTS) {
      const i = next++;
      const records = Array.from({ length: PER }, (_, j) => ({
        severityNumber: 9, body: { stringValue: `${run} request ${i} record ${j}` },
        attributes: [{ key: 'kill.run', value: { stringValue: run } },
          { key: 'kill.seq', value: { intValue: String(i * PER + j) } }],
      }));
      const r = await ingestLogs(JSON.stringify(logsRequest([{ service: 'chaos', records }])), { contentType: JSONCT });
      if (r.status !== 200) failures.push(`logs ${i}: ${r.status}`);
      // spans in the same moments, so both streams are read together
      if (i % 4 === 0 && (await stack.ingest(fixture('traces-payments-worker-proto.bin'))).status !== 200) {
        failures.push(`traces ${i}`);
      }
      answered++;
    }
  };
  const chaos = async () => {
    while (answered < 15) await new Promise((res) => setTimeout(res, 5));
    await stack.control('stop', 'persist', '--kill');
    while (answered < 40) await new Promise((res) => setTimeout(res, 5));
    await stack.control('start', 'persist');
  };
  await Promise.all([worker(), worker(), chaos()]);
  assert.deepEqual(failures, []);
  await eventually(async () => {
    const out = await stack.psql(`SELECT count(*), count(DISTINCT attributes->>'kill.seq') FROM logs
      WHERE project_id = ${stack.projectId} AND attributes->>'kill.run' = '${run}'`);
    assert.equal(out, `${REQUESTS * PER}|${REQUESTS * PER}`);
  }, { what: 'every record once', timeoutMs: 90_000, intervalMs: 500 });
  const api = await allLogs({ q: run, limit: 500 });
  assert.equal(api.logs.length, REQUESTS * PER);
});

stackTest(stack, 'logs are stored exactly once and nothing is left pending', async () => {
  const prefix = stack.config().redis_prefix || 'sx';
  await eventually(async () => {
    const pending = await stack.redis('XPENDING', `${prefix}:stream:logs`, 'persist');
    assert.match(pending.split('\n')[0], /^0$/, `pending: ${pending}`);
  }, { what: 'no pending log entries' });
  const rows = await stack.psql(`SELECT project_id, count(*) FROM logs WHERE time_ns < ${1767225700000000000n} ` +
    'GROUP BY project_id ORDER BY project_id');
  const ids = Object.values(P).map((p) => p.id).sort((a, b) => a - b);
  assert.equal(rows, ids.map((id) => `${id}|10`).join('\n'));
});

stackTest(stack, 'q is served by a walk of the time index, then the GIN index, for the API role (200k rows), never a sequential scan', { timeout: 180_000 }, async () => {
  // Rows of a project id no one uses, on a day of their own; removed afterwards.
  const pid = 2000000000;
  const day = 1748736000000000000n; // 2025-06-01
  await stack.psql(`SELECT sextant_ensure_log_partition(${day})`);
  await stack.psql(`INSERT INTO logs (project_id, time_ns, severity_number, body, service)
    SELECT ${pid}, ${day} + g::bigint * 400000000, 9,
           'request ' || g || ' handled by worker w' || (g % 50) || ' token' || md5(g::text), 'svc' || (g % 7)
    FROM generate_series(1, 200000) g; ANALYZE logs`);
  try {
    const plan = await stack.psql(`BEGIN; SET LOCAL ROLE sextant_reader;
      SELECT set_config('sextant.project_ids', '${pid}', true);
      EXPLAIN (COSTS OFF) SELECT l.time_ns, l.body FROM logs_visible l WHERE l.project_id = ${pid}
        AND l.time_ns >= ${day} AND l.time_ns <= ${day + 86399999999999n}
        AND l.search @@ websearch_to_tsquery('simple', 'token' || md5('4242'))
        ORDER BY l.time_ns + 0 DESC, l.row_tid DESC LIMIT 101; ROLLBACK`);
    assert.match(plan, /Bitmap Index Scan on logs_\d+_search_idx/, plan);
    // The API first walks the newest rows (api_logs.c, LOG_WALK): through the
    // time index, for a common word and a rare one alike, never a sequential scan.
    for (const word of ['request', `'token' || md5('4242')`]) {
      const walk = await stack.psql(`BEGIN; SET LOCAL ROLE sextant_reader;
        SELECT set_config('sextant.project_ids', '${pid}', true);
        EXPLAIN (COSTS OFF) SELECT w.time_ns FROM (SELECT l.time_ns, l.row_tid,
          l.search @@ websearch_to_tsquery('simple', ${word.startsWith("'") ? word : `'${word}'`}) AS hit,
          row_number() OVER (ORDER BY l.time_ns DESC, l.row_tid DESC) AS rn
          FROM logs_visible l WHERE l.project_id = ${pid} AND l.time_ns >= ${day}
          AND l.time_ns <= ${day + 86399999999999n} ORDER BY l.time_ns DESC, l.row_tid DESC LIMIT 1000) w
        WHERE w.hit OR w.rn = 1000 ORDER BY w.time_ns DESC, w.row_tid DESC LIMIT 101; ROLLBACK`);
      assert.match(walk, /Index Scan using logs_\d+_project_id_time_ns_idx/, walk);
      assert.doesNotMatch(walk, /Seq Scan/, walk);
    }
  } finally {
    await stack.psql(`DELETE FROM logs WHERE project_id = ${pid}`);
  }
});
