// critpath.test.mjs: the waterfall's critical path (web/src/critpath.js) on hand-made
// traces: sequential and overlapping children, a child outliving its parent, spans whose
// parent never arrived, and a 10,000-deep chain (no recursion limit). No stack needed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { criticalPath } from '../../web/src/critpath.js';

/** span(id, parent, start, end) in ms. */
const span = (spanId, parentSpanId, start, end) => ({ spanId, parentSpanId, _start: start, _end: end });
const ids = (set) => [...set].sort();

test('sequential children: every child that bounds the end of the next is on the path', () => {
  const spans = [span('r', '', 0, 100), span('a', 'r', 0, 30), span('b', 'r', 30, 60), span('c', 'r', 60, 100)];
  assert.deepEqual(ids(criticalPath(spans)), ['a', 'b', 'c', 'r']);
});

test('parallel children: only the one that finishes last (and what it waited on) counts', () => {
  const spans = [
    span('r', '', 0, 100),
    span('fast', 'r', 10, 40), span('slow', 'r', 10, 90),
    span('slow.db', 'slow', 20, 80), span('slow.cache', 'slow', 12, 15),
  ];
  assert.deepEqual(ids(criticalPath(spans)), ['r', 'slow', 'slow.cache', 'slow.db']);
});

test('a child that ends after its parent is on the path, clipped to the parent', () => {
  const spans = [span('r', '', 0, 50), span('async', 'r', 40, 200), span('early', 'r', 0, 20)];
  assert.deepEqual(ids(criticalPath(spans)), ['async', 'early', 'r']);
});

test('spans whose parent never arrived stay off the path of the real root', () => {
  const spans = [span('r', '', 0, 100), span('a', 'r', 0, 100), span('orphan', 'missing', 0, 500)];
  assert.deepEqual(ids(criticalPath(spans)), ['a', 'r']);
  // Without a real root, the orphan that ends last stands in for it.
  assert.deepEqual(ids(criticalPath([span('o1', 'x', 0, 10), span('o2', 'y', 0, 20)])), ['o2']);
});

test('empty input and a lone span', () => {
  assert.equal(criticalPath([]).size, 0);
  assert.deepEqual(ids(criticalPath([span('r', '', 0, 1)])), ['r']);
});

test('a 10,000-deep chain is walked without recursion', () => {
  const spans = [];
  for (let i = 0; i < 10_000; i++) spans.push(span(`s${i}`, i ? `s${i - 1}` : '', i, 20_000 - i));
  assert.equal(criticalPath(spans).size, 10_000);
});
