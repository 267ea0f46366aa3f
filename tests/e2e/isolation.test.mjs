// isolation.test.mjs: two projects on one stack. A project's token reads only
// its own project; another project's project, trace or dashboard answers 404
// exactly like one that does not exist; cross-project analytics list only the
// token's project; ingest keys cannot read; no token, no data.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually, apiError } from './lib/stack.mjs';
import {
  fixture, fixtureJson, jsonSpans, spanCountsByTrace, freshTraceIds, rewriteProtoTraceIds,
  encodeTraceRequest,
} from './lib/otlp.mjs';
import { PROTO, FIXTURE_WINDOW, assertAccepted, assertTracesListed, byTraceId } from './lib/expect.mjs';

const stack = useStack('isolation');

const COUNTS = spanCountsByTrace(jsonSpans(fixtureJson('traces-json.json')));
const PROTO_BODY = fixture('traces-proto.bin');

function freshFixture() {
  const map = freshTraceIds(COUNTS.keys());
  return {
    body: rewriteProtoTraceIds(PROTO_BODY, map),
    expected: new Map([...map].map(([o, n]) => [n, COUNTS.get(o)])),
  };
}

const A = {};
const B = {};
const dataA = freshFixture();
const dataB = freshFixture();
const anyA = () => [...dataA.expected.keys()][0];
const anyB = () => [...dataB.expected.keys()][0];

async function listIds(project, token) {
  const { traces } = await stack.allTraces({ ...FIXTURE_WINDOW, limit: 1000 }, { project, token });
  return byTraceId(traces);
}

/** Every way to reach project p's data; each must answer want. */
function projectPaths(p, traceId) {
  // .../stream (sextant-sse) refuses before any event, with the same 404 and 401.
  return [`projects/${p}/traces`, `projects/${p}/traces/${traceId}`, `projects/${p}/services`,
    `projects/${p}/overview`, `projects/${p}/logs/histogram`, `projects/${p}/dashboards`, `projects/${p}/dashboards/1`, `projects/${p}/stream`];
}

/** A write to the API with a bearer token (JSON body). */
function write(method, p, token, body) {
  const h = { Accept: 'application/json', Authorization: `Bearer ${token}` };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  return stack.request(method, new URL(p, stack.apiBase), { headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
}

stackTest(stack, 'sextantctl creates project B with its own ingest key and token', async () => {
  Object.assign(A, { id: String(stack.projectId), slug: stack.project, token: stack.token, ingestKey: stack.ingestKey });
  const name = `isolation-b-${randomBytes(3).toString('hex')}`;
  const p = await stack.ctl('project', 'create', name);
  for (const k of ['id', 'slug', 'name', 'ingestKey']) assert.ok(p[k] !== undefined && p[k] !== '', `project create lacks ${k}: ${JSON.stringify(p)}`);
  assert.notEqual(String(p.id), A.id);
  assert.notEqual(p.slug, A.slug);
  assert.notEqual(p.ingestKey, A.ingestKey);
  const t = await stack.ctl('token', 'create', '--project', p.slug);
  assert.equal(typeof t.token, 'string', JSON.stringify(t));
  assert.notEqual(t.token, A.token);
  Object.assign(B, { id: String(p.id), slug: p.slug, ingestKey: p.ingestKey, token: t.token });
});

stackTest(stack, 'A and B each ingest with their own key and read their own data by slug and by id', async () => {
  assert.ok(B.token, 'project B was not created');
  assertAccepted(await stack.ingest(dataA.body, { key: A.ingestKey }), PROTO);
  assertAccepted(await stack.ingest(dataB.body, { key: B.ingestKey }), PROTO);
  await eventually(async () => {
    assertTracesListed(await listIds(A.slug, A.token), dataA.expected);
    assertTracesListed(await listIds(B.slug, B.token), dataB.expected);
  }, { what: 'both projects\' data' });
  assertTracesListed(await listIds(A.id, A.token), dataA.expected);
  assertTracesListed(await listIds(B.id, B.token), dataB.expected);
  const r = await stack.trace(anyB(), { project: B.id, token: B.token });
  assert.equal(r.status, 200, r.text.slice(0, 200));
});

stackTest(stack, 'lists never mix projects', async () => {
  assert.ok(B.token, 'project B was not created');
  const a = await listIds(A.slug, A.token);
  const b = await listIds(B.slug, B.token);
  for (const id of dataB.expected.keys()) assert.ok(!a.has(id), `B's trace ${id} in A's list`);
  for (const id of dataA.expected.keys()) assert.ok(!b.has(id), `A's trace ${id} in B's list`);
  assert.equal(a.size, dataA.expected.size);
  assert.equal(b.size, dataB.expected.size);
});

stackTest(stack, 'B\'s token gets 404 for project A, by id and by slug (traces, trace, services)', async () => {
  assert.ok(B.token, 'project B was not created');
  for (const p of [A.id, A.slug]) {
    for (const path of projectPaths(p, anyA())) {
      const r = await stack.api(path, { token: B.token, query: path.endsWith('/traces') ? FIXTURE_WINDOW : undefined });
      assert.equal(r.status, 404, `${path} with B's token: ${r.status} ${r.text.slice(0, 200)}`);
      apiError(r);
      assert.ok(!r.text.includes(anyA()) || path.includes(anyA()), 'the answer leaks none of A\'s data');
    }
  }
});

stackTest(stack, 'A\'s token gets 404 for project B, by id and by slug', async () => {
  assert.ok(B.token, 'project B was not created');
  for (const p of [B.id, B.slug]) {
    for (const path of projectPaths(p, anyB())) {
      const r = await stack.api(path, { token: A.token });
      assert.equal(r.status, 404, `${path} with A's token: ${r.status} ${r.text.slice(0, 200)}`);
      apiError(r);
    }
  }
});

stackTest(stack, 'A\'s trace id under B\'s own path answers 404 for B (and B\'s under A\'s for A)', async () => {
  assert.ok(B.token, 'project B was not created');
  for (const p of [B.slug, B.id]) {
    const r = await stack.trace(anyA(), { project: p, token: B.token });
    assert.equal(r.status, 404, `A's trace under ${p}: ${r.status} ${r.text.slice(0, 200)}`);
    apiError(r);
  }
  for (const p of [A.slug, A.id]) {
    const r = await stack.trace(anyB(), { project: p, token: A.token });
    assert.equal(r.status, 404, `B's trace under ${p}: ${r.status} ${r.text.slice(0, 200)}`);
  }
});

stackTest(stack, 'another project\'s 404 is indistinguishable from a project that does not exist', async () => {
  assert.ok(B.token, 'project B was not created');
  const other = await stack.api(`projects/${A.slug}/traces`, { token: B.token });
  const noneSlug = await stack.api('projects/no-such-project-e2e/traces', { token: B.token });
  const noneId = await stack.api('projects/987654/traces', { token: B.token });
  for (const r of [other, noneSlug, noneId]) assert.equal(r.status, 404, r.text.slice(0, 200));
  const codes = [other, noneSlug, noneId].map((r) => apiError(r).code);
  assert.equal(codes[0], codes[1], `error codes differ: ${codes}`);
  assert.equal(codes[0], codes[2], `error codes differ: ${codes}`);
  const otherTrace = await stack.trace(anyA(), { project: B.slug, token: B.token });
  const noneTrace = await stack.trace('0123456789abcdef0123456789abcdef', { project: B.slug, token: B.token });
  assert.equal(otherTrace.status, 404);
  assert.equal(noneTrace.status, 404);
  assert.equal(apiError(otherTrace).code, apiError(noneTrace).code);
});

stackTest(stack, 'ingest keys cannot read the API (401), and tokens cannot ingest (401)', async () => {
  assert.ok(B.token, 'project B was not created');
  for (const key of [A.ingestKey, B.ingestKey]) {
    for (const p of [A.slug, B.slug]) {
      const r = await stack.api(`projects/${p}/traces`, { token: key });
      assert.equal(r.status, 401, `ingest key as API token on ${p}: ${r.status} ${r.text.slice(0, 200)}`);
      apiError(r);
    }
  }
  const body = encodeTraceRequest([{ resource: { 'service.name': 'x' }, spans: [{
    traceId: 'aa'.repeat(16), spanId: 'bb'.repeat(8), name: 'n', start: 1767225600000000000n, end: 1767225600001000000n,
  }] }]);
  for (const token of [A.token, B.token]) {
    const r = await stack.ingest(body, { key: token });
    assert.equal(r.status, 401, `token as ingest key: ${r.status}`);
    const r2 = await stack.ingest(body, { key: token, keyHeader: 'bearer' });
    assert.equal(r2.status, 401, `token as Bearer ingest key: ${r2.status}`);
  }
});

stackTest(stack, 'no token or a bogus token answers 401 (health stays open)', async () => {
  assert.ok(B.token, 'project B was not created');
  for (const path of [...projectPaths(A.slug, anyA()), ...projectPaths(B.id, anyB())]) {
    for (const token of [null, 'sxt_' + randomBytes(32).toString('base64url'), `${A.token}x`]) {
      const r = await stack.api(path, { token });
      assert.equal(r.status, 401, `${path} with token ${token ? 'bogus' : 'none'}: ${r.status} ${r.text.slice(0, 200)}`);
      apiError(r);
    }
  }
  const raw = await stack.request('GET', new URL(`projects/${A.slug}/traces`, stack.apiBase), { headers: { Authorization: 'Basic Zm9vOmJhcg==' } });
  assert.equal(raw.status, 401);
  const h = await stack.api('health', { token: null });
  assert.equal(h.status, 200);
});

stackTest(stack, 'dashboards and analytics: B\'s dashboard is invisible and unchangeable for A; cross-project lists the token\'s project only', async () => {
  assert.ok(B.token, 'project B was not created');
  const made = await write('POST', `projects/${B.slug}/dashboards`, B.token, { name: 'Secret B board', panels: [] });
  assert.equal(made.status, 201, made.text);
  const dash = made.json().dashboard;
  for (const p of [A.slug, A.id, B.slug, B.id]) {
    const path = `projects/${p}/dashboards/${dash.id}`;
    for (const [m, body] of [['GET'], ['PUT', { name: 'pwned', version: 1 }], ['DELETE']]) {
      const r = await write(m, path, A.token, body);
      assert.equal(r.status, 404, `${m} ${path} with A's token: ${r.status} ${r.text.slice(0, 200)}`);
      assert.ok(!r.text.includes('Secret B'), r.text);
    }
  }
  const list = await stack.api(`projects/${A.slug}/dashboards`, { token: A.token });
  assert.equal(list.status, 200);
  assert.ok(!list.text.includes('Secret B'), list.text);
  const still = await stack.api(`projects/${B.slug}/dashboards/${dash.id}`, { token: B.token });
  assert.equal(still.status, 200);
  assert.deepEqual(still.json().dashboard, dash, 'B\'s dashboard unchanged');
  for (const [token, own] of [[A.token, A.id], [B.token, B.id]]) {
    const r = await stack.api('analytics/cross-project', { token });
    assert.equal(r.status, 200, r.text.slice(0, 200));
    assert.deepEqual(r.json().projects.map((p) => String(p.id)), [own]);
  }
  assert.equal((await stack.api('analytics/cross-project', { token: null })).status, 401);
  assert.equal((await stack.api('analytics/cross-project', { token: A.ingestKey })).status, 401);
});
