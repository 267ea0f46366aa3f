// expect.mjs: assertions on OTLP answers and trace lists shared by the e2e tests.

import assert from 'node:assert/strict';
import { decodeExportTraceResponse, decodeRpcStatus } from './otlp.mjs';

export const PROTO = 'application/x-protobuf';
export const JSONCT = 'application/json';

// The fixtures are dated 2026-01-01T00:00:00Z (base_time_ms 1767225600000) and
// span 27 s; this window holds them and nothing the SDK tests emit now.
export const FIXTURE_BASE_MS = 1767225600000;
export const FIXTURE_WINDOW = { from: '2025-12-31T23:59:00Z', to: '2026-01-01T00:10:00Z' };

function mediaType(res) {
  return String(res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/** rejectedSpans of a partial success as a number (the JSON mapping gives int64 as a string). */
export function rejectedOf(ps) {
  if (!ps) return 0;
  const v = ps.rejectedSpans ?? ps.rejected_spans ?? 0;
  assert.ok(typeof v === 'string' || typeof v === 'number', `rejectedSpans has type ${typeof v}`);
  assert.match(String(v), /^\d+$/, `rejectedSpans ${JSON.stringify(v)} is not an integer`);
  return Number(v);
}

/** Decodes a 200 ExportTraceServiceResponse in the request's encoding; returns {partialSuccess}. */
export function exportResponse(res, contentType) {
  assert.equal(res.status, 200, `expected 200, got ${res.status}: ${res.text.slice(0, 300)}`);
  assert.equal(mediaType(res), contentType, `answer Content-Type must be the request's (${contentType})`);
  if (contentType === PROTO) return decodeExportTraceResponse(res.body);
  const body = res.json();
  assert.equal(typeof body, 'object');
  assert.ok(body !== null && !Array.isArray(body), `answer is not a JSON object: ${res.text}`);
  return { partialSuccess: body.partialSuccess ?? null };
}

/** A 200 answer that rejected nothing. */
export function assertAccepted(res, contentType) {
  const { partialSuccess } = exportResponse(res, contentType);
  assert.equal(rejectedOf(partialSuccess), 0, `nothing should be rejected: ${JSON.stringify(partialSuccess)}`);
}

/** An error answer carrying google.rpc.Status in the request's encoding. */
export function assertRpcStatus(res, status, contentType) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text.slice(0, 300)}`);
  assert.equal(mediaType(res), contentType, `error Content-Type must be the request's (${contentType})`);
  let st;
  if (contentType === PROTO) st = decodeRpcStatus(res.body);
  else {
    st = res.json();
    assert.equal(typeof st.code, 'number', `Status.code must be a number: ${res.text}`);
  }
  assert.equal(typeof st.message, 'string');
  assert.ok(st.message.length > 0, `Status.message is empty: ${res.text}`);
  return st;
}

/** Map traceId -> list entry; asserts ids are unique in the list. */
export function byTraceId(traces) {
  const m = new Map();
  for (const t of traces) {
    assert.ok(!m.has(t.traceId), `trace ${t.traceId} listed twice`);
    m.set(t.traceId, t);
  }
  return m;
}

/** Asserts the listed traces hold every (new id -> expected span count). */
export function assertTracesListed(listed, expected) {
  const missing = [];
  const wrong = [];
  for (const [id, count] of expected) {
    const t = listed.get(id);
    if (!t) missing.push(id);
    else if (t.spanCount !== count) wrong.push(`${id}: spanCount ${t.spanCount}, expected ${count}`);
  }
  assert.ok(!missing.length && !wrong.length,
    `${missing.length} of ${expected.size} traces missing (${missing.slice(0, 3).join(', ')}…); ${wrong.length} with wrong counts: ${wrong.slice(0, 5).join('; ')}`);
}

/** Compare two unix-nano strings. */
export function cmpNano(a, b) {
  const d = BigInt(a) - BigInt(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** Asserts a list is newest first by startTimeUnixNano. */
export function assertNewestFirst(traces) {
  for (let i = 1; i < traces.length; i++) {
    assert.ok(cmpNano(traces[i - 1].startTimeUnixNano, traces[i].startTimeUnixNano) >= 0,
      `list not newest first at ${i}: ${traces[i - 1].startTimeUnixNano} then ${traces[i].startTimeUnixNano}`);
  }
}
