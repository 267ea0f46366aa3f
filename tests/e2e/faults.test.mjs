// faults.test.mjs: sextant-persist is killed (SIGKILL) in the middle of a
// stream of batches and started again; every span must then be stored exactly
// once (no loss, no duplicates, trace summaries not double counted) and the
// consumer group must have nothing left pending.

import assert from 'node:assert/strict';
import { useStack, stackTest, eventually, sleep } from './lib/stack.mjs';
import {
  fixture, fixtureJson, jsonSpans, spanCountsByTrace, freshTraceIds, rewriteJsonTraceIds,
  rewriteProtoTraceIds,
} from './lib/otlp.mjs';
import { PROTO, JSONCT, FIXTURE_WINDOW, assertAccepted, byTraceId } from './lib/expect.mjs';

// Entries of a killed consumer are reclaimed once idle this long (default 30 s):
// shorter here so the test waits less; exactly-once must hold whatever the value.
const stack = useStack('faults', { extraConf: 'persist_claim_idle_ms 5000' });

const REQUESTS = 200;
const KILL_AFTER = 50; // answered requests before persist is killed
const START_AFTER = 140; // answered requests before it is started again
const CONCURRENCY = 4;

const TRACES_JSON = fixtureJson('traces-json.json');
const TRACES_PROTO = fixture('traces-proto.bin');
const COUNTS = spanCountsByTrace(jsonSpans(TRACES_JSON));
const SPANS_PER_REQUEST = [...COUNTS.values()].reduce((a, b) => a + b, 0);

/** Request i: the fixture with fresh trace ids, JSON for even i, protobuf for odd i. */
function makeRequest(i) {
  const map = freshTraceIds(COUNTS.keys());
  const json = i % 2 === 0;
  return {
    body: json ? Buffer.from(JSON.stringify(rewriteJsonTraceIds(TRACES_JSON, map))) : rewriteProtoTraceIds(TRACES_PROTO, map),
    contentType: json ? JSONCT : PROTO,
    expected: new Map([...map].map(([o, n]) => [n, COUNTS.get(o)])),
  };
}

async function until(cond) {
  while (!cond()) await sleep(20);
}

/** Every numeric value under a key containing "pending" in sextantctl status's JSON. */
function pendingValues(node, inPending = false, path = '') {
  const out = [];
  if (node === null || node === undefined) return out;
  if (typeof node === 'number' || (typeof node === 'string' && /^\d+$/.test(node))) {
    if (inPending) out.push([path, Number(node)]);
    return out;
  }
  if (typeof node !== 'object') return out;
  for (const [k, v] of Object.entries(node)) {
    out.push(...pendingValues(v, inPending || /pending/i.test(k), `${path}.${k}`));
  }
  return out;
}

async function spanRows() {
  const id = String(stack.projectId);
  assert.match(id, /^\d+$/);
  const [rows, distinct] = (await stack.psql(
    `select count(*), count(distinct (trace_id, span_id)) from spans where project_id = ${id}`,
  )).split('|').map(Number);
  return { rows, distinct };
}

function claimIdleMs() {
  const v = Number(stack.config().persist_claim_idle_ms);
  return Number.isFinite(v) && v > 0 ? v : 30_000;
}

const sent = new Map(); // traceId -> spanCount, of every accepted request

stackTest(stack, `${REQUESTS} batches of ${SPANS_PER_REQUEST} spans are all accepted while persist is killed (SIGKILL) and restarted mid-stream`, { timeout: 240_000 }, async () => {
  let next = 0;
  let answered = 0;
  const failures = [];
  const worker = async () => {
    while (next < REQUESTS) {
      const i = next++;
      const req = makeRequest(i);
      const r = await stack.ingest(req.body, { contentType: req.contentType, chunked: i % 3 === 0 });
      try {
        assertAccepted(r, req.contentType);
        for (const [id, n] of req.expected) sent.set(id, n);
      } catch (e) {
        failures.push(`request ${i}: ${e.message}`);
      }
      answered++;
    }
  };
  const chaos = async () => {
    await until(() => answered >= KILL_AFTER);
    await stack.control('stop', 'persist', '--kill');
    await until(() => answered >= START_AFTER);
    await stack.control('start', 'persist');
  };
  await Promise.all([...Array.from({ length: CONCURRENCY }, worker), chaos()]);
  assert.deepEqual(failures, [], `${failures.length} requests not accepted`);
  assert.equal(sent.size, REQUESTS * COUNTS.size);
});

stackTest(stack, 'after the restart every span is stored exactly once and nothing stays pending', { timeout: 240_000 }, async () => {
  assert.equal(sent.size, REQUESTS * COUNTS.size, 'the sending test did not complete');
  const total = REQUESTS * SPANS_PER_REQUEST;
  // A restarted consumer may only reclaim the dead one's entries once they are
  // persist_claim_idle_ms old: wait that long plus the usual persistence delay.
  const deadline = claimIdleMs() + 60_000;
  await eventually(async () => {
    const { rows } = await spanRows();
    assert.equal(rows, total, `span rows ${rows} of ${total}`);
    const status = await stack.ctl('status');
    const pend = pendingValues(status);
    assert.ok(pend.length > 0, `sextantctl status shows no pending figure: ${JSON.stringify(status)}`);
    assert.deepEqual(pend.filter(([, v]) => v !== 0), [], `still pending: ${JSON.stringify(status)}`);
  }, { what: 'all spans stored and nothing pending', timeoutMs: deadline, intervalMs: 1000 });

  const { rows, distinct } = await spanRows();
  assert.equal(rows, total, 'no span lost and none stored twice');
  assert.equal(distinct, total, 'no (trace id, span id) stored twice');
});

stackTest(stack, 'trace summaries through the API count every span once (paging 1000 at a time)', { timeout: 180_000 }, async () => {
  assert.equal(sent.size, REQUESTS * COUNTS.size, 'the sending test did not complete');
  const { traces, pages } = await stack.allTraces({ ...FIXTURE_WINDOW, limit: 1000 });
  assert.ok(pages.every((n, i) => i === pages.length - 1 || n === 1000), `pages ${pages}`);
  const listed = byTraceId(traces);
  assert.equal(listed.size, sent.size, 'one list entry per trace sent');
  const wrong = [];
  let sum = 0;
  for (const [id, n] of sent) {
    const t = listed.get(id);
    if (!t) wrong.push(`${id} missing`);
    else if (t.spanCount !== n) wrong.push(`${id}: spanCount ${t.spanCount}, sent ${n}`);
    sum += t?.spanCount ?? 0;
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} traces wrong`);
  assert.equal(sum, REQUESTS * SPANS_PER_REQUEST);
});

stackTest(stack, 'a graceful stop of persist (SIGTERM) while batches arrive loses nothing either', { timeout: 180_000 }, async () => {
  const before = (await spanRows()).rows;
  await stack.control('stop', 'persist');
  const expected = new Map();
  for (let i = 0; i < 20; i++) {
    const req = makeRequest(i);
    assertAccepted(await stack.ingest(req.body, { contentType: req.contentType }), req.contentType);
    for (const [id, n] of req.expected) expected.set(id, n);
  }
  await stack.control('start', 'persist');
  await eventually(async () => {
    const { rows, distinct } = await spanRows();
    assert.equal(rows, before + 20 * SPANS_PER_REQUEST);
    assert.equal(distinct, rows);
    const pend = pendingValues(await stack.ctl('status'));
    assert.deepEqual(pend.filter(([, v]) => v !== 0), []);
  }, { what: 'the 20 batches sent while persist was stopped', timeoutMs: claimIdleMs() + 60_000, intervalMs: 1000 });
  const listed = byTraceId((await stack.allTraces({ ...FIXTURE_WINDOW, limit: 1000 })).traces);
  for (const [id, n] of expected) assert.equal(listed.get(id)?.spanCount, n, `trace ${id}`);
});

stackTest(stack, 'PostgreSQL down while batches arrive: nothing is acknowledged unwritten; after a persist kill and restart each span is stored once', { timeout: 240_000 }, async (t) => {
  const before = (await spanRows()).rows;
  const expected = new Map();
  const send = async (i) => {
    const req = makeRequest(i);
    assertAccepted(await stack.ingest(req.body, { contentType: req.contentType }), req.contentType);
    for (const [id, n] of req.expected) expected.set(id, n);
  };
  await send(0); // the demo key is now in ingest's key cache: ingest needs no PostgreSQL
  await stack.control('stop', 'postgres');
  try {
    for (let i = 1; i <= 20; i++) await send(i);
    // persist reads the entries and cannot write them: they must stay pending.
    const stream = `${stack.config().redis_prefix || 'sx'}:stream:spans`;
    const pending = await eventually(async () => {
      const n = Number((await stack.redis('XPENDING', stream, 'persist')).split('\n')[0]);
      assert.ok(n > 0);
      return n;
    }, { what: 'entries pending while PostgreSQL is down', timeoutMs: 10_000 }).catch(() => 0);
    t.diagnostic(`entries pending while PostgreSQL was down: ${pending}`);
    await stack.control('stop', 'persist', '--kill');
  } finally {
    await stack.control('start', 'postgres');
  }
  await stack.control('start', 'persist');
  await eventually(async () => {
    const { rows, distinct } = await spanRows();
    assert.equal(rows, before + 21 * SPANS_PER_REQUEST);
    assert.equal(distinct, rows);
    const pend = pendingValues(await stack.ctl('status'));
    assert.deepEqual(pend.filter(([, v]) => v !== 0), []);
  }, { what: 'the 21 batches sent around the PostgreSQL outage', timeoutMs: claimIdleMs() + 60_000, intervalMs: 1000 });
  const listed = byTraceId((await stack.allTraces({ ...FIXTURE_WINDOW, limit: 1000 })).traces);
  for (const [id, n] of expected) assert.equal(listed.get(id)?.spanCount, n, `trace ${id}`);
});
