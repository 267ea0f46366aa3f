// ingest.test.mjs: the OTLP/HTTP edge through nginx, answer by answer
// (200, 400, 401, 403, 405, 413, 415, 503 and partial success), with the
// shared SDK fixtures, and that accepted data reaches the API.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually } from './lib/stack.mjs';
import {
  fixture, fixtureJson, fixtureSummary, jsonSpans, spanCountsByTrace, freshTraceIds,
  rewriteJsonTraceIds, rewriteProtoTraceIds, gzip, encodeTraceRequest, traceRequestJson,
  randomTraceId, randomSpanId,
} from './lib/otlp.mjs';
import {
  PROTO, JSONCT, FIXTURE_BASE_MS, FIXTURE_WINDOW, exportResponse, assertAccepted, assertRpcStatus,
  rejectedOf, byTraceId, assertTracesListed,
} from './lib/expect.mjs';

const stack = useStack('ingest');

const TRACES_JSON = fixtureJson('traces-json.json');
const TRACES_PROTO = fixture('traces-proto.bin');
const FIXTURE_COUNTS = spanCountsByTrace(jsonSpans(TRACES_JSON)); // traceId -> spans, 28 traces

/** The checkout-api fixture with fresh trace ids: {body, expected: Map newId -> spanCount}. */
function freshFixture(kind, gz = false) {
  const map = freshTraceIds(FIXTURE_COUNTS.keys());
  let body = kind === 'proto'
    ? rewriteProtoTraceIds(TRACES_PROTO, map)
    : Buffer.from(JSON.stringify(rewriteJsonTraceIds(TRACES_JSON, map)));
  if (gz) body = gzip(body);
  const expected = new Map([...map].map(([oldId, newId]) => [newId, FIXTURE_COUNTS.get(oldId)]));
  return { body, expected, contentType: kind === 'proto' ? PROTO : JSONCT, encoding: gz ? 'gzip' : undefined };
}

async function listedFixtureTraces() {
  const { traces } = await stack.allTraces({ ...FIXTURE_WINDOW, limit: 1000 });
  return byTraceId(traces);
}

async function waitStored(expected, what) {
  await eventually(async () => assertTracesListed(await listedFixtureTraces(), expected),
    { what: `${what} visible through the API` });
}

/** A small valid request of n spans in one fresh trace (protobuf or JSON). */
function smallRequest(n = 2) {
  const traceId = randomTraceId();
  const start = BigInt(FIXTURE_BASE_MS) * 1_000_000n + 5_000_000_000n;
  const rootId = randomSpanId();
  const spans = [];
  for (let i = 0; i < n; i++) {
    spans.push({
      traceId,
      spanId: i === 0 ? rootId : randomSpanId(),
      parentSpanId: i === 0 ? undefined : rootId,
      name: i === 0 ? 'GET /small' : `step ${i}`,
      kind: i === 0 ? 2 : 1,
      start: start + BigInt(i) * 1_000_000n,
      end: start + 50_000_000n,
      attributes: { 'e2e.case': 'small' },
    });
  }
  return { traceId, spans, resources: [{ resource: { 'service.name': 'ingest-e2e' }, spans }] };
}

// ----------------------------------------------------------------------------- 200

stackTest(stack, 'GET /api/v1/health answers 200 {"status":"ok"} without a token', async () => {
  const r = await stack.api('health', { token: null });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json().status, 'ok');
});

const VARIANTS = [
  { file: 'traces-proto.bin', kind: 'proto', gz: false },
  { file: 'traces-proto.bin.gz', kind: 'proto', gz: true },
  { file: 'traces-json.json', kind: 'json', gz: false },
  { file: 'traces-json.json.gz', kind: 'json', gz: true },
];
const accepted = [];
for (const v of VARIANTS) {
  for (const keyHeader of ['x-api-key', 'bearer']) {
    const how = keyHeader === 'bearer' ? 'Authorization: Bearer' : 'X-API-Key';
    stackTest(stack, `200 for ${v.file} (fresh trace ids) with the key in ${how}`, async () => {
      const f = freshFixture(v.kind, v.gz);
      const r = await stack.ingest(f.body, { contentType: f.contentType, encoding: f.encoding, keyHeader });
      assertAccepted(r, f.contentType);
      accepted.push({ what: `${v.file} via ${how}`, expected: f.expected });
    });
  }
}

stackTest(stack, 'every accepted fixture variant is stored: 28 traces each, with the fixture\'s span counts', async () => {
  assert.equal(accepted.length, VARIANTS.length * 2, 'some variants were not accepted (see above)');
  // The expectation comes from the fixture itself: 28 traces, 65 checkout-api spans.
  const exp = fixtureSummary().expected;
  assert.equal(FIXTURE_COUNTS.size, 28);
  assert.equal([...FIXTURE_COUNTS.values()].reduce((a, b) => a + b, 0), exp.span_count_by_service['checkout-api']);
  const all = new Map();
  for (const a of accepted) for (const [id, n] of a.expected) all.set(id, n);
  await waitStored(all, `${accepted.length} fixture variants`);
});

stackTest(stack, 'the SDK\'s exact bytes of all four trace fixtures are accepted and stored once (no duplicates)', async () => {
  for (const v of VARIANTS) {
    const r = await stack.ingest(fixture(v.file), {
      contentType: v.kind === 'proto' ? PROTO : JSONCT, encoding: v.gz ? 'gzip' : undefined,
    });
    assertAccepted(r, v.kind === 'proto' ? PROTO : JSONCT);
  }
  // The same 65 spans arrived four times: counts must be the fixture's, not four times them.
  await waitStored(FIXTURE_COUNTS, 'the original fixture traces');
  const r = await stack.trace(fixtureSummary().expected.success_trace_id);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json().spans.length, FIXTURE_COUNTS.get(fixtureSummary().expected.success_trace_id));
});

stackTest(stack, 'chunked uploads without Content-Length (as the SDK sends) are accepted and stored', async () => {
  const expected = new Map();
  for (const kind of ['proto', 'json']) {
    for (const gz of [false, true]) {
      const f = freshFixture(kind, gz);
      const r = await stack.ingest(f.body, { contentType: f.contentType, encoding: f.encoding, chunked: true, chunkSize: 1000 });
      assertAccepted(r, f.contentType);
      for (const [id, n] of f.expected) expected.set(id, n);
    }
  }
  await waitStored(expected, 'chunked uploads');
});

stackTest(stack, '200 for a gzip body under 8 MB that inflates to ~12 MB (the 8 MB limit is on the compressed size)', async () => {
  const pad = 'x'.repeat(6000);
  const base = BigInt(FIXTURE_BASE_MS) * 1_000_000n + 30_000_000_000n;
  const resources = [{ resource: { 'service.name': 'big-batch' }, spans: [] }];
  const traceIds = [];
  for (let t = 0; t < 100; t++) {
    const traceId = randomTraceId();
    traceIds.push(traceId);
    const rootId = randomSpanId();
    for (let i = 0; i < 20; i++) {
      resources[0].spans.push({
        traceId, spanId: i ? randomSpanId() : rootId, parentSpanId: i ? rootId : undefined,
        name: i ? 'child' : 'big root', kind: i ? 1 : 2,
        start: base + BigInt(t) * 1_000_000n + BigInt(i), end: base + BigInt(t) * 1_000_000n + 500_000n,
        attributes: { 'e2e.pad': pad },
      });
    }
  }
  const raw = encodeTraceRequest(resources);
  assert.ok(raw.length > 10 * 1024 * 1024 && raw.length < 30 * 1024 * 1024, `inflated size ${raw.length}`);
  const body = gzip(raw);
  assert.ok(body.length < 8 * 1024 * 1024);
  const r = await stack.ingest(body, { contentType: PROTO, encoding: 'gzip' });
  assertAccepted(r, PROTO);
  await waitStored(new Map(traceIds.slice(0, 5).map((id) => [id, 20])), 'the inflated big batch');
});

// ----------------------------------------------------------------------------- 400

stackTest(stack, '400 with a protobuf Status for a truncated protobuf body', async () => {
  const truncated = TRACES_PROTO.subarray(0, Math.floor(TRACES_PROTO.length / 2));
  const r = await stack.ingest(truncated, { contentType: PROTO });
  assertRpcStatus(r, 400, PROTO);
});

stackTest(stack, '400 with a JSON Status for malformed JSON', async () => {
  const r = await stack.ingest(Buffer.from('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": '), { contentType: JSONCT });
  assertRpcStatus(r, 400, JSONCT);
});

stackTest(stack, '400 for a JSON span whose traceId is not hex', async () => {
  const req = smallRequest(1);
  const json = traceRequestJson(req.resources);
  json.resourceSpans[0].scopeSpans[0].spans[0].traceId = 'zz' + req.traceId.slice(2).replace(/[0-9]/g, 'q');
  const r = await stack.ingest(Buffer.from(JSON.stringify(json)), { contentType: JSONCT });
  assertRpcStatus(r, 400, JSONCT);
});

stackTest(stack, '400 for Content-Encoding: gzip on a body that is not gzip', async () => {
  const r = await stack.ingest(Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), randomBytes(200)]),
    { contentType: PROTO, encoding: 'gzip' });
  assertRpcStatus(r, 400, PROTO);
});

// ----------------------------------------------------------------------------- 401 / 403

stackTest(stack, '401 without a key (protobuf and JSON requests)', async () => {
  const req = smallRequest();
  const r1 = await stack.ingest(encodeTraceRequest(req.resources), { contentType: PROTO, key: null });
  assertRpcStatus(r1, 401, PROTO);
  const r2 = await stack.ingest(Buffer.from(JSON.stringify(traceRequestJson(req.resources))), { contentType: JSONCT, key: null });
  assertRpcStatus(r2, 401, JSONCT);
  // Nothing of the refused request is stored.
  const t = await stack.trace(req.traceId);
  assert.equal(t.status, 404, `a refused request's trace must not exist: ${t.status} ${t.text.slice(0, 200)}`);
});

stackTest(stack, '401 for unknown keys, in X-API-Key and in Authorization: Bearer', async () => {
  const body = Buffer.from(JSON.stringify(traceRequestJson(smallRequest().resources)));
  const fake = `sxk_${randomBytes(32).toString('base64url')}`;
  for (const key of [fake, 'not-a-key', `${stack.ingestKey}x`]) {
    for (const keyHeader of ['x-api-key', 'bearer']) {
      const r = await stack.ingest(body, { contentType: JSONCT, key, keyHeader });
      assertRpcStatus(r, 401, JSONCT);
    }
  }
});

stackTest(stack, '403 for a revoked key that worked before; its earlier data stays', async () => {
  const before = await stack.ctl('key', 'list', '--project', stack.project);
  assert.ok(Array.isArray(before), `key list is not a JSON list: ${JSON.stringify(before)}`);
  const created = await stack.ctl('key', 'create', '--project', stack.project);
  assert.equal(typeof created.ingestKey, 'string', JSON.stringify(created));
  const afterList = await stack.ctl('key', 'list', '--project', stack.project);
  const oldIds = new Set(before.map((k) => String(k.id)));
  const fresh = afterList.filter((k) => !oldIds.has(String(k.id)));
  assert.equal(fresh.length, 1, `key list should show exactly one new key: ${JSON.stringify(afterList)}`);
  const keyId = created.id !== undefined ? String(created.id) : String(fresh[0].id);
  assert.equal(String(fresh[0].id), keyId, 'key create\'s id is the one key list shows');

  const req = smallRequest(3);
  const ok = await stack.ingest(encodeTraceRequest(req.resources), { key: created.ingestKey });
  assertAccepted(ok, PROTO);

  await stack.ctl('key', 'revoke', keyId);
  // Revocation is effective as soon as sextantctl returns, even though the key was just used (and cached).
  const req2 = smallRequest(1);
  const denied = await stack.ingest(encodeTraceRequest(req2.resources), { key: created.ingestKey });
  assertRpcStatus(denied, 403, PROTO);
  const deniedBearer = await stack.ingest(Buffer.from(JSON.stringify(traceRequestJson(req2.resources))),
    { contentType: JSONCT, key: created.ingestKey, keyHeader: 'bearer' });
  assertRpcStatus(deniedBearer, 403, JSONCT);

  // The demo key still works, and the data sent before revocation is kept.
  assertAccepted(await stack.ingest(encodeTraceRequest(smallRequest().resources)), PROTO);
  await eventually(async () => {
    const t = await stack.trace(req.traceId);
    assert.equal(t.status, 200, t.text.slice(0, 200));
    assert.equal(t.json().spans.length, 3);
  }, { what: 'the revoked key\'s earlier trace' });
  const gone = await stack.trace(req2.traceId);
  assert.equal(gone.status, 404, 'the request refused with 403 must not be stored');
});

// ----------------------------------------------------------------------------- 405 / 413 / 415

stackTest(stack, '405 for GET and PUT on /v1/traces', async () => {
  const g = await stack.ingest(undefined, { method: 'GET', contentType: null });
  assert.equal(g.status, 405, g.text.slice(0, 200));
  const p = await stack.ingest(encodeTraceRequest(smallRequest().resources), { method: 'PUT' });
  assert.equal(p.status, 405, p.text.slice(0, 200));
});

stackTest(stack, '413 for a 9 MB body, with Content-Length and chunked', async () => {
  const body = Buffer.alloc(9 * 1024 * 1024, 0x41);
  const r1 = await stack.ingest(body, { contentType: PROTO });
  assert.equal(r1.status, 413, r1.text.slice(0, 200));
  const r2 = await stack.ingest(body, { contentType: PROTO, chunked: true, chunkSize: 256 * 1024 });
  assert.equal(r2.status, 413, r2.text.slice(0, 200));
});

stackTest(stack, '413 for a gzip bomb (a small body that inflates to 40 MB)', async () => {
  const bomb = gzip(Buffer.alloc(40 * 1024 * 1024));
  assert.ok(bomb.length < 1024 * 1024);
  for (const contentType of [PROTO, JSONCT]) {
    const r = await stack.ingest(bomb, { contentType, encoding: 'gzip' });
    assert.equal(r.status, 413, `${contentType}: ${r.status} ${r.text.slice(0, 200)}`);
  }
});

stackTest(stack, '415 for Content-Type text/plain', async () => {
  const body = Buffer.from(JSON.stringify(traceRequestJson(smallRequest().resources)));
  const r = await stack.ingest(body, { contentType: 'text/plain' });
  assert.equal(r.status, 415, r.text.slice(0, 200));
});

stackTest(stack, '415 for a request without Content-Type', async () => {
  const body = Buffer.from(JSON.stringify(traceRequestJson(smallRequest().resources)));
  const r = await stack.ingest(body, { contentType: null });
  assert.equal(r.status, 415, r.text.slice(0, 200));
});

// ----------------------------------------------------------------------------- partial success

stackTest(stack, 'partial success (JSON): a span with an all-zero span id is dropped, rejectedSpans "1", the rest stored', async () => {
  const req = smallRequest(4);
  const json = traceRequestJson(req.resources);
  const bad = json.resourceSpans[0].scopeSpans[0].spans[3];
  bad.spanId = '0000000000000000';
  const r = await stack.ingest(Buffer.from(JSON.stringify(json)), { contentType: JSONCT });
  const { partialSuccess } = exportResponse(r, JSONCT);
  assert.ok(partialSuccess, `expected partialSuccess in ${r.text}`);
  assert.equal(rejectedOf(partialSuccess), 1, r.text);
  assert.equal(typeof partialSuccess.errorMessage, 'string');
  assert.ok(partialSuccess.errorMessage.length > 0, 'partialSuccess.errorMessage should say why');
  await eventually(async () => {
    const t = await stack.trace(req.traceId);
    assert.equal(t.status, 200, t.text.slice(0, 200));
    const ids = t.json().spans.map((s) => s.spanId).sort();
    assert.deepEqual(ids, req.spans.slice(0, 3).map((s) => s.spanId).sort());
  }, { what: 'the 3 good spans' });
});

stackTest(stack, 'partial success (JSON): a 6-byte span id is dropped', async () => {
  const req = smallRequest(3);
  const json = traceRequestJson(req.resources);
  json.resourceSpans[0].scopeSpans[0].spans[2].spanId = 'a1b2c3d4e5f6';
  const r = await stack.ingest(Buffer.from(JSON.stringify(json)), { contentType: JSONCT });
  const { partialSuccess } = exportResponse(r, JSONCT);
  assert.equal(rejectedOf(partialSuccess), 1, r.text);
  await eventually(async () => {
    const t = await stack.trace(req.traceId);
    assert.equal(t.status, 200, t.text.slice(0, 200));
    assert.equal(t.json().spans.length, 2);
  }, { what: 'the 2 good spans' });
});

stackTest(stack, 'partial success (protobuf): short span id, zero trace id and end-before-start are dropped, rejected 3', async () => {
  const req = smallRequest(3);
  const t0 = BigInt(FIXTURE_BASE_MS) * 1_000_000n + 6_000_000_000n;
  const bad = [
    { traceId: req.traceId, spanId: 'a1b2c3d4e5f6', name: 'short span id', start: t0, end: t0 + 1000n },
    { traceId: '00000000000000000000000000000000', spanId: randomSpanId(), name: 'zero trace id', start: t0, end: t0 + 1000n },
    { traceId: req.traceId, spanId: randomSpanId(), name: 'ends before it starts', start: t0 + 1000n, end: t0 },
  ];
  const resources = [{ resource: { 'service.name': 'ingest-e2e' }, spans: [...req.spans, ...bad] }];
  const r = await stack.ingest(encodeTraceRequest(resources), { contentType: PROTO });
  const { partialSuccess } = exportResponse(r, PROTO);
  assert.ok(partialSuccess, 'expected partial_success in the protobuf answer');
  assert.equal(partialSuccess.rejectedSpans, 3);
  assert.ok(partialSuccess.errorMessage.length > 0, 'partial_success.error_message should say why');
  await eventually(async () => {
    const t = await stack.trace(req.traceId);
    assert.equal(t.status, 200, t.text.slice(0, 200));
    const names = t.json().spans.map((s) => s.name).sort();
    assert.deepEqual(names, req.spans.map((s) => s.name).sort());
  }, { what: 'the 3 good spans' });
});

// ----------------------------------------------------------------------------- 503

stackTest(stack, '503 with Retry-After 1..5 while Redis is down; 200 again once it is back, and that data is stored', async () => {
  const f = freshFixture('proto');
  await stack.control('stop', 'redis');
  try {
    for (const kind of ['proto', 'json']) {
      const g = freshFixture(kind);
      const r = await stack.ingest(g.body, { contentType: g.contentType });
      assertRpcStatus(r, 503, g.contentType);
      const ra = r.headers['retry-after'];
      assert.match(String(ra), /^\d+$/, `Retry-After must be whole seconds, got ${ra}`);
      assert.ok(Number(ra) >= 1 && Number(ra) <= 5, `Retry-After ${ra} not in 1..5`);
    }
  } finally {
    await stack.control('start', 'redis');
  }
  // Until ingest has reconnected it may still answer 503 (never anything else).
  const seen = [];
  await eventually(async () => {
    const r = await stack.ingest(f.body, { contentType: PROTO });
    seen.push(r.status);
    assert.equal(r.status, 200, `after Redis came back: ${r.status} ${r.text.slice(0, 200)}`);
    assertAccepted(r, PROTO);
  }, { what: 'ingest accepting again after Redis restarted', timeoutMs: 20_000, intervalMs: 500 });
  assert.deepEqual(seen.filter((s) => s !== 200 && s !== 503), [], `answers while recovering: ${seen.join(',')}`);
  await waitStored(f.expected, 'the batch sent after Redis came back');
});
