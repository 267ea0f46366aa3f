// backpressure.test.mjs: the ingest stream is never trimmed while unconsumed.
// With sextant-persist stopped and a small high-water mark, ingest accepts up
// to the mark, then answers 503 with a short Retry-After (never 500, never a
// silent drop); once persist catches up it accepts again and nothing that was
// accepted is lost.

import assert from 'node:assert/strict';
import { useStack, stackTest, eventually } from './lib/stack.mjs';
import { fixture, fixtureJson, jsonSpans, spanCountsByTrace, freshTraceIds, rewriteProtoTraceIds } from './lib/otlp.mjs';
import { PROTO, FIXTURE_WINDOW, assertAccepted, assertRpcStatus, assertTracesListed, byTraceId } from './lib/expect.mjs';

const HIGH_WATER = 10;
const stack = useStack('backpressure', { extraConf: `stream_high_water ${HIGH_WATER}` });

const COUNTS = spanCountsByTrace(jsonSpans(fixtureJson('traces-json.json')));
const PROTO_BODY = fixture('traces-proto.bin');

function freshFixture() {
  const map = freshTraceIds(COUNTS.keys());
  return { body: rewriteProtoTraceIds(PROTO_BODY, map), expected: new Map([...map].map(([o, n]) => [n, COUNTS.get(o)])) };
}

const accepted = new Map();
const refused = [];

stackTest(stack, `with persist stopped, ingest accepts at most ${HIGH_WATER} batches, then answers 503 with Retry-After 1..5`, async () => {
  await stack.control('stop', 'persist');
  let acceptedBatches = 0;
  for (let i = 0; i < 3 * HIGH_WATER && refused.length < 3; i++) {
    const f = freshFixture();
    const r = await stack.ingest(f.body, { contentType: PROTO });
    if (r.status === 200) {
      assert.equal(refused.length, 0, 'once over the mark, no batch is accepted while nothing is consumed');
      assertAccepted(r, PROTO);
      acceptedBatches++;
      for (const [id, n] of f.expected) accepted.set(id, n);
    } else {
      assertRpcStatus(r, 503, PROTO);
      const ra = String(r.headers['retry-after']);
      assert.match(ra, /^\d+$/, `Retry-After must be whole seconds, got ${ra}`);
      assert.ok(Number(ra) >= 1 && Number(ra) <= 5, `Retry-After ${ra} not in 1..5`);
      refused.push(...f.expected.keys());
    }
  }
  assert.ok(acceptedBatches >= 1, 'the first batches are accepted');
  assert.ok(acceptedBatches <= HIGH_WATER, `${acceptedBatches} batches accepted over a high-water mark of ${HIGH_WATER}`);
  assert.ok(refused.length > 0, `no 503 after ${acceptedBatches} batches with nothing consuming the stream`);
});

stackTest(stack, 'once persist is back, ingest accepts again and every accepted batch is stored (none of the refused ones)', async () => {
  assert.ok(accepted.size > 0 && refused.length > 0, 'the first test did not fill the stream');
  await stack.control('start', 'persist');
  const f = freshFixture();
  await eventually(async () => {
    const r = await stack.ingest(f.body, { contentType: PROTO });
    assert.ok(r.status === 200 || r.status === 503, `while draining: ${r.status} ${r.text.slice(0, 200)}`);
    assertAccepted(r, PROTO);
  }, { what: 'ingest accepting after persist drained the stream', timeoutMs: 30_000, intervalMs: 500 });
  for (const [id, n] of f.expected) accepted.set(id, n);
  await eventually(async () => {
    const listed = byTraceId((await stack.allTraces({ ...FIXTURE_WINDOW, limit: 1000 })).traces);
    assertTracesListed(listed, accepted);
    for (const id of refused) assert.ok(!listed.has(id), `refused trace ${id} was stored`);
    assert.equal(listed.size, accepted.size);
  }, { what: 'every accepted batch stored' });
});
