// critpath.js: the critical path of a trace, computed in the browser for the waterfall.
// Plain JavaScript (no JSX, no DOM) so tests/e2e/critpath.test.mjs runs it under node.

/**
 * Critical path of a trace: from the root, the child that finished last before the cursor,
 * then the cursor moves to that child's start (Jaeger's method). Iterative, so a very deep
 * trace cannot overflow the stack. spans: [{spanId, parentSpanId, _start, _end}] (ms from
 * the trace's start). Returns a Set of span ids, empty for no spans; never throws.
 */
export function criticalPath(spans) {
  const byId = new Map(), kids = new Map();
  for (const s of spans) byId.set(s.spanId, s);
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId)) {
      if (!kids.has(s.parentSpanId)) kids.set(s.parentSpanId, []);
      kids.get(s.parentSpanId).push(s);
    }
  }
  // The trace's own root (no parent) wins over spans whose parent never arrived.
  const orphans = spans.filter((s) => !s.parentSpanId || !byId.has(s.parentSpanId));
  const roots = orphans.some((s) => !s.parentSpanId) ? orphans.filter((s) => !s.parentSpanId) : orphans;
  if (!roots.length) return new Set();
  const root = roots.reduce((a, b) => (b._end > a._end ? b : a));
  const path = new Set();
  const stack = [[root, root._end]];
  while (stack.length) {
    const [s, limit] = stack.pop();
    path.add(s.spanId);
    let cursor = Math.min(s._end, limit);
    const ch = (kids.get(s.spanId) || []).slice().sort((a, b) => b._end - a._end);
    for (const c of ch) {
      if (cursor <= s._start) break;
      if (c._start >= cursor) continue;
      stack.push([c, Math.min(c._end, cursor)]);
      cursor = c._start;
    }
  }
  return path;
}
