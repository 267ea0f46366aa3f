// enforce.test.mjs: per-project settings enforced at ingest (sextantctl project set): suspension
// (403), the token-bucket rate limit (429 + short Retry-After, and the OTel JS SDK retrying
// through it without losing anything), the daily quota (429 with Retry-After until 00:00 UTC),
// trace sampling by trace id (whole traces, every error and slow span kept), attribute rules and
// the built-in secret redaction, the usage counters, and retention (sextantctl maintain).
// Expected values are computed from what each test sent.

import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { useStack, stackTest, eventually, run, sleep } from './lib/stack.mjs';
import { encodeTraceRequest, randomTraceId, randomSpanId } from './lib/otlp.mjs';
import { PROTO, JSONCT, assertAccepted, assertRpcStatus } from './lib/expect.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EMITTER = path.join(HERE, 'sdk-emitter.mjs');
// Settings reach ingest threads within settings_cache_ms: short here so tests wait little.
const CACHE_MS = 100;
const stack = useStack('enforce', { extraConf: `settings_cache_ms ${CACHE_MS}` });

const NOW_MS = Date.now();
const ns = (ms) => BigInt(Math.round(ms)) * 1_000_000n;

async function set(...args) {
  const out = await stack.ctl('project', 'set', stack.project, ...args);
  await sleep(CACHE_MS + 50);
  return out;
}

async function usage() {
  const u = await stack.ctl('usage', '--project', stack.project);
  return u.days[0].counters;
}

/** A request of `traces` traces with `spans` spans each (one resource); returns {body, ids}. */
function traceBatch(traces, spans, { attributes, tweak } = {}) {
  const all = [];
  const ids = [];
  for (let t = 0; t < traces; t++) {
    const traceId = randomTraceId();
    ids.push(traceId);
    for (let s = 0; s < spans; s++) {
      const span = {
        traceId, spanId: randomSpanId(), name: `op-${s}`, kind: 1,
        start: ns(NOW_MS - 60_000 + t), end: ns(NOW_MS - 60_000 + t + 5),
        attributes: { 'e2e.trace': t, 'e2e.span': s, ...(attributes ?? {}) },
      };
      all.push(tweak ? tweak(span, t, s) : span);
    }
  }
  return { body: encodeTraceRequest([{ resource: { 'service.name': 'enforce-e2e' }, spans: all }]), ids, spans: all };
}

const hexLit = (hex) => `'\\x${hex}'::bytea`;

async function spanCounts(ids) {
  if (!ids.length) return new Map();
  const rows = await stack.psql(
    `SELECT encode(trace_id, 'hex'), count(*) FROM spans WHERE project_id = ${stack.projectId} ` +
    `AND trace_id IN (${ids.map(hexLit).join(',')}) GROUP BY 1`);
  return new Map(rows ? rows.split('\n').map((l) => { const [id, n] = l.split('|'); return [id, Number(n)]; }) : []);
}

function retryAfter(res) {
  const ra = String(res.headers['retry-after']);
  assert.match(ra, /^\d+$/, `Retry-After must be whole seconds, got ${ra}`);
  return Number(ra);
}

// ------------------------------------------------------------------ suspension --

stackTest(stack, 'a suspended project gets 403 at once (key cache too); active again, it is accepted', async () => {
  const b = traceBatch(1, 2);
  assertAccepted(await stack.ingest(b.body), PROTO); // fills the key cache as active
  await set('--status', 'suspended');
  const r = await stack.ingest(traceBatch(1, 2).body);
  const st = assertRpcStatus(r, 403, PROTO);
  assert.match(st.message, /suspended/);
  await set('--status', 'active');
  assertAccepted(await stack.ingest(traceBatch(1, 2).body), PROTO);
  const audit = await stack.psql(
    `SELECT count(*) FROM audit_log WHERE project_id = ${stack.projectId} AND actor = 'sextantctl' AND action = 'project.settings'`);
  assert.equal(Number(audit), 2);
});

// ------------------------------------------------------------------ rate limit --

stackTest(stack, 'rate limit: a full bucket takes a batch; the next gets 429 with Retry-After from the refill, then passes', async () => {
  const RATE = 10; // capacity 2 s x 10 = 20 spans
  await set('--rate-spans', String(RATE));
  const before = await usage();
  assertAccepted(await stack.ingest(traceBatch(4, 5).body), PROTO); // 20 spans: empties the bucket
  const t0 = Date.now();
  const r = await stack.ingest(traceBatch(2, 5).body); // 10 more
  const st = assertRpcStatus(r, 429, PROTO);
  assert.match(st.message, /rate limit exceeded: this project may send 10 spans per second \(10 in this request\)/);
  const ra = retryAfter(r);
  // 10 spans at 10/s: at most 1 s of refill is missing (less the time since the first batch).
  assert.equal(ra, 1, `Retry-After ${ra}`);
  await sleep(Math.max(0, ra * 1000 - (Date.now() - t0)));
  assertAccepted(await stack.ingest(traceBatch(2, 5).body), PROTO);
  // A batch larger than the whole bucket passes when the bucket is full.
  await sleep(2100);
  assertAccepted(await stack.ingest(traceBatch(6, 5).body), PROTO); // 30 > 20
  const after = await usage();
  assert.equal(after.spans.rate_limited - before.spans.rate_limited, 10);
  assert.equal(after.spans.accepted - before.spans.accepted, 20 + 10 + 30);
});

stackTest(stack, 'the OpenTelemetry JS SDK under a rate limit retries after Retry-After and every span arrives', { timeout: 120_000 }, async () => {
  await set('--rate-spans', '20'); // capacity 40
  try {
    await sleep(2100); // bucket full, so the 40-span drain below is taken whole
    const before = await usage();
    const runTag = `rl-${randomBytes(4).toString('hex')}`;
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: stack.demo.SEXTANT_CA };
    delete env.NODE_TEST_CONTEXT;
    // The emitter itself empties the bucket (40 spans) right before the SDK exports, so no
    // refill can happen while node starts, however slow the machine is.
    const drain = Buffer.from(traceBatch(8, 5).body).toString('base64');
    const plan = { endpoint: stack.demo.SEXTANT_OTLP_ENDPOINT, key: stack.ingestKey, protocol: 'proto',
      compression: 'none', order: 'backend-first', runTag, baseMs: NOW_MS - 120_000, paging: 10, drain };
    const r = await run(process.execPath, [EMITTER, JSON.stringify(plan)], { env, cwd: HERE, timeoutMs: 90_000 });
    const report = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(report.drainStatus, 200, 'the draining batch was accepted');
    assert.deepEqual(report.exports.filter((e) => e.code !== 'SUCCESS'), [], `SDK exports failed: ${JSON.stringify(report.exports)}`);
    const sent = report.exports.reduce((n, e) => n + e.spans, 0);
    assert.equal(sent, 6 + 2 * 10);
    const after = await usage();
    assert.ok(after.spans.rate_limited > before.spans.rate_limited, 'the SDK was rate limited at least once');
    await eventually(async () => {
      const n = await stack.psql(`SELECT count(*) FROM spans WHERE project_id = ${stack.projectId} AND attributes->>'sextant.e2e.run' = '${runTag}'`);
      assert.equal(Number(n), sent);
    }, { what: 'every SDK span stored' });
  } finally {
    await set('--rate-spans', 'none'); // the later tests must not inherit the limit
  }
});

// ------------------------------------------------------------------ daily quota --

stackTest(stack, 'daily quota: a batch that does not fit gets 429 "daily quota exceeded" with Retry-After until 00:00 UTC', async () => {
  const u0 = await usage();
  const quota = u0.spans.accepted + 15;
  await set('--quota-spans', String(quota));
  assertAccepted(await stack.ingest(traceBatch(2, 5).body), PROTO); // 10 of the 15 left
  const r = await stack.ingest(traceBatch(2, 5).body); // 10 more do not fit
  const st = assertRpcStatus(r, 429, PROTO);
  assert.match(st.message, new RegExp(`daily quota exceeded: ${quota - 5} of ${quota} spans accepted today`));
  const toMidnight = 86400 - Math.floor(Date.now() / 1000) % 86400;
  assert.ok(Math.abs(retryAfter(r) - toMidnight) <= 2, `Retry-After ${retryAfter(r)}, ${toMidnight} s to midnight`);
  assertAccepted(await stack.ingest(traceBatch(1, 5).body), PROTO); // exactly fills it
  assertRpcStatus(await stack.ingest(traceBatch(1, 1).body), 429, PROTO);
  const u1 = await usage();
  assert.equal(u1.spans.accepted, quota);
  assert.equal(u1.spans.quota_exceeded - u0.spans.quota_exceeded, 11);
  // JSON requests get the same answer as a JSON google.rpc.Status.
  const j = await stack.ingest(JSON.stringify({ resourceSpans: [] }), { contentType: JSONCT });
  assert.equal(j.status, 200); // nothing to store: no quota needed
  await set('--quota-spans', 'none');
});

// ------------------------------------------------------------------ sampling --

stackTest(stack, 'sampling 0.5: stored traces are whole, the kept set is the trace-id rule, every error and slow span kept', { timeout: 120_000 }, async () => {
  await set('--sampling-rate', '0.5', '--slow-trace-ms', '500');
  const before = await usage();
  const TRACES = 200;
  const SPANS = 4;
  const sent = [];
  // Span 1 of every 5th trace is an error, span 2 of every 7th trace is slow (600 ms).
  const tweak = (sp, t, s) => {
    if (s === 1 && t % 5 === 0) sp.status = { code: 2, message: 'boom' };
    if (s === 2 && t % 7 === 0) sp.end = sp.start + ns(600);
    return sp;
  };
  for (let b = 0; b < 4; b++) {
    const batch = traceBatch(TRACES / 4, SPANS, { tweak });
    assertAccepted(await stack.ingest(batch.body), PROTO);
    sent.push(...batch.spans);
  }
  const HALF = 1n << 55n;
  const keptById = (id) => BigInt('0x' + id.slice(18)) < HALF;
  const expected = new Map();
  let sampledOut = 0;
  for (const sp of sent) {
    const keep = keptById(sp.traceId) || sp.status?.code === 2 || (sp.end - sp.start) >= ns(500);
    if (keep) expected.set(sp.traceId, (expected.get(sp.traceId) ?? 0) + 1);
    else sampledOut++;
  }
  const ids = [...new Set(sent.map((s) => s.traceId))];
  const whole = ids.filter(keptById).length;
  assert.ok(whole >= 0.4 * TRACES && whole <= 0.6 * TRACES, `${whole} of ${TRACES} traces kept by id`);
  await eventually(async () => {
    const got = await spanCounts(ids);
    assert.deepEqual(Object.fromEntries([...got].sort()), Object.fromEntries([...expected].sort()));
  }, { what: 'stored spans per trace = the sampling rule', timeoutMs: 30_000 });
  for (const id of ids.filter(keptById)) assert.equal(expected.get(id), SPANS, 'a kept trace is whole');
  const errors = await stack.psql(`SELECT count(*) FROM spans WHERE project_id = ${stack.projectId} AND status_code = 2 ` +
    `AND trace_id IN (${ids.map(hexLit).join(',')})`);
  assert.equal(Number(errors), sent.filter((s) => s.status?.code === 2).length, 'every error span kept');
  const after = await usage();
  assert.equal(after.spans.sampled_out - before.spans.sampled_out, sampledOut);
  assert.equal(after.spans.accepted - before.spans.accepted, sent.length - sampledOut);
  await set('--sampling-rate', '1', '--slow-trace-ms', '0');
});

// ------------------------------------------------------------------ redaction --

stackTest(stack, 'redaction: secrets by default in spans and logs (a card number in a log body); custom drop/truncate/redact rules', async () => {
  const before = await usage();
  const b = traceBatch(1, 1, {
    attributes: {
      'http.request.header.authorization': ['Bearer abcdefghijklmnop'],
      'db.password': 'hunter2',
      'note': 'paid with 4111 1111 1111 1111 at 1700000000000000000',
      'gen_ai.usage.input_tokens': 12,
      'db.statement': 'SELECT * FROM accounts WHERE id = 1',
      'drop.me': 'x',
      'user.comment': 'my ssn=123456 thanks',
    },
  });
  assertAccepted(await stack.ingest(b.body), PROTO);
  const logTime = String(ns(NOW_MS - 30_000));
  const logs = {
    resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'enforce-e2e' } }] },
      scopeLogs: [{ logRecords: [{ timeUnixNano: logTime, severityNumber: 9,
        body: { stringValue: 'charged card 5500-0055-5555-5559 for order 42' },
        attributes: [{ key: 'session.token', value: { stringValue: 'abc' } },
          { key: 'auth', value: { stringValue: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln' } }] }] }] }],
  };
  const lr = await stack.request('POST', '/v1/logs', { headers: { 'Content-Type': JSONCT, 'X-API-Key': stack.ingestKey }, body: JSON.stringify(logs) });
  assert.equal(lr.status, 200, lr.text);
  const id = b.ids[0];
  await eventually(async () => {
    const a = JSON.parse(await stack.psql(`SELECT attributes::text FROM spans WHERE project_id = ${stack.projectId} AND trace_id = ${hexLit(id)}`));
    assert.equal(a['http.request.header.authorization'], '[REDACTED]');
    assert.equal(a['db.password'], '[REDACTED]');
    assert.equal(a.note, 'paid with [REDACTED] at 1700000000000000000');
    assert.equal(a['gen_ai.usage.input_tokens'], 12);
    assert.equal(a['db.statement'], 'SELECT * FROM accounts WHERE id = 1');
  }, { what: 'span with secrets stored' });
  await eventually(async () => {
    const row = await stack.psql(`SELECT body || '|' || attributes::text FROM logs WHERE project_id = ${stack.projectId} AND time_ns = ${logTime}`);
    assert.ok(row, 'log stored');
    const [body, attrs] = [row.slice(0, row.indexOf('|')), JSON.parse(row.slice(row.indexOf('|') + 1))];
    assert.equal(body, 'charged card [REDACTED] for order 42');
    assert.equal(attrs['session.token'], '[REDACTED]');
    assert.equal(attrs.auth, 'Bearer [REDACTED]');
  }, { what: 'log with secrets stored' });
  const mid = await usage();
  assert.equal(mid.spans.redacted - before.spans.redacted, 3); // authorization, password, note
  assert.equal(mid.logs.redacted - before.logs.redacted, 3); // token, auth, body

  const rules = [
    { action: 'drop', key: 'drop.*' },
    { action: 'truncate', key: 'db.statement', maxLength: 8 },
    { action: 'redact', pattern: 'ssn=[0-9]+', ignoreCase: true },
  ];
  const bad = await stack.ctlRaw('project', 'set', stack.project, '--attribute-rules', '[{"action":"explode"}]');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown action/);
  const shown = await set('--attribute-rules', JSON.stringify(rules), '--redact-secrets', 'off');
  assert.deepEqual(shown.attributeRules, rules);
  assert.equal(shown.redactSecrets, false);
  const c = traceBatch(1, 1, { attributes: { 'db.statement': 'SELECT * FROM accounts', 'drop.me': 'x', 'user.comment': 'my SSN=123456 thanks', 'db.password': 'shown' } });
  assertAccepted(await stack.ingest(c.body), PROTO);
  await eventually(async () => {
    const a = JSON.parse(await stack.psql(`SELECT attributes::text FROM spans WHERE project_id = ${stack.projectId} AND trace_id = ${hexLit(c.ids[0])}`));
    assert.equal(a['db.statement'], 'SELECT *');
    assert.equal(a['drop.me'], undefined);
    assert.equal(a['user.comment'], 'my [REDACTED] thanks');
    assert.equal(a['db.password'], 'shown'); // built-in redaction off
  }, { what: 'span under custom rules stored' });
  await set('--attribute-rules', '[]', '--redact-secrets', 'on');
});

// ------------------------------------------------------------------ counters --

stackTest(stack, 'sextantctl status shows today\'s counters per project; invalid spans count as dropped', async () => {
  const before = await usage();
  const b = traceBatch(1, 3, { tweak: (sp, t, s) => (s === 0 ? { ...sp, spanId: '0000000000000000' } : sp) });
  const r = await stack.ingest(b.body);
  assert.equal(r.status, 200);
  const after = await usage();
  assert.equal(after.spans.dropped - before.spans.dropped, 1);
  assert.equal(after.spans.accepted - before.spans.accepted, 2);
  const status = await stack.ctl('status');
  const demo = status.projects.find((p) => p.slug === stack.project);
  assert.ok(demo, JSON.stringify(status.projects));
  assert.deepEqual(demo.today, after);
});

// ------------------------------------------------------------------ retention --

stackTest(stack, 'retention: maintain removes exactly the expired rows and partitions; a project with a longer retention keeps its rows', async () => {
  const short = await stack.ctl('project', 'create', `ret-short-${randomBytes(3).toString('hex')}`);
  const long = await stack.ctl('project', 'create', `ret-long-${randomBytes(3).toString('hex')}`);
  await stack.ctl('project', 'set', short.slug, '--retention-traces', '3', '--retention-logs', '3');
  await stack.ctl('project', 'set', long.slug, '--retention-traces', '10');
  const DAY = 86_400_000;
  const at = (days) => ns(NOW_MS - days * DAY);
  // Longest traces retention of all projects: 14 (the demo project's default).
  const rows = [
    [short.id, 5, 'expired'], [short.id, 1, 'kept'],
    [long.id, 5, 'kept'], [long.id, 11, 'expired'],
    [long.id, 20, 'partition'], [stack.projectId, 20, 'partition'],
  ];
  const tid = () => randomBytes(16).toString('hex');
  const sql = rows.map(([p, d]) =>
    `SELECT sextant_ensure_span_partition(${at(d)}); ` +
    `INSERT INTO spans (project_id, trace_id, span_id, start_time_ns, end_time_ns, name, service, attributes, resource) ` +
    `VALUES (${p}, ${hexLit(tid())}, ${hexLit(randomBytes(8).toString('hex'))}, ${at(d)}, ${at(d) + 1000n}, 'old', 'ret', '{}', '{}');`).join(' ');
  await stack.psql(sql);
  await stack.psql(`SELECT sextant_ensure_log_partition(${at(5)}); SELECT sextant_ensure_log_partition(${at(1)}); INSERT INTO logs (project_id, time_ns, body, service) VALUES ` +
    `(${short.id}, ${at(5)}, 'old', 'ret'), (${long.id}, ${at(5)}, 'old', 'ret'), (${short.id}, ${at(1)}, 'new', 'ret')`);
  const partDay = new Date(NOW_MS - 20 * DAY).toISOString().slice(0, 10).replaceAll('-', '');
  const r = await run(path.join(stack.binDir, 'sextantctl'), ['--config', stack.demo.SEXTANT_CONFIG, 'maintain'], { env: stack.env });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(out.tables.spans.droppedPartitions.includes(`spans_${partDay}`), JSON.stringify(out.tables.spans));
  assert.equal(out.tables.spans.deletedRows, 2); // short's 5-day row, long's 11-day row
  assert.equal(out.tables.logs.deletedRows, 1); // short's 5-day log
  const left = await stack.psql(`SELECT project_id, (${ns(NOW_MS)} - start_time_ns) / ${ns(DAY)} FROM spans ` +
    `WHERE project_id IN (${short.id}, ${long.id}) ORDER BY 1, 2`);
  assert.equal(left, `${short.id}|1\n${long.id}|5`);
  const logsLeft = await stack.psql(`SELECT project_id, body FROM logs WHERE project_id IN (${short.id}, ${long.id}) ORDER BY 1, 2`);
  assert.equal(logsLeft, `${short.id}|new\n${long.id}|old`);
  assert.equal(typeof out.storageBytes[stack.project], 'number');
  // Idempotent: a second run removes nothing more.
  const again = await stack.ctl('maintain');
  assert.equal(again.tables.spans.deletedRows, 0);
  assert.deepEqual(again.tables.spans.droppedPartitions, []);
});

// ------------------------------------------------------------------ storage quota --

stackTest(stack, 'storage quota: over the estimate maintain wrote, ingest answers 429 "storage quota exceeded"', async () => {
  await stack.ctl('maintain');
  await set('--storage-quota', '1');
  const r = await stack.ingest(traceBatch(1, 1).body);
  const st = assertRpcStatus(r, 429, PROTO);
  assert.match(st.message, /storage quota exceeded/);
  assert.equal(retryAfter(r), 3600);
  await set('--storage-quota', 'none');
  assertAccepted(await stack.ingest(traceBatch(1, 1).body), PROTO);
});

