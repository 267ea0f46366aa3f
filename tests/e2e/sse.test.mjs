// sse.test.mjs: live events (GET /api/v1/projects/{p}/stream, sextant-sse) on the real stack.
// The real OpenTelemetry SDK sends spans (sdk-emitter.mjs), log records (sdk-logs with the
// OTLP protobuf serializer) and exceptions (sdk-errors-emitter.mjs); the stream gets them
// live after sextant-persist committed them. Also: refusals before the stream starts
// (401/404/400/405), topics and filters, token and cookie auth, project isolation, resume
// with Last-Event-ID (nothing missed, nothing repeated), the gap event, heartbeats, and
// threads freed by clients that leave and 503 past the thread budget (sse_threads is small here).

import assert from 'node:assert/strict';
import https from 'node:https';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { useStack, stackTest, eventually, apiError, run, sleep } from './lib/stack.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const THREADS = 10;
const stack = useStack('sse', { extraConf: `sse_heartbeat_s 1\nsse_threads ${THREADS}\nsse_reauth_s 2` });

const B = {};
const U = {};
const open = new Set(); // streams to close when a test fails half-way

/** Parses SSE text into frames: {id, event, data (parsed JSON), retry, comment}. */
function parseFrames(text) {
  const frames = [];
  for (const block of text.split('\n\n')) {
    if (!block) continue;
    const f = {};
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) f.comment = line.slice(1).trim();
      else if (line.startsWith('id: ')) f.id = line.slice(4);
      else if (line.startsWith('event: ')) f.event = line.slice(7);
      else if (line.startsWith('data: ')) f.data = JSON.parse(line.slice(6));
      else if (line.startsWith('retry: ')) f.retry = Number(line.slice(7));
      else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`);
    }
    frames.push(f);
  }
  return frames;
}

/**
 * Opens GET .../projects/{p}/stream. Resolves once the status is known: for 200 a live
 * stream object ({frames, events(), waitFor, close}), else {status, text, json()}.
 */
function stream(p, { token = stack.token, cookie, query = {}, headers = {}, method = 'GET' } = {}) {
  const u = new URL(`projects/${p}/stream`, stack.apiBase);
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
  const h = { Accept: 'text/event-stream', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (cookie) h.Cookie = `sx_session=${cookie}`;
  return new Promise((resolve, reject) => {
    const req = https.request(u, { method, headers: h, agent: stack.agent }, (res) => {
      let buf = '';
      if (res.statusCode !== 200) {
        res.on('data', (c) => { buf += c; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: buf, json: () => JSON.parse(buf) }));
        return;
      }
      const s = {
        status: 200,
        headers: res.headers,
        frames: [],
        ended: false,
        events: () => s.frames.filter((f) => f.event),
        async waitFor(pred, what, timeoutMs = 30_000) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const hit = s.frames.find(pred);
            if (hit) return hit;
            if (s.ended) throw new Error(`stream ended while waiting for ${what}`);
            if (Date.now() > deadline) {
              throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(s.frames).slice(0, 1500)}`);
            }
            await sleep(50);
          }
        },
        close() {
          open.delete(s);
          req.destroy();
        },
      };
      open.add(s);
      res.setEncoding('utf8');
      res.on('data', (c) => {
        buf += c;
        const cut = buf.lastIndexOf('\n\n');
        if (cut < 0) return;
        s.frames.push(...parseFrames(buf.slice(0, cut + 2)));
        buf = buf.slice(cut + 2);
      });
      res.on('end', () => { s.ended = true; });
      res.on('error', () => { s.ended = true; });
      resolve(s);
    });
    req.setTimeout(60_000, () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', (e) => reject(e));
    req.end();
  });
}

/** A stream that must open: 200, text/event-stream, retry first (a 503 is retried). */
async function live(p, opts) {
  // A stream closed by an earlier step holds its thread until its next heartbeat (1 s):
  // a 503 (budget full) is retried for a while.
  let s = await stream(p, opts);
  for (let i = 0; i < 20 && s.status === 503; i++) {
    await sleep(500);
    s = await stream(p, opts);
  }
  assert.equal(s.status, 200, s.text);
  assert.match(s.headers['content-type'], /^text\/event-stream/);
  await s.waitFor((f) => f.retry !== undefined, 'the retry line');
  assert.equal(s.frames[0].retry, 2000);
  return s;
}

/**
 * Producers publish spans/logs/metrics only while a stream watches the project; they
 * cache that answer for 2 s. Waits for the watch key, then for any cached "nobody
 * watches" to expire.
 */
async function watched(projectId) {
  await eventually(async () => {
    assert.equal(await stack.redis('EXISTS', `sx:{p${projectId}}:live:watch`), '1');
  }, { what: `the live:watch key of project ${projectId}` });
  await sleep(2500);
}

async function emitSpans(key = stack.ingestKey) {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: stack.demo.SEXTANT_CA };
  delete env.NODE_TEST_CONTEXT;
  const plan = { endpoint: stack.demo.SEXTANT_OTLP_ENDPOINT, key, protocol: 'proto', runTag: `sse-${randomBytes(4).toString('hex')}`,
    baseMs: Date.now() - 5000, paging: 0 };
  const r = await run(process.execPath, [path.join(HERE, 'sdk-emitter.mjs'), JSON.stringify(plan)], { env, cwd: HERE, timeoutMs: 90_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** Emits log records with the OpenTelemetry logs SDK; posts them as OTLP protobuf. */
async function emitLogs(records, { service = 'checkout', key = stack.ingestKey } = {}) {
  const statuses = [];
  const exporter = {
    export(logs, done) {
      const body = Buffer.from(ProtobufLogsSerializer.serializeRequest(logs));
      const u = new URL(stack.otlpTracesUrl.href.replace(/\/v1\/traces$/, '/v1/logs'));
      stack.request('POST', u, { headers: { 'Content-Type': 'application/x-protobuf', 'X-API-Key': key }, body })
        .then((r) => { statuses.push(r.status); done({ code: r.status === 200 ? 0 : 1 }); })
        .catch((e) => { statuses.push(String(e)); done({ code: 1, error: e }); });
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger('sse-e2e');
  for (const r of records) logger.emit(r);
  await provider.forceFlush();
  await provider.shutdown();
  await eventually(() => assert.equal(statuses.length, records.length), { what: 'log exports' });
  assert.deepEqual(statuses, records.map(() => 200));
}

/** Closes the streams an earlier (failed) test left open: they would hold threads. */
function closeLeftovers() {
  for (const s of open) s.close();
}

const marker = () => `marker-${randomBytes(4).toString('hex')}`;

stackTest(stack, 'setup: project B with its token, alice a member of the demo project only', async () => {
  const p = await stack.ctl('project', 'create', `sse-b-${randomBytes(3).toString('hex')}`);
  Object.assign(B, { id: String(p.id), slug: p.slug, ingestKey: p.ingestKey });
  B.token = (await stack.ctl('token', 'create', '--project', B.slug)).token;
  const a = await stack.ctl('user', 'create', 'alice@example.com');
  await stack.ctl('member', 'add', '--project', stack.project, 'alice@example.com', 'viewer');
  const r = await stack.request('POST', new URL('auth/login', stack.apiBase), {
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: a.email, password: a.password }) });
  assert.equal(r.status, 200, r.text);
  const line = (r.headers['set-cookie'] ?? []).find((c) => c.startsWith('sx_session='));
  U.cookie = line.split(';')[0].slice('sx_session='.length);
});

stackTest(stack, 'refused before the stream starts: 401, 404, 400 and 405 as JSON errors', async () => {
  const cases = [
    [{ token: null }, stack.project, 401, 'unauthorized'],
    [{ token: `sxt_${randomBytes(32).toString('base64url')}` }, stack.project, 401, 'unauthorized'],
    [{ token: stack.ingestKey }, stack.project, 401, 'unauthorized'],
    [{ token: null, cookie: 'sxs_not-a-session' }, stack.project, 401, 'unauthorized'],
    [{ token: B.token }, stack.project, 404, 'not_found'],
    [{ token: B.token }, String(stack.projectId), 404, 'not_found'],
    [{}, 'no-such-project', 404, 'not_found'],
    [{}, '987654', 404, 'not_found'],
    [{ token: null, cookie: U.cookie }, B.slug, 404, 'not_found'],
    [{ query: { topics: 'spans,bogus' } }, stack.project, 400, 'bad_request'],
    [{ query: { severity: 'LOUD' } }, stack.project, 400, 'bad_request'],
    [{ query: { severity: '99' } }, stack.project, 400, 'bad_request'],
    [{ query: { lastEventId: 'yesterday' } }, stack.project, 400, 'bad_request'],
    [{ headers: { 'Last-Event-ID': '12-x' } }, stack.project, 400, 'bad_request'],
    [{ query: { q: 'x'.repeat(300) } }, stack.project, 400, 'bad_request'],
    [{ method: 'POST' }, stack.project, 405, 'method_not_allowed'],
  ];
  for (const [opts, p, status, code] of cases) {
    const r = await stream(p, opts);
    assert.equal(r.status, status, `${p} ${JSON.stringify(opts)}: ${r.status} ${r.text}`);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(apiError(r).code, code);
  }
});

stackTest(stack, 'spans from the OpenTelemetry SDK arrive live; topics and isolation hold', async () => {
  closeLeftovers();
  const all = await live(stack.project);
  const logsOnly = await live(stack.project, { query: { topics: 'logs' } });
  const other = await live(B.slug, { token: B.token });
  await watched(stack.projectId);
  await watched(B.id);
  const report = await emitSpans();
  const ids = new Set(report.paging ? report.paging.map((x) => x.traceId) : []);
  const traceId = report.cross?.traceId ?? [...ids][0];
  assert.ok(traceId, JSON.stringify(report).slice(0, 500));
  const ev = await all.waitFor((f) => f.event === 'spans' && f.data.items.some((i) => i.traceId === traceId), 'the SDK spans');
  assert.equal(ev.data.type, 'spans');
  assert.ok(ev.data.total >= ev.data.items.length);
  assert.match(ev.id, /^\d+-\d+$/);
  for (const it of ev.data.items) {
    for (const k of ['traceId', 'spanId', 'parentSpanId', 'name', 'service', 'kind', 'startUnixNano', 'durationMs', 'status']) {
      assert.ok(k in it, `span item lacks ${k}: ${JSON.stringify(it)}`);
    }
    assert.match(it.startUnixNano, /^\d+$/);
    assert.ok(['ok', 'error', 'unset'].includes(it.status));
  }
  // The span is in PostgreSQL by the time it is announced.
  const t = await stack.trace(traceId);
  assert.equal(t.status, 200, t.text.slice(0, 200));

  // B's data reaches B's stream and never A's; A's never reaches B's.
  const mk = marker();
  await emitLogs([{ severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: `B only ${mk}` }], { key: B.ingestKey, service: 'b-svc' });
  await other.waitFor((f) => f.event === 'logs' && f.data.items.some((i) => i.body.includes(mk)), 'B\'s log on B\'s stream');
  const mkA = marker();
  await emitLogs([{ severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: `A ${mkA}` }]);
  await logsOnly.waitFor((f) => f.event === 'logs' && f.data.items.some((i) => i.body.includes(mkA)), 'A\'s log');
  assert.ok(!JSON.stringify(other.frames).includes(traceId), 'A\'s spans on B\'s stream');
  assert.ok(!JSON.stringify(other.frames).includes(mkA), 'A\'s log on B\'s stream');
  assert.ok(!JSON.stringify(all.frames).includes(mk) && !JSON.stringify(logsOnly.frames).includes(mk), 'B\'s log on A\'s streams');
  // topics=logs got no spans, though they came first.
  assert.deepEqual(logsOnly.events().map((f) => f.event).filter((e) => e !== 'logs'), []);
  for (const s of [all, logsOnly, other]) s.close();
});

stackTest(stack, 'log filters: severity, q (case-insensitive) and service; cookie auth', async () => {
  closeLeftovers();
  const bySeverity = await live(stack.project, { query: { topics: 'logs', severity: 'ERROR' } });
  const byText = await live(stack.project, { query: { topics: 'logs', q: 'PAYMENT DECLINED' } });
  const byService = await live(stack.project, { query: { topics: 'logs', service: 'billing' } });
  const byCookie = await live(stack.project, { token: null, cookie: U.cookie, query: { topics: 'logs,spans' } });
  await watched(stack.projectId);
  const mk = marker();
  await emitLogs([
    { severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: `user signed in ${mk}` },
    { severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: `Payment declined for order 7 ${mk}` },
    { severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: `payment declined, retrying ${mk}` },
  ]);
  // Once the unfiltered stream has all three, the end marker (which matches every filter)
  // is published after them: a stream that got the end marker has seen all before it.
  await byCookie.waitFor(() => byCookie.events().flatMap((f) => f.data.items ?? []).filter((i) => i.body?.includes(mk)).length === 3,
    'the three logs on the unfiltered stream');
  const end = marker();
  await emitLogs([{ severityNumber: SeverityNumber.FATAL, severityText: 'FATAL', body: `payment declined ${end}` }], { service: 'billing' });
  const bodies = async (s) => {
    await s.waitFor((f) => f.event === 'logs' && f.data.items.some((i) => i.body.includes(end)), `the end marker (${end})`);
    return s.events().filter((f) => f.event === 'logs').flatMap((f) => f.data.items.map((i) => i.body))
      .filter((b) => b.includes(mk) || b.includes(end));
  };
  // The SDK exports each record in its own request: their order is not fixed.
  const sorted = async (st) => (await bodies(st)).sort();
  assert.deepEqual(await sorted(bySeverity), [`Payment declined for order 7 ${mk}`, `payment declined ${end}`].sort());
  assert.deepEqual(await sorted(byText), [`Payment declined for order 7 ${mk}`, `payment declined ${end}`,
    `payment declined, retrying ${mk}`].sort());
  assert.deepEqual(await sorted(byService), [`payment declined ${end}`]);
  assert.deepEqual(await sorted(byCookie), [`user signed in ${mk}`, `Payment declined for order 7 ${mk}`,
    `payment declined, retrying ${mk}`, `payment declined ${end}`].sort());
  const item = byCookie.events().flatMap((f) => f.data.items).find((i) => i.body === `Payment declined for order 7 ${mk}`);
  assert.equal(item.severityNumber, 17);
  assert.equal(item.severityText, 'ERROR');
  assert.equal(item.service, 'checkout');
  assert.match(item.timeUnixNano, /^\d+$/);
  for (const s of [bySeverity, byText, byService, byCookie]) s.close();
});

stackTest(stack, 'Last-Event-ID resumes without loss or repeats; an id older than the stream gets a gap', async () => {
  closeLeftovers();
  const first = await live(stack.project, { query: { topics: 'logs' } });
  await watched(stack.projectId);
  const m1 = marker();
  await emitLogs([{ severityNumber: SeverityNumber.INFO, body: `before ${m1}` }]);
  const seen = await first.waitFor((f) => f.event === 'logs' && f.data.items.some((i) => i.body.includes(m1)), 'the first log');
  // The client leaves; the stream stays watched by a second one while entries come.
  const keeper = await live(stack.project, { query: { topics: 'metrics' } });
  first.close();
  const missed = [marker(), marker(), marker()];
  for (const m of missed) await emitLogs([{ severityNumber: SeverityNumber.WARN, body: `while away ${m}` }]);
  await eventually(async () => {
    const n = Number(await stack.redis('XLEN', `sx:{p${stack.projectId}}:live`));
    const last = await stack.redis('XREVRANGE', `sx:{p${stack.projectId}}:live`, '+', '-', 'COUNT', '1');
    assert.ok(n > 0 && last.includes(missed[2]), 'the last log is in the live stream');
  }, { what: 'the missed logs in the live stream' });
  const back = await live(stack.project, { query: { topics: 'logs' }, headers: { 'Last-Event-ID': seen.id } });
  const last = missed[2];
  await back.waitFor((f) => f.event === 'logs' && f.data.items.some((i) => i.body.includes(last)), 'the replayed logs');
  const got = back.events().flatMap((f) => f.data.items.map((i) => i.body));
  assert.deepEqual(got.filter((b) => b.includes('while away') || b.includes(m1)), missed.map((m) => `while away ${m}`));
  assert.ok(back.events().every((f) => f.event !== 'gap'), 'no gap when resuming from an entry still held');
  const ids = back.events().map((f) => f.id);
  assert.deepEqual([...ids].sort(), ids, 'ids ascend');
  assert.equal(new Set(ids).size, ids.length, 'no event twice');
  assert.ok(ids.every((id) => id !== seen.id), 'the resumed-from event is not sent again');
  back.close();

  // Trim the live stream (as MAXLEN does under load): resuming from a trimmed id says gap,
  // then sends what is left.
  await stack.redis('XTRIM', `sx:{p${stack.projectId}}:live`, 'MAXLEN', '1');
  const gapped = await live(stack.project, { query: { topics: 'logs', lastEventId: seen.id } });
  await gapped.waitFor((f) => f.event === 'logs', 'the entry left');
  const evs = gapped.events();
  assert.equal(evs[0].event, 'gap');
  assert.deepEqual(evs[0].data, { type: 'gap' });
  assert.ok(evs[1].data.items.some((i) => i.body.includes(last)), JSON.stringify(evs[1]));
  gapped.close();
  keeper.close();
});

stackTest(stack, 'idle streams get ": ping" heartbeats (sse_heartbeat_s 1)', async () => {
  closeLeftovers();
  const s = await live(stack.project, { query: { topics: 'metrics', service: 'nothing-sends-this' } });
  await s.waitFor((f) => f.comment === 'ping', 'a heartbeat', 15_000);
  const pings = () => s.frames.filter((f) => f.comment === 'ping').length;
  const n = pings();
  await s.waitFor(() => pings() > n, 'a second heartbeat', 15_000);
  s.close();
});

stackTest(stack, 'an exception span becomes an issue.new event', async () => {
  closeLeftovers();
  const s = await live(stack.project, { query: { topics: 'issues' } });
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: stack.demo.SEXTANT_CA };
  delete env.NODE_TEST_CONTEXT;
  const plan = { endpoint: stack.demo.SEXTANT_OTLP_ENDPOINT, key: stack.ingestKey, protocol: 'proto',
    release: `sse-${randomBytes(3).toString('hex')}`, runTag: marker(), count: 1 };
  const r = await run(process.execPath, [path.join(HERE, 'sdk-errors-emitter.mjs'), JSON.stringify(plan)], { env, cwd: HERE, timeoutMs: 90_000 });
  assert.equal(r.code, 0, r.stderr);
  const ev = await s.waitFor((f) => f.event === 'issue', 'the issue event');
  assert.equal(ev.data.type, 'issue.new');
  assert.equal(ev.data.project, String(stack.projectId));
  assert.match(ev.data.shortId, /^[A-Z0-9-]+-\d+$/);
  assert.match(ev.data.title, /QuotaExceededError/);
  const issue = await stack.api(`projects/${stack.project}/errors/${ev.data.issue}`);
  assert.equal(issue.status, 200, issue.text.slice(0, 200));
  assert.deepEqual(s.events().map((f) => f.event), ['issue']);
  s.close();
});

stackTest(stack, 'metrics rolled up by sextant-rollup arrive as metrics events', async () => {
  closeLeftovers();
  const s = await live(stack.project, { query: { topics: 'metrics', service: 'meter' } });
  await watched(stack.projectId);
  const name = `sse.e2e.${randomBytes(3).toString('hex')}`;
  const t = `${Date.now()}000000`;
  const body = JSON.stringify({ resourceMetrics: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'meter' } }] },
    scopeMetrics: [{ metrics: [{ name, gauge: { dataPoints: [{ timeUnixNano: t, asInt: '42' }] } }] }] }] });
  const u = new URL(stack.otlpTracesUrl.href.replace(/\/v1\/traces$/, '/v1/metrics'));
  const r = await stack.request('POST', u, { headers: { 'Content-Type': 'application/json', 'X-API-Key': stack.ingestKey }, body });
  assert.equal(r.status, 200, r.text);
  const ev = await s.waitFor((f) => f.event === 'metrics' && f.data.items.some((i) => i.name === name), 'the metrics event');
  assert.equal(ev.data.total, 1);
  assert.deepEqual(ev.data.items.find((i) => i.name === name),
    { name, service: 'meter', type: 'gauge', points: [{ timeUnixNano: t, value: 42 }] });
  s.close();
});

stackTest(stack, 'clients that leave free their threads; past the budget a stream gets 503 at once', async () => {
  closeLeftovers();
  for (let i = 0; i < 4 * THREADS; i++) {
    const s = await live(stack.project, { query: { topics: 'issues' } });
    s.close();
  }
  // A thread notices its client left at its next write (heartbeat: 1 s). Then every slot
  // but the one kept for refusals serves at once (a leaked thread would keep one busy).
  let held = [];
  await eventually(async () => {
    const all = await Promise.all(Array.from({ length: THREADS - 1 }, () => stream(stack.project, { query: { topics: 'metrics' } })));
    const refused = all.filter((s) => s.status !== 200);
    if (refused.length) {
      for (const s of all) if (s.status === 200) s.close();
      assert.fail(`${refused.length} of ${THREADS - 1} refused: ${refused[0].status} ${refused[0].text}`);
    }
    held = all;
  }, { what: `${THREADS - 1} streams at once`, timeoutMs: 30_000, intervalMs: 1500 });
  await Promise.all(held.map((s) => s.waitFor((f) => f.comment === 'ping', 'a heartbeat', 20_000)));
  // The budget is full: one more is refused at once, not left waiting.
  const extra = await stream(stack.project);
  assert.equal(extra.status, 503, extra.text);
  assert.equal(apiError(extra).code, 'unavailable');
  assert.ok(Number(extra.headers['retry-after']) > 0, JSON.stringify(extra.headers));
  for (const s of held) s.close();
  await eventually(async () => {
    const again = await stream(stack.project);
    if (again.status === 200) again.close();
    assert.equal(again.status, 200, again.text);
  }, { what: 'a stream after the others closed', timeoutMs: 20_000, intervalMs: 1000 });
});

stackTest(stack, 'revoked access ends open streams (sse_reauth_s 2): a revoked token, a removed member', async () => {
  closeLeftovers();
  const t = (await stack.ctl('token', 'create', '--project', stack.project, '--name', 'sse-revoke')).token;
  const byToken = await live(stack.project, { token: t });
  const b = await stack.ctl('user', 'create', 'bob@example.com');
  await stack.ctl('member', 'add', '--project', stack.project, 'bob@example.com', 'viewer');
  const r = await stack.request('POST', new URL('auth/login', stack.apiBase), {
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: b.email, password: b.password }) });
  assert.equal(r.status, 200, r.text);
  const bobCookie = (r.headers['set-cookie'] ?? []).find((c) => c.startsWith('sx_session=')).split(';')[0].slice(11);
  const byCookie = await live(stack.project, { token: null, cookie: bobCookie });
  const keeps = await live(stack.project, { token: null, cookie: U.cookie });
  await stack.psql(`UPDATE access_tokens SET revoked_at = now() WHERE name = 'sse-revoke'`);
  await stack.ctl('member', 'remove', '--project', stack.project, 'bob@example.com');
  await eventually(() => assert.ok(byToken.ended, 'the revoked token\'s stream ended'), { what: 'the token stream to end', timeoutMs: 20_000 });
  await eventually(() => assert.ok(byCookie.ended, 'the removed member\'s stream ended'), { what: 'the member stream to end', timeoutMs: 20_000 });
  await sleep(3000); // past another check: alice's access holds
  assert.ok(!keeps.ended, 'a stream whose access holds goes on');
  assert.equal((await stream(stack.project, { token: t })).status, 401);
  assert.equal((await stream(stack.project, { token: null, cookie: bobCookie })).status, 404);
  keeps.close();
});

stackTest(stack, 'SIGTERM ends open streams; the restarted process serves again', async () => {
  closeLeftovers();
  const s = await live(stack.project);
  await stack.control('restart', 'sse');
  await eventually(() => assert.ok(s.ended, 'the stream ended'), { what: 'the stream to end', timeoutMs: 15_000 });
  const again = await live(stack.project);
  again.close();
});

process.on('exit', () => {
  for (const s of open) s.close();
});
