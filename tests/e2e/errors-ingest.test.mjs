// errors-ingest.test.mjs: error tracking on the data side (sextant-persist):
// error events derived from span exception events and error logs, grouped
// into issues (titles, culprits, in-app frames, grouping rule), counts,
// first/last seen and releases, status transitions (regressed, resolve in
// next release, ignore until count/time -> escalating), affected users
// (HyperLogLog flushed into issues), the project's live stream, redelivery
// and a killed persist counted once, and project isolation. Read with psql:
// the issues API is built on another branch.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useStack, stackTest, eventually, run } from './lib/stack.mjs';
import { fixture, fixtureJson, fixtureSummary, randomTraceId, randomSpanId } from './lib/otlp.mjs';
import { PROTO, JSONCT, assertAccepted } from './lib/expect.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const stack = useStack('errors');
const SUMMARY = fixtureSummary();
const TRACES = fixtureJson('traces-json.json');
const LOGS = fixtureJson('logs-json.json');
const LOGS_SDK_LANG = LOGS.resourceLogs[0].resource.attributes.find((a) => a.key === 'telemetry.sdk.language')
  ?.value.stringValue;

// One project per fixture encoding (the same batch sent twice to one project
// would be a redelivery), and one per scenario so counts never mix.
const ENCODINGS = [
  { name: 'proto', body: () => fixture('traces-proto.bin'), contentType: PROTO },
  { name: 'json', body: () => fixture('traces-json.json'), contentType: JSONCT },
  { name: 'gzip', body: () => fixture('traces-proto.bin.gz'), contentType: PROTO, encoding: 'gzip' },
];
const SCENARIOS = ['sdk', 'logs', 'logsoff', 'states', 'users', 'redeliver', 'kill', 'fp', 'other', 'triage', 'inapp'];
const P = {};

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
async function rows(sql) {
  const out = await stack.psql(`SELECT coalesce(json_agg(t), '[]') FROM (${sql}) t`);
  return JSON.parse(out);
}
// bigint columns as text: JSON numbers lose nanoseconds.
const issuesOf = (p) => rows(`SELECT *, first_seen_ns::text AS first_ns, last_seen_ns::text AS last_ns
  FROM issues WHERE project_id = ${p.id} ORDER BY short_seq`);
const eventsOf = (p, extra = '') => rows(`SELECT project_id, time_ns::text AS time_ns, issue_id, source, level, service,
  release, environment, encode(trace_id, 'hex') AS trace_id, encode(span_id, 'hex') AS span_id, type, message,
  stacktrace, lang, frames, handled, user_id, route, url, user_agent, attributes
  FROM error_events WHERE project_id = ${p.id} ${extra} ORDER BY time_ns`);

function post(p, signal, body, { contentType = JSONCT, encoding } = {}) {
  const url = new URL(stack.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + `/v1/${signal}`);
  const headers = { 'Content-Type': contentType, 'X-API-Key': p.ingestKey };
  if (encoding) headers['Content-Encoding'] = encoding;
  return stack.request('POST', url, { headers, body });
}
async function send(p, signal, req) {
  const res = await post(p, signal, JSON.stringify(req));
  assert.equal(res.status, 200, `POST /v1/${signal}: ${res.status} ${res.text.slice(0, 300)}`);
}

/** The exception events of the traces fixture, from what the fixture holds. */
function fixtureExceptions() {
  const out = [];
  for (const rs of TRACES.resourceSpans) {
    for (const ss of rs.scopeSpans) {
      for (const sp of ss.spans) {
        for (const ev of sp.events ?? []) {
          if (ev.name !== 'exception') continue;
          const a = Object.fromEntries(ev.attributes.map((kv) => [kv.key, kv.value.stringValue]));
          out.push({ traceId: sp.traceId, spanId: sp.spanId, time: BigInt(ev.timeUnixNano), type: a['exception.type'],
            message: a['exception.message'], stack: a['exception.stacktrace'] });
        }
      }
    }
  }
  return out;
}

const attrs = (o) => Object.entries(o).map(([key, v]) => ({ key, value: typeof v === 'string' ? { stringValue: v }
  : Array.isArray(v) ? { arrayValue: { values: v.map((x) => ({ stringValue: x })) } } : { intValue: String(v) } }));

/** A trace request of one span per error: {type, fn, message, release, user, timeNs, fingerprint}. */
function errorSpans(errors, { service = 'shop', release } = {}) {
  const byRelease = new Map();
  for (const e of errors) {
    const rel = e.release ?? release ?? null;
    if (!byRelease.has(rel)) byRelease.set(rel, []);
    byRelease.get(rel).push(e);
  }
  return {
    resourceSpans: [...byRelease].map(([rel, list]) => ({
      resource: { attributes: attrs({ 'service.name': service, 'telemetry.sdk.language': 'nodejs',
        ...(rel ? { 'service.version': rel } : {}) }) },
      scopeSpans: [{ scope: { name: 'e2e' }, spans: list.map((e) => {
        const t = BigInt(e.timeNs ?? BigInt(Date.now()) * 1000000n);
        const stackText = `${e.type}: ${e.message}\n    at ${e.fn} (/srv/shop/src/${e.fn}.js:12:7)\n` +
          `    at handle (/srv/shop/src/server.js:40:3)\n    at Layer.handle (/srv/shop/node_modules/express/lib/router/layer.js:95:5)`;
        return {
          traceId: e.traceId ?? randomTraceId(), spanId: e.spanId ?? randomSpanId(), name: 'GET /cart', kind: 2,
          startTimeUnixNano: String(t - 1000000n), endTimeUnixNano: String(t + 1000000n),
          attributes: attrs({ 'http.route': '/cart/:id', 'url.full': 'https://shop.example/cart/7',
            'user_agent.original': 'e2e-agent/1.0', ...(e.user ? { 'enduser.id': e.user } : {}) }),
          events: [{ timeUnixNano: String(t), name: 'exception', attributes: attrs({ 'exception.type': e.type,
            'exception.message': e.message, 'exception.stacktrace': stackText,
            ...(e.fingerprint ? { 'sextant.fingerprint': e.fingerprint } : {}) }) }],
          status: { code: 2, message: e.message },
        };
      }) }],
    })),
  };
}

async function liveEntries(p) {
  const prefix = stack.config().redis_prefix || 'sx';
  const out = await stack.redis('--json', 'XRANGE', `${prefix}:{p${p.id}}:live`, '-', '+').catch(() => null);
  let list;
  if (out !== null) {
    try { list = JSON.parse(out); } catch { list = null; }
  }
  if (!list) {
    // redis-cli without --json: flat lines id, field, value, ...
    const raw = await stack.redis('XRANGE', `${prefix}:{p${p.id}}:live`, '-', '+');
    const lines = raw ? raw.split('\n') : [];
    list = [];
    let cur = null;
    for (let i = 0; i < lines.length; i++) {
      if (/^\d+-\d+$/.test(lines[i])) {
        cur = { id: lines[i], f: {} };
        list.push(cur);
      } else if (cur) {
        cur.f[lines[i]] = lines[i + 1];
        i++;
      }
    }
    return list.map((e) => e.f);
  }
  return list.map(([, fields]) => Object.fromEntries(fields.reduce((acc, v, i) => (i % 2 ? acc[acc.length - 1].push(v)
    : acc.push([v]), acc), [])));
}

// ------------------------------------------------------------------ setup --

stackTest(stack, 'projects for each fixture encoding and scenario', async () => {
  P.proto = { id: Number(stack.projectId), slug: stack.project, ingestKey: stack.ingestKey };
  for (const name of [...ENCODINGS.map((e) => e.name).filter((n) => n !== 'proto'), ...SCENARIOS]) {
    const p = await stack.ctl('project', 'create', `err-${name}-${randomBytes(3).toString('hex')}`);
    P[name] = { id: Number(p.id), slug: p.slug, ingestKey: p.ingestKey };
  }
  const off = await stack.ctl('project', 'errors', P.logsoff.slug, '--error-logs', 'off');
  assert.deepEqual(off, { slug: P.logsoff.slug, errorLogsAsEvents: false, inAppInclude: [], inAppExclude: [] });
  const rules = await stack.ctl('project', 'errors', P.inapp.slug, '--inapp-include', '*node_modules/express/',
    '--inapp-exclude', '*/src/server.js');
  assert.deepEqual([rules.errorLogsAsEvents, rules.inAppInclude, rules.inAppExclude],
    [true, ['*node_modules/express/'], ['*/src/server.js']]);
  P.proto.token = stack.token;
  P.triage.token = (await stack.ctl('token', 'create', '--project', P.triage.slug)).token;
});

// ------------------------------------------------------------- fixtures --

stackTest(stack, 'the traces fixture in every encoding gives exactly two issues, 5 TypeErrors and 2 RangeErrors', async () => {
  for (const enc of ENCODINGS) {
    assertAccepted(await post(P[enc.name], 'traces', enc.body(), enc), enc.contentType);
  }
  const exc = fixtureExceptions();
  const groups = SUMMARY.expected.issue_groups;
  assert.equal(exc.length, groups.reduce((n, g) => n + g.count, 0), 'fixture exception events vs summary');
  for (const enc of ENCODINGS) {
    const p = P[enc.name];
    const issues = await eventually(async () => {
      const list = await issuesOf(p);
      assert.equal(list.length, groups.length, `${enc.name}: ${JSON.stringify(list.map((i) => i.title))}`);
      assert.equal(list.reduce((n, i) => n + Number(i.event_count), 0), exc.length);
      return list;
    }, { what: `${enc.name}: two issues` });
    for (const g of groups) {
      const mine = exc.filter((e) => e.type === g.type);
      assert.equal(mine.length, g.count);
      const latest = mine.reduce((a, b) => (b.time > a.time ? b : a));
      const issue = issues.find((i) => i.type === g.type);
      assert.ok(issue, `${enc.name}: no ${g.type} issue`);
      assert.equal(Number(issue.event_count), g.count);
      assert.equal(issue.title, `${g.type}: ${latest.message}`);
      assert.match(issue.culprit, new RegExp(`emit\\.mjs in ${g.function}$`));
      assert.equal(issue.grouping_rule, 'in_app_frames');
      assert.equal(issue.grouping_version, 'v1');
      assert.equal(issue.status, 'unresolved');
      assert.equal(issue.substatus, 'new');
      assert.equal(issue.level, 'error');
      assert.equal(issue.service, 'checkout-api');
      assert.equal(BigInt(issue.first_ns), mine.reduce((m, e) => (e.time < m ? e.time : m), mine[0].time));
      assert.equal(BigInt(issue.last_ns), latest.time);
      const hourly = await rows(`SELECT sum(events)::int AS n FROM issue_counts_hourly WHERE issue_id = ${issue.id}`);
      assert.equal(hourly[0].n, g.count);
      const fps = await rows(`SELECT grouping_version FROM issue_fingerprints WHERE issue_id = ${issue.id}`);
      assert.deepEqual(fps.map((f) => f.grouping_version), ['v1']);
    }
    // The earliest first event is issue 1.
    const firstType = exc.reduce((a, b) => (b.time < a.time ? b : a)).type;
    assert.equal(issues[0].type, firstType);
    assert.deepEqual(issues.map((i) => i.short_seq), [1, 2]);

    const events = await eventsOf(p);
    assert.equal(events.length, exc.length);
    assert.deepEqual(events.map((e) => `${e.trace_id}/${e.span_id}/${e.time_ns}`).sort(),
      exc.map((e) => `${e.traceId}/${e.spanId}/${e.time}`).sort());
    for (const e of events) {
      const src = exc.find((x) => x.spanId === e.span_id);
      assert.equal(e.source, 'span');
      assert.equal(e.type, src.type);
      assert.equal(e.message, src.message);
      assert.equal(e.stacktrace, src.stack);
      assert.equal(e.lang, 'js');
      assert.equal(e.issue_id, issues.find((i) => i.type === src.type).id);
      // Frames oldest first; library code (node_modules, node:internal) is not in-app.
      assert.ok(e.frames.length >= 5, JSON.stringify(e.frames));
      const top = e.frames[e.frames.length - 1];
      assert.equal(top.function, SUMMARY.issues.find((i) => i.type === src.type).function);
      assert.equal(top.inApp, true);
      for (const f of e.frames) {
        if (/node_modules|^node:/.test(f.file ?? '')) assert.equal(f.inApp, false, JSON.stringify(f));
        if (/emit\.mjs$/.test(f.file ?? '')) assert.equal(f.inApp, true, JSON.stringify(f));
      }
      assert.ok(e.frames.some((f) => f.inApp === false), 'some frames are library code');
      assert.equal(e.attributes['exception.stacktrace'], undefined, 'the stack is not repeated in attributes');
    }
    // New issues on the live stream.
    const live = await eventually(async () => {
      const l = (await liveEntries(p)).filter((x) => x.type === 'issue.new');
      assert.equal(l.length, groups.length);
      return l;
    }, { what: 'live issue.new entries' });
    for (const i of issues) {
      const e = live.find((x) => x.issue === String(i.id));
      assert.ok(e, `no live entry for issue ${i.id}`);
      assert.equal(e.shortId, `${p.slug.toUpperCase()}-${i.short_seq}`);
      assert.equal(e.project, String(p.id));
      assert.ok(e.title.startsWith(`${i.type}: `));
    }
  }
});

stackTest(stack, 'the logs fixture: each ERROR record is an event; the switch off leaves only records with exception attributes', async () => {
  const errors = LOGS.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords))
    .filter((r) => r.severityNumber >= 17);
  assert.equal(errors.length, SUMMARY.expected.log_count_by_severity.ERROR);
  for (const name of ['logs', 'logsoff']) {
    const res = await post(P[name], 'logs', fixture('logs-proto.bin'), { contentType: PROTO });
    assert.equal(res.status, 200);
  }
  const events = await eventually(async () => {
    const ev = await eventsOf(P.logs);
    assert.equal(ev.length, errors.length);
    return ev;
  }, { what: 'log error events' });
  assert.deepEqual(events.map((e) => e.message).sort(), errors.map((r) => r.body.stringValue).sort());
  for (const e of events) {
    assert.equal(e.source, 'log');
    assert.equal(e.level, 'error');
    assert.equal(e.type, '');
    // No stack: the language is the SDK's (telemetry.sdk.language), no frames.
    assert.equal(e.lang, LOGS_SDK_LANG === 'nodejs' ? 'js' : 'unknown');
    assert.deepEqual(e.frames, []);
  }
  assert.deepEqual(events.map((e) => e.trace_id).sort(), errors.map((r) => r.traceId).sort());
  // Three different message templates: three issues of one event, titled by the first line.
  const issues = await issuesOf(P.logs);
  assert.equal(issues.length, new Set(errors.map((r) => r.body.stringValue)).size);
  assert.ok(issues.every((i) => i.grouping_rule === 'message' && Number(i.event_count) === 1));
  assert.ok(issues.some((i) => i.title === errors[1].body.stringValue.split('\n')[0]));

  // Switch off: the ERROR records are not events, records with exception.* attributes still are.
  const stackText = 'Traceback (most recent call last):\n  File "/srv/app/billing/views.py", line 12, in charge\n' +
    '    total = compute(cart)\n  File "/srv/app/billing/tax.py", line 40, in compute\n    raise ValueError("bad rate 7")\n' +
    'ValueError: bad rate 7';
  const now = BigInt(Date.now()) * 1000000n;
  await send(P.logsoff, 'logs', { resourceLogs: [{ resource: { attributes: attrs({ 'service.name': 'billing',
    'service.version': '3.0.0', 'deployment.environment': 'prod' }) }, scopeLogs: [{ scope: { name: 'e2e' }, logRecords: [
    { timeUnixNano: String(now), severityNumber: 17, body: { stringValue: 'plain error, not an event here' } },
    { timeUnixNano: String(now + 1n), severityNumber: 13, body: { stringValue: 'charge failed' },
      attributes: attrs({ 'exception.type': 'ValueError', 'exception.message': 'bad rate 7', 'exception.stacktrace': stackText,
        'user.id': 'u-77', 'http.route': '/charge' }) },
  ] }] }] });
  const off = await eventually(async () => {
    const ev = await eventsOf(P.logsoff);
    assert.equal(ev.length, 1, JSON.stringify(ev.map((e) => e.message)));
    return ev;
  }, { what: 'the exception log of the switched-off project' });
  assert.equal(off[0].type, 'ValueError');
  assert.equal(off[0].message, 'bad rate 7');
  assert.equal(off[0].lang, 'python');
  assert.equal(off[0].level, 'warning');
  assert.equal(off[0].release, '3.0.0');
  assert.equal(off[0].environment, 'prod');
  assert.equal(off[0].user_id, 'u-77');
  assert.equal(off[0].route, '/charge');
  assert.deepEqual(off[0].frames.map((f) => f.function), ['charge', 'compute']);
  const [issue] = await issuesOf(P.logsoff);
  assert.equal(issue.title, 'ValueError: bad rate 7');
  assert.match(issue.culprit, /tax\.py in compute$/);
  assert.equal(issue.first_release, '3.0.0');
});

stackTest(stack, 'the OpenTelemetry JS SDK: span.recordException with a service.version gives an issue and its release', async () => {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: stack.demo.SEXTANT_CA };
  delete env.NODE_TEST_CONTEXT;
  const plan = { endpoint: stack.demo.SEXTANT_OTLP_ENDPOINT, key: P.sdk.ingestKey, protocol: 'proto', release: '2.3.4',
    runTag: randomBytes(4).toString('hex'), count: 3 };
  const r = await run(process.execPath, [path.join(HERE, 'sdk-errors-emitter.mjs'), JSON.stringify(plan)],
    { env, cwd: HERE, timeoutMs: 90_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(r.stdout.trim().split('\n').pop());
  const issues = await eventually(async () => {
    const list = await issuesOf(P.sdk);
    assert.equal(list.length, 1);
    assert.equal(Number(list[0].event_count), plan.count);
    return list;
  }, { what: 'the SDK issue' });
  const [issue] = issues;
  assert.equal(issue.type, report.type);
  // The title is the newest event's. Not always the last one recorded: each of these root
  // spans has its own clock anchored on Date.now() (whole ms), so two exceptions thrown in
  // one millisecond can be timed in the other order. Newest by the stored event times.
  const stored = await eventsOf(P.sdk);
  assert.deepEqual(stored.map((e) => e.message).sort(), [...report.messages].sort());
  assert.equal(issue.title, `${report.type}: ${stored[stored.length - 1].message}`);
  assert.equal(issue.last_ns, stored[stored.length - 1].time_ns);
  assert.match(issue.culprit, / in chargeQuota$/);
  assert.equal(issue.grouping_rule, 'in_app_frames');
  assert.equal(issue.first_release, plan.release);
  assert.equal(issue.last_release, plan.release);
  assert.equal(issue.service, 'sdk-errors');
  const rel = await rows(`SELECT version FROM releases WHERE project_id = ${P.sdk.id}`);
  assert.deepEqual(rel.map((x) => x.version), [plan.release]);
  const events = await eventsOf(P.sdk);
  assert.deepEqual(events.map((e) => `${e.trace_id}/${e.span_id}`).sort(),
    report.spans.map((s) => `${s.traceId}/${s.spanId}`).sort());
  for (const e of events) {
    assert.equal(e.release, plan.release);
    assert.equal(e.environment, 'e2e');
    assert.equal(e.route, '/quota');
    assert.match(e.user_id, /^user-\d$/);
  }
  await eventually(async () => assert.equal(Number((await issuesOf(P.sdk))[0].user_count), plan.count),
    { what: 'SDK users' });
});

// ---------------------------------------------------------- transitions --

const S = {}; // fn -> issue id in the states project
async function stateIssue(fn) {
  const list = await rows(`SELECT * FROM issues WHERE project_id = ${P.states.id} AND culprit LIKE ${q(`% in ${fn}`)}`);
  assert.equal(list.length, 1, `issues of ${fn}: ${JSON.stringify(list)}`);
  return list[0];
}
async function sendState(fn, release, count = 1, timeNs) {
  const before = S[fn] ? Number((await stateIssue(fn)).event_count) : 0;
  await send(P.states, 'traces', errorSpans(Array.from({ length: count }, (_, i) => ({ type: 'StateError', fn,
    message: `failed ${fn} #${i}`, release, timeNs }))));
  const issue = await eventually(async () => {
    const i = await stateIssue(fn);
    assert.equal(Number(i.event_count), before + count);
    return i;
  }, { what: `${fn} has ${before + count} events` });
  S[fn] = issue.id;
  return issue;
}

stackTest(stack, 'resolved with no release recorded: any new event regresses it, and the live stream says so', async () => {
  await sendState('plainResolve', '1.0.0');
  await stack.psql(`UPDATE issues SET status = 'resolved', substatus = 'resolved', resolved_at = now() WHERE id = ${S.plainResolve}`);
  const i = await sendState('plainResolve', '1.0.0');
  assert.equal(i.status, 'unresolved');
  assert.equal(i.substatus, 'regressed');
  assert.equal(i.resolved_at, null);
  await eventually(async () => {
    const live = await liveEntries(P.states);
    assert.ok(live.some((x) => x.type === 'issue.regressed' && x.issue === String(S.plainResolve)), JSON.stringify(live));
  }, { what: 'issue.regressed on the live stream' });
});

stackTest(stack, 'resolved in release 1.0.0: an event of 1.0.0 keeps it resolved, one of 1.1.0 regresses it', async () => {
  await sendState('nextRelease', '1.0.0');
  await stack.psql(`UPDATE issues SET status = 'resolved', substatus = 'resolved_in_next_release',
    resolved_in_release = '1.0.0', resolved_at = now() WHERE id = ${S.nextRelease}`);
  let i = await sendState('nextRelease', '1.0.0');
  assert.equal(i.status, 'resolved');
  assert.equal(i.substatus, 'resolved_in_next_release');
  i = await sendState('nextRelease', null);
  assert.equal(i.status, 'resolved', 'an event without a release cannot tell');
  i = await sendState('nextRelease', '1.1.0');
  assert.equal(i.status, 'unresolved');
  assert.equal(i.substatus, 'regressed');
  assert.equal(i.first_release, '1.0.0');
  assert.equal(i.last_release, '1.1.0');
  const rel = await rows(`SELECT version, first_seen_ns::text FROM releases WHERE project_id = ${P.states.id} ORDER BY first_seen_ns`);
  assert.deepEqual(rel.map((r) => r.version), ['1.0.0', '1.1.0']);
});

stackTest(stack, 'ignored until a count, until a time, forever: the first two come back as escalating', async () => {
  await sendState('countIgnore', '1.0.0');
  await stack.psql(`UPDATE issues SET status = 'ignored', substatus = 'ignored_until_count', ignore_until_count = 3
    WHERE id = ${S.countIgnore}`);
  let i = await sendState('countIgnore', '1.0.0');
  assert.equal(i.status, 'ignored', 'event 2 of 3');
  i = await sendState('countIgnore', '1.0.0');
  assert.equal(i.status, 'unresolved');
  assert.equal(i.substatus, 'escalating');
  assert.equal(i.ignore_until_count, null);

  const until = BigInt(Date.now()) * 1000000n + 60_000_000_000n;
  await sendState('timeIgnore', '1.0.0');
  await stack.psql(`UPDATE issues SET status = 'ignored', substatus = 'ignored_until_time', ignore_until_ns = ${until}
    WHERE id = ${S.timeIgnore}`);
  i = await sendState('timeIgnore', '1.0.0', 1, until - 1_000_000_000n);
  assert.equal(i.status, 'ignored', 'an event before the time');
  i = await sendState('timeIgnore', '1.0.0', 1, until + 1_000_000_000n);
  assert.equal(i.status, 'unresolved');
  assert.equal(i.substatus, 'escalating');

  await sendState('foreverIgnore', '1.0.0');
  await stack.psql(`UPDATE issues SET status = 'ignored', substatus = 'ignored_forever' WHERE id = ${S.foreverIgnore}`);
  i = await sendState('foreverIgnore', '1.0.0', 5);
  assert.equal(i.status, 'ignored');
  assert.equal(i.substatus, 'ignored_forever');
});

// ------------------------------------------------- users, fingerprint --

stackTest(stack, 'affected users: distinct enduser.id values counted through the HyperLogLog', async () => {
  const users = ['ana', 'bo', 'cy', 'ana', 'dee', 'bo', null];
  await send(P.users, 'traces', errorSpans(users.map((user, i) => ({ type: 'UserError', fn: 'loadProfile',
    message: `profile ${i} missing`, user }))));
  const want = new Set(users.filter(Boolean)).size;
  const issue = await eventually(async () => {
    const [i] = await issuesOf(P.users);
    assert.equal(Number(i.event_count), users.length);
    assert.equal(Number(i.user_count), want);
    return i;
  }, { what: 'user_count' });
  const prefix = stack.config().redis_prefix || 'sx';
  assert.equal(Number(await stack.redis('PFCOUNT', `${prefix}:{p${P.users.id}}:issue:${issue.id}:users`)), want);
});

stackTest(stack, 'an explicit sextant.fingerprint groups different errors into one issue', async () => {
  await send(P.fp, 'traces', errorSpans([
    { type: 'TimeoutError', fn: 'callA', message: 'a timed out', fingerprint: 'upstream-timeouts' },
    { type: 'SocketError', fn: 'callB', message: 'b reset', fingerprint: 'upstream-timeouts' },
    { type: 'SocketError', fn: 'callB', message: 'b reset again' },
  ]));
  const issues = await eventually(async () => {
    const list = await issuesOf(P.fp);
    assert.equal(list.reduce((n, i) => n + Number(i.event_count), 0), 3);
    return list;
  }, { what: 'fingerprint issues' });
  assert.deepEqual(issues.map((i) => `${i.grouping_rule}:${i.event_count}`).sort(), ['fingerprint:2', 'in_app_frames:1']);
});

// ------------------------------------------------------ exactly once --

stackTest(stack, 'a batch sent again is a redelivery: its events and counts are applied once', async () => {
  const body = JSON.stringify(errorSpans([1, 2, 3].map((n) => ({ type: 'DupError', fn: 'dup', message: `dup ${n}`,
    user: `u${n}` }))));
  for (let k = 0; k < 3; k++) assert.equal((await post(P.redeliver, 'traces', body)).status, 200);
  const marker = errorSpans([{ type: 'MarkerError', fn: 'marker', message: 'after the repeats' }]);
  await send(P.redeliver, 'traces', marker);
  await eventually(async () => assert.equal((await issuesOf(P.redeliver)).length, 2), { what: 'marker issue' });
  const issues = await issuesOf(P.redeliver);
  const dup = issues.find((i) => i.type === 'DupError');
  assert.equal(Number(dup.event_count), 3);
  assert.equal((await eventsOf(P.redeliver, `AND issue_id = ${dup.id}`)).length, 3);
  const hourly = await rows(`SELECT sum(events)::int AS n FROM issue_counts_hourly WHERE issue_id = ${dup.id}`);
  assert.equal(hourly[0].n, 3);
  await eventually(async () => assert.equal(Number((await issuesOf(P.redeliver)).find((i) => i.id === dup.id).user_count), 3),
    { what: 'users of the repeated batch' });
});

stackTest(stack, 'persist killed (SIGKILL) mid-stream and restarted: every error event counted exactly once', { timeout: 240_000 }, async () => {
  const BATCHES = 24;
  const PER = 5;
  const sends = [];
  for (let b = 0; b < BATCHES; b++) {
    if (b === BATCHES / 2) {
      await Promise.all(sends.splice(0));
      await stack.control('stop', 'persist', '--kill');
    }
    sends.push(send(P.kill, 'traces', errorSpans(Array.from({ length: PER }, (_, i) => ({ type: 'CrashError',
      fn: b % 2 ? 'crashOdd' : 'crashEven', message: `crash ${b}.${i}`, user: `k${(b * PER + i) % 7}` })))));
  }
  await Promise.all(sends);
  await stack.control('start', 'persist');
  const issues = await eventually(async () => {
    const list = await issuesOf(P.kill);
    assert.equal(list.length, 2);
    assert.equal(list.reduce((n, i) => n + Number(i.event_count), 0), BATCHES * PER);
    return list;
  }, { timeoutMs: 120_000, what: 'all crash events' });
  for (const i of issues) assert.equal(Number(i.event_count), BATCHES / 2 * PER);
  assert.equal((await eventsOf(P.kill)).length, BATCHES * PER);
  const hourly = await rows(`SELECT sum(events)::int AS n FROM issue_counts_hourly WHERE project_id = ${P.kill.id}`);
  assert.equal(hourly[0].n, BATCHES * PER);
  assert.deepEqual(issues.map((i) => i.short_seq).sort(), [1, 2]);
  await eventually(async () => {
    for (const i of await issuesOf(P.kill)) assert.equal(Number(i.user_count), 7);
  }, { what: 'users after the kill' });
});

// ----------------------------------------------------------- isolation --

stackTest(stack, "one project's errors never land in another project's rows", async () => {
  assert.deepEqual(await issuesOf(P.other), []);
  const cross = await rows(`SELECT e.project_id, i.project_id AS issue_project FROM error_events e
    JOIN issues i ON i.id = e.issue_id WHERE e.project_id <> i.project_id`);
  assert.deepEqual(cross, []);
  const fpCross = await rows(`SELECT f.project_id FROM issue_fingerprints f JOIN issues i ON i.id = f.issue_id
    WHERE f.project_id <> i.project_id`);
  assert.deepEqual(fpCross, []);
  const hCross = await rows(`SELECT h.project_id FROM issue_counts_hourly h JOIN issues i ON i.id = h.issue_id
    WHERE h.project_id <> i.project_id`);
  assert.deepEqual(hCross, []);
  // The same fixture in three projects: three pairs of issues, each numbered from 1.
  const seqs = await rows(`SELECT project_id, array_agg(short_seq ORDER BY short_seq) AS s FROM issues
    WHERE project_id IN (${ENCODINGS.map((e) => P[e.name].id).join(',')}) GROUP BY 1`);
  assert.equal(seqs.length, ENCODINGS.length);
  for (const s of seqs) assert.deepEqual(s.s, [1, 2]);
  const prefix = stack.config().redis_prefix || 'sx';
  assert.equal(await stack.redis('XLEN', `${prefix}:{p${P.other.id}}:live`), '0');
});

// ------------------------------------------------------- through the API --

/** An API call through nginx with project p's token; JSON body when given. */
async function apiCall(p, method, route, body) {
  const u = new URL(`projects/${p.slug}/${route}`, stack.apiBase);
  const headers = { Accept: 'application/json', Authorization: `Bearer ${p.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await stack.request(method, u, { headers, body: body === undefined ? undefined : JSON.stringify(body) });
  assert.equal(r.status, 200, `${method} ${route}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json();
}

stackTest(stack, 'through nginx and the API: the fixture gives two issues of 5 and 2 events, with frames, trace and tags', async () => {
  const exc = fixtureExceptions();
  const groups = SUMMARY.expected.issue_groups;
  const list = await eventually(async () => {
    const l = await apiCall(P.proto, 'GET', 'errors?sort=events');
    assert.equal(l.issues.length, groups.length, JSON.stringify(l.issues.map((i) => i.title)));
    return l.issues;
  }, { what: 'two issues listed' });
  assert.deepEqual(list.map((i) => [i.type, i.events]),
    [...groups].sort((a, b) => b.count - a.count).map((g) => [g.type, g.count]));
  for (const g of groups) {
    const issue = list.find((i) => i.type === g.type);
    const mine = exc.filter((e) => e.type === g.type);
    const latest = mine.reduce((a, b) => (b.time > a.time ? b : a));
    assert.equal(issue.title, `${g.type}: ${latest.message}`);
    assert.match(issue.culprit, new RegExp(`in ${g.function}$`));
    assert.equal(issue.shortId, `${P.proto.slug.toUpperCase()}-${issue.shortId.split('-').pop()}`);
    assert.equal(BigInt(issue.lastSeenUnixNano), latest.time);
    // The detail by shortId: the latest event, its frames and trace, tags and counts.
    const d = await apiCall(P.proto, 'GET', `errors/${issue.shortId}`);
    assert.equal(d.id, issue.id);
    assert.equal(d.traceId, latest.traceId);
    assert.equal(d.latestEvent.spanId, latest.spanId);
    assert.equal(d.latestEvent.message, latest.message);
    const frames = d.latestEvent.frames;
    assert.equal(frames[frames.length - 1].function, g.function);
    assert.equal(frames[frames.length - 1].inApp, true);
    assert.ok(frames.some((f) => f.inApp === false && /node_modules/.test(f.file ?? '')), JSON.stringify(frames));
    const service = d.tags.find((t) => t.key === 'service');
    assert.deepEqual(service.values, [{ value: 'checkout-api', count: g.count }]);
    assert.equal(d.daily.length, 30);
    assert.equal(d.hourly.length, 24);
    const events = await apiCall(P.proto, 'GET', `errors/${issue.id}/events?limit=100`);
    assert.deepEqual(events.events.map((e) => e.spanId).sort(), mine.map((e) => e.spanId).sort());
  }
});

stackTest(stack, 'triage through the API, then new events: resolve regresses, resolve in next release waits for a newer release, ignore until count escalates', async () => {
  const T = P.triage;
  const sendOne = async (fn, release) => {
    await send(T, 'traces', errorSpans([{ type: 'TriageError', fn, message: `failed in ${fn}`, release }]));
  };
  const byFn = async (fn, events) => eventually(async () => {
    const l = await apiCall(T, 'GET', `errors?q=${encodeURIComponent(`failed in ${fn}`)}`);
    assert.equal(l.issues.length, 1, JSON.stringify(l.issues));
    assert.equal(l.issues[0].events, events);
    return l.issues[0];
  }, { what: `${fn}: ${events} events` });

  // Plain resolve: the next event, of any release, regresses it.
  await sendOne('plain', '2.0.0');
  let i = await byFn('plain', 1);
  let patched = await apiCall(T, 'PATCH', `errors/${i.id}`, { status: 'resolved' });
  assert.equal(patched.status, 'resolved');
  await sendOne('plain', '2.0.0');
  i = await byFn('plain', 2);
  assert.deepEqual([i.status, i.substatus], ['unresolved', 'regressed']);

  // Resolve in next release: an event of the same release keeps it resolved, a newer one regresses it.
  await sendOne('next', '2.0.0');
  i = await byFn('next', 1);
  patched = await apiCall(T, 'PATCH', `errors/${i.id}`, { status: 'resolved', inNextRelease: true });
  assert.deepEqual([patched.substatus, patched.resolvedInRelease], ['resolved_in_next_release', '2.0.0']);
  await sendOne('next', '2.0.0');
  i = await byFn('next', 2);
  assert.equal(i.status, 'resolved');
  await sendOne('next', '2.1.0');
  i = await byFn('next', 3);
  assert.deepEqual([i.status, i.substatus], ['unresolved', 'regressed']);

  // Ignore until 2 more events: the first stays ignored, the second brings it back.
  await sendOne('noisy', '2.0.0');
  i = await byFn('noisy', 1);
  patched = await apiCall(T, 'PATCH', `errors/${i.id}`, { status: 'ignored', ignoreCount: 2 });
  assert.equal(patched.substatus, 'ignored_until_count');
  await sendOne('noisy', '2.0.0');
  i = await byFn('noisy', 2);
  assert.equal(i.status, 'ignored');
  await sendOne('noisy', '2.0.0');
  i = await byFn('noisy', 3);
  assert.deepEqual([i.status, i.substatus], ['unresolved', 'escalating']);

  // Merge, then a new event of the merged issue's fingerprint lands in the target.
  const plain = await byFn('plain', 2);
  const merged = await apiCall(T, 'POST', 'errors/merge', { target: i.id, ids: [i.id, plain.id] });
  assert.deepEqual(merged.merged, [plain.id]);
  assert.equal(merged.issue.events, 5);
  await sendOne('plain', '2.0.0');
  await eventually(async () => {
    const d = await apiCall(T, 'GET', `errors/${i.id}`);
    assert.equal(d.events, 6);
  }, { what: 'the merged fingerprint counts into the target' });
  // The other projects' tokens see none of it.
  const r = await stack.request('GET', new URL(`projects/${T.slug}/errors/${i.id}`, stack.apiBase),
    { headers: { Authorization: `Bearer ${P.proto.token}` } });
  assert.equal(r.status, 404);
});

stackTest(stack, "a project's in-app rules (sextantctl project errors) decide which frames are in-app", async () => {
  await send(P.inapp, 'traces', errorSpans([{ type: 'RuleError', fn: 'checkout', message: 'rules' }]));
  const [ev] = await eventually(async () => {
    const e = await eventsOf(P.inapp);
    assert.equal(e.length, 1);
    return e;
  }, { what: 'the event stored' });
  const byFile = Object.fromEntries(ev.frames.map((f) => [f.file.split('/').slice(-2).join('/'), f.inApp]));
  // the default rules: src/ in-app, node_modules not; the project's: express in, server.js out
  assert.deepEqual(byFile, { 'router/layer.js': true, 'src/server.js': false, 'src/checkout.js': true });
});

stackTest(stack, 'users of merged issues are counted once in the target (a union of their HyperLogLogs)', async () => {
  const T = P.triage;
  const sendUsers = (fn, users) => send(T, 'traces', errorSpans(users.map((user) => ({ type: 'UserError', fn,
    message: `users of ${fn}`, user }))));
  const issueOf = (fn, events) => eventually(async () => {
    const l = await apiCall(T, 'GET', `errors?q=${encodeURIComponent(`users of ${fn}`)}`);
    assert.equal(l.issues.length, 1);
    assert.equal(l.issues[0].events, events);
    return l.issues[0];
  }, { what: `${fn}: ${events} events` });
  await sendUsers('ua', ['ann', 'bob']);
  await sendUsers('ub', ['bob', 'cid', 'dee']);
  const a = await issueOf('ua', 2);
  const b = await issueOf('ub', 3);
  await eventually(async () => {
    assert.equal((await apiCall(T, 'GET', `errors/${a.id}`)).users, 2);
    assert.equal((await apiCall(T, 'GET', `errors/${b.id}`)).users, 3);
  }, { what: 'users flushed' });
  await apiCall(T, 'POST', 'errors/merge', { target: a.id, ids: [a.id, b.id] });
  await sendUsers('ua', ['ann']);
  // ann, bob, cid, dee: the union, not 2 + 3 and not the larger of the two
  await eventually(async () => assert.equal((await apiCall(T, 'GET', `errors/${a.id}`)).users, 4),
    { what: 'the target counts the union of users' });
});
