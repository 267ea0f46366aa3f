// traces.jsx: trace search (filters in the URL, refreshed by the live spans topic) and the
// trace waterfall: virtualized rows (only the visible ones are in the DOM, so 10,000 spans
// scroll smoothly), errors highlighted, the critical path computed here, a span panel with
// attributes and events, and the trace's logs.
import { useState, useMemo, useRef, useEffect, useCallback } from 'preact/hooks';
import { call, pp } from '../api.js';
import { useFetch, fmtNum, fmtMs, nsToMs, fmtTime, ago, bodyText, sevClass, valText } from '../util.js';
import { useQuery, timeWindow, keepRange, chartRange } from '../router.js';
import { Link, ErrorBox, Loading, RangePicker, Panel, Attrs, Chart } from '../components.jsx';
import { useLiveReload } from '../live.js';
import { Pager } from './issues.jsx';
import { criticalPath } from '../critpath.js';

/** The project's services in the window (for filter selects); [] while loading. */
export function useServices(project, w) {
  const r = useFetch((signal) => call(pp(project, '/services'), { signal, query: { from: w.from, to: w.to } }), [project, w.label]);
  return r.data ? r.data.services.map((s) => s.name) : [];
}

/** The service filter of a search form (name="service"), "any" first; keeps a value that
 * has no spans in the window so a shared link still shows it. */
export function ServiceFilter({ project, w, value }) {
  const services = useServices(project, w);
  return (
    <label>Service
      <select name="service">
        <option value="">any</option>
        {[...new Set([...services, value].filter(Boolean))].map((s) => <option value={s} selected={s === value}>{s}</option>)}
      </select>
    </label>
  );
}

export function Traces({ project }) {
  const [query, setQuery] = useQuery();
  const w = timeWindow(query);
  const range = keepRange(query);
  const [cursor, setCursor] = useState([]);
  const f = (k) => query.get(k) || '';
  const list = useFetch((signal) => call(pp(project, '/traces'), {
    signal,
    query: {
      service: f('service'), operation: f('operation'), status: f('status'),
      minDuration: f('minDuration'), maxDuration: f('maxDuration'), attr: f('attr'),
      from: w.from, to: w.to, limit: 50, cursor: cursor[cursor.length - 1],
    },
  }), [project, query.toString(), cursor.join()]);
  // Live: new spans refresh the first page (at most every 2 s), unless the window is fixed.
  useLiveReload(project, { topics: 'spans', service: f('service') }, list.reload, { enabled: !w.fixed && cursor.length === 0 });
  const submit = (e) => {
    e.preventDefault();
    const fd = new FormData(e.target);
    const patch = {};
    for (const k of ['service', 'operation', 'status', 'minDuration', 'maxDuration', 'attr']) patch[k] = fd.get(k);
    setCursor([]);
    setQuery(patch, { replace: false });
    list.reload();
  };
  const maxDur = list.data ? Math.max(1, ...list.data.traces.map((t) => t.durationMs)) : 1;
  const base = `/p/${encodeURIComponent(project)}`;
  return (
    <section>
      <div class="page-head"><h1>Traces</h1><RangePicker /></div>
      <form class="filters" onSubmit={submit} key={query.toString()}>
        <ServiceFilter project={project} w={w} value={f('service')} />
        <label>Operation<input name="operation" defaultValue={f('operation')} placeholder="span name" /></label>
        <label>Status
          <select name="status">
            {['', 'error', 'ok'].map((v) => <option value={v} selected={v === f('status')}>{v || 'any'}</option>)}
          </select>
        </label>
        <label>Min ms<input name="minDuration" type="number" min="0" class="short" defaultValue={f('minDuration')} /></label>
        <label>Max ms<input name="maxDuration" type="number" min="0" class="short" defaultValue={f('maxDuration')} /></label>
        <label>Attribute<input name="attr" defaultValue={f('attr')} placeholder="key=value" /></label>
        <button class="btn primary" type="submit">Search</button>
        <button class="btn" type="button" onClick={() => list.reload()}>Refresh</button>
      </form>
      <ErrorBox error={list.error} what="traces" />
      <Loading when={list.loading && !list.data} />
      {list.data && list.data.partial && <p class="notice">The search stopped early (many traces in the range): narrow it or go to the next page.</p>}
      {list.data && list.data.traces.length > 1 && <DurationScatter traces={list.data.traces} xRange={chartRange(w)} />}
      {list.data && (list.data.traces.length === 0 ? <p class="muted">No traces match.</p> : (
        <table class="traces" aria-label="Traces">
          <thead><tr><th>trace</th><th>start</th><th class="num">spans</th><th class="num">errors</th><th>duration</th></tr></thead>
          <tbody>
            {list.data.traces.map((t) => (
              <tr class={t.errorCount ? 'row-error' : ''}>
                <td>
                  <Link href={`${base}/traces/${t.traceId}${range}`} class="trace-link">
                    <b>{t.rootService}</b> {t.rootName || '(no root)'}
                  </Link>
                  <div class="muted small mono">{t.traceId}</div>
                </td>
                <td title={fmtTime(nsToMs(t.startTimeUnixNano))}>{ago(nsToMs(t.startTimeUnixNano))}</td>
                <td class="num">{fmtNum(t.spanCount)}</td>
                <td class="num">{t.errorCount ? <span class="bad">{t.errorCount}</span> : 0}</td>
                <td class="dur"><span class="dur-bar" style={{ width: `${Math.max(1, (100 * t.durationMs) / maxDur)}%` }} />{fmtMs(t.durationMs)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
      <Pager cursor={cursor} setCursor={setCursor} next={list.data && list.data.nextCursor} />
    </section>
  );
}

/** The page's traces as points: start time against duration, traces with errors apart. */
function DurationScatter({ traces, xRange }) {
  const data = useMemo(() => {
    const pts = traces.map((t) => [nsToMs(t.startTimeUnixNano) / 1000, t.durationMs, t.errorCount > 0])
      .sort((a, b) => a[0] - b[0]);
    return {
      x: pts.map((p) => p[0]),
      series: [
        { label: 'ok', values: pts.map((p) => (p[2] ? null : p[1])) },
        { label: 'with errors', values: pts.map((p) => (p[2] ? p[1] : null)) },
      ],
    };
  }, [traces]);
  return <div class="card"><Chart x={data.x} xRange={xRange} series={data.series} scatter height={150} fmt={fmtMs} title="Trace durations" /></div>;
}

const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

const ROW_H = 26, OVERSCAN = 12;

export function TraceDetail({ project, traceId }) {
  const [query, setQuery] = useQuery();
  const range = keepRange(query);
  const tr = useFetch((signal) => call(pp(project, `/traces/${encodeURIComponent(traceId)}`), { signal }), [project, traceId]);
  const selected = query.get('span') || '';
  const select = useCallback((id) => setQuery({ span: id || null }), []);
  const base = `/p/${encodeURIComponent(project)}`;
  const d = tr.data;
  const model = useMemo(() => {
    if (!d) return null;
    const spans = d.spans.map((s) => ({ ...s, _start: s.offsetMs, _end: s.offsetMs + s.durationMs }));
    const total = Math.max(d.durationMs, ...spans.map((s) => s._end), 0.001);
    const services = [...new Set(spans.map((s) => s.service))];
    return { spans, total, crit: criticalPath(spans), services, byId: new Map(spans.map((s) => [s.spanId, s])) };
  }, [d]);
  // The trace's logs: the logs API filtered by traceId, around the trace's time.
  const startMs = d ? nsToMs(d.startTimeUnixNano) : 0;
  const logs = useFetch((signal) => (d ? call(pp(project, '/logs'), {
    signal, query: { traceId, from: startMs - 3600e3, to: Math.ceil(startMs + d.durationMs + 3600e3), limit: 200 },
  }) : Promise.resolve(null)), [project, traceId, !!d]);
  if (tr.error) return <section><p><Link href={`${base}/traces${range}`}>← Traces</Link></p><ErrorBox error={tr.error} what={`trace ${traceId}`} /></section>;
  if (!d || !model) return <Loading when />;
  const span = selected ? model.byId.get(selected) : null;
  const logRows = logs.data ? logs.data.logs : [];
  return (
    <section class={span ? 'with-panel' : ''}>
      <p><Link href={`${base}/traces${range}`}>← Traces</Link></p>
      <div class="page-head">
        <h1><b>{d.rootService}</b> {d.rootName}</h1>
      </div>
      <p class="muted">
        <span class="mono">{d.traceId}</span> · {fmtTime(startMs)} · {fmtMs(d.durationMs)} · {fmtNum(d.spanCount)} spans ·{' '}
        <span class={d.errorCount ? 'bad' : ''}>{d.errorCount} error{d.errorCount === 1 ? '' : 's'}</span> · {d.services.join(', ')} · {d.logCount} logs
        {d.spansTruncated && <> · <span class="bad">showing the first {d.spans.length} spans</span></>}
      </p>
      <p class="legend small"><span class="swatch crit" /> critical path <span class="swatch err" /> error</p>
      <Waterfall model={model} selected={selected} onSelect={select} />
      <div class="card">
        <h2>Logs of this trace</h2>
        <ErrorBox error={logs.error} what="the trace's logs" />
        <LogTable rows={logRows} onSpan={select} />
      </div>
      {span && (
        <Panel title={span.name} onClose={() => select(null)}>
          <SpanDetails span={span} logs={logRows.filter((l) => l.spanId === span.spanId)} traceStartMs={startMs} />
        </Panel>
      )}
    </section>
  );
}

/** The virtualized waterfall: a fixed-height scroller with only visible rows rendered. */
function Waterfall({ model, selected, onSelect }) {
  const scroller = useRef(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [collapsed, setCollapsed] = useState(() => new Set());
  const rows = useMemo(() => {
    if (!collapsed.size) return model.spans;
    const out = [];
    let hideBelow = -1;
    for (const s of model.spans) {
      if (hideBelow >= 0 && s.depth > hideBelow) continue;
      hideBelow = -1;
      out.push(s);
      if (collapsed.has(s.spanId)) hideBelow = s.depth;
    }
    return out;
  }, [model, collapsed]);
  const hasKids = useMemo(() => {
    const set = new Set();
    for (const s of model.spans) if (s.parentSpanId) set.add(s.parentSpanId);
    return set;
  }, [model]);
  useEffect(() => {
    const el = scroller.current;
    if (!el) return undefined;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
  const colour = (svc) => `var(--c${(model.services.indexOf(svc) % 6) + 1})`;
  const toggle = (id) => setCollapsed((c) => { const n = new Set(c); if (n.has(id)) n.delete(id); else n.add(id); return n; });
  // Up/Down/Home/End move between rows; the focused row scrolls into view.
  const onKey = (e, idx) => {
    const id = rows[idx].spanId;
    // Left / right fold and unfold a span's subtree, as in a tree view.
    if ((e.key === 'ArrowLeft' && !collapsed.has(id)) || (e.key === 'ArrowRight' && collapsed.has(id))) {
      if (hasKids.has(id)) { e.preventDefault(); toggle(id); }
      return;
    }
    let to = -1;
    if (e.key === 'ArrowDown') to = Math.min(rows.length - 1, idx + 1);
    else if (e.key === 'ArrowUp') to = Math.max(0, idx - 1);
    else if (e.key === 'Home') to = 0;
    else if (e.key === 'End') to = rows.length - 1;
    if (to < 0) return;
    e.preventDefault();
    const el = scroller.current;
    if (to * ROW_H < el.scrollTop) el.scrollTop = to * ROW_H;
    else if ((to + 1) * ROW_H > el.scrollTop + el.clientHeight) el.scrollTop = (to + 1) * ROW_H - el.clientHeight;
    // The target row is usually rendered already (overscan): focus it now, so fast key
    // repeats move on from it; a far jump (Home/End) waits for the rows to render.
    const focusRow = (tries) => {
      const b = el.querySelector(`[data-idx="${to}"] .wf-name`);
      if (b) b.focus({ preventScroll: true });
      else if (tries > 0) requestAnimationFrame(() => focusRow(tries - 1));
    };
    focusRow(10);
  };
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  // Find: spans whose name, service or attribute values contain the text; Enter or the
  // arrows jump from one to the next (scrolled into view and focused).
  const [find, setFind] = useState('');
  const [hit, setHit] = useState(0);
  const matches = useMemo(() => {
    const q = find.trim().toLowerCase();
    if (!q) return [];
    const out = [];
    rows.forEach((s, i) => {
      if (s.name.toLowerCase().includes(q) || s.service.toLowerCase().includes(q) ||
          Object.values(s.attributes || {}).some((v) => String(v).toLowerCase().includes(q))) out.push(i);
    });
    return out;
  }, [rows, find]);
  const matchSet = useMemo(() => new Set(matches.map((i) => rows[i].spanId)), [matches, rows]);
  const jump = (n) => {
    if (!matches.length) return;
    const k = ((n % matches.length) + matches.length) % matches.length;
    setHit(k);
    const to = matches[k], el = scroller.current;
    el.scrollTop = Math.max(0, to * ROW_H - el.clientHeight / 2);
    setTop(el.scrollTop);
  };
  return (
    <div class="waterfall card">
      <form class="wf-find" role="search" onSubmit={(e) => { e.preventDefault(); jump(hit + 1); }}>
        <label class="inline small">Find span
          <input type="search" value={find} placeholder="name, service, attribute"
            onInput={(e) => { setFind(e.target.value); setHit(-1); }} />
        </label>
        {find.trim() && <span class="small muted" role="status">{matches.length ? `${hit >= 0 ? hit + 1 : 0} of ${matches.length}` : 'no match'}</span>}
        <button type="button" class="btn small" disabled={!matches.length} onClick={() => jump(hit - 1)} aria-label="Previous match">↑</button>
        <button type="submit" class="btn small" disabled={!matches.length} aria-label="Next match">↓</button>
      </form>
      <div class="wf-head" aria-hidden="true">
        <div class="wf-left">span</div>
        <div class="wf-right">{ticks.map((t) => <span style={{ left: `${t * 100}%` }}>{fmtMs(t * model.total)}</span>)}</div>
      </div>
      <div class="wf-scroll" ref={scroller} onScroll={(e) => setTop(e.currentTarget.scrollTop)}
        style={{ height: `min(65vh, ${rows.length * ROW_H + 2}px)` }}
        role="tree" aria-label={`Waterfall, ${rows.length} spans`} data-rows={rows.length}>
        <div style={{ height: `${rows.length * ROW_H}px`, position: 'relative' }}>
          {rows.slice(first, last).map((s, k) => {
            const idx = first + k;
            const err = s.status && s.status.code === 2;
            const crit = model.crit.has(s.spanId);
            const left = (100 * s._start) / model.total, width = Math.max(0.15, (100 * s.durationMs) / model.total);
            return (
              <div key={s.spanId} class={`wf-row${selected === s.spanId ? ' sel' : ''}${err ? ' err' : ''}${matchSet.has(s.spanId) ? ' match' : ''}${hit >= 0 && matches[hit] === idx ? ' hit' : ''}`} data-idx={idx} data-span={s.spanId}
                style={{ top: `${idx * ROW_H}px` }} role="treeitem" aria-level={s.depth + 1} aria-selected={selected === s.spanId}
                aria-expanded={hasKids.has(s.spanId) ? !collapsed.has(s.spanId) : undefined}>
                <div class="wf-left" style={{ paddingLeft: `${4 + Math.min(s.depth, 40) * 12}px` }}>
                  {hasKids.has(s.spanId) ? (
                    <button class="wf-tog" aria-label={collapsed.has(s.spanId) ? 'Expand' : 'Collapse'} tabIndex={-1}
                      onClick={() => toggle(s.spanId)}>{collapsed.has(s.spanId) ? '▸' : '▾'}</button>
                  ) : <span class="wf-tog" />}
                  <button class="wf-name" onClick={() => onSelect(s.spanId)} onKeyDown={(e) => onKey(e, idx)}
                    title={`${s.service}: ${s.name}`}>
                    <span class="svc-dot" style={{ background: colour(s.service) }} />
                    <span class="svc">{s.service}</span> {s.name}
                  </button>
                </div>
                <div class="wf-right">
                  <span class={`wf-bar${crit ? ' crit' : ''}${err ? ' err' : ''}`}
                    style={{ left: `${left}%`, width: `${width}%`, background: err ? undefined : colour(s.service) }} />
                  {/* The duration after the bar, or before it when the bar reaches the right edge. */}
                  <span class="wf-dur" style={left + width > 85 ? { right: `${100 - left}%`, paddingRight: '4px' } : { left: `${left + width}%` }}>{fmtMs(s.durationMs)}</span>
                </div>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}

function SpanDetails({ span, logs, traceStartMs }) {
  const err = span.status && span.status.code === 2;
  return (
    <div class="span-details">
      <table class="kv">
        <tbody>
          <tr><th scope="row">service</th><td>{span.service}</td></tr>
          <tr><th scope="row">kind</th><td>{KINDS[span.kind] || span.kind}</td></tr>
          <tr><th scope="row">duration</th><td>{fmtMs(span.durationMs)} (at +{fmtMs(span.offsetMs)})</td></tr>
          <tr><th scope="row">status</th><td class={err ? 'bad' : ''}>{['unset', 'ok', 'error'][span.status.code] || span.status.code}{span.status.message ? `: ${span.status.message}` : ''}</td></tr>
          <tr><th scope="row">span id</th><td class="mono">{span.spanId}</td></tr>
          <tr><th scope="row">parent</th><td class="mono">{span.parentSpanId || '–'}</td></tr>
          <tr><th scope="row">scope</th><td>{span.scope && span.scope.name} {span.scope && span.scope.version}</td></tr>
        </tbody>
      </table>
      <h3>Attributes</h3>
      <Attrs attrs={span.attributes} />
      <h3>Events ({(span.events || []).length})</h3>
      {(span.events || []).map((e) => (
        <details open={e.name === 'exception'}>
          <summary>{e.name} <span class="muted small">{e.timeUnixNano ? `+${fmtMs(nsToMs(e.timeUnixNano) - traceStartMs)}` : ''}</span></summary>
          {e.attributes && e.attributes['exception.stacktrace'] ? (
            <>
              <Attrs attrs={Object.fromEntries(Object.entries(e.attributes).filter(([k]) => k !== 'exception.stacktrace'))} />
              <pre class="stack">{valText(e.attributes['exception.stacktrace'])}</pre>
            </>
          ) : <Attrs attrs={e.attributes} />}
        </details>
      ))}
      {(span.links || []).length > 0 && <><h3>Links</h3><pre class="small">{JSON.stringify(span.links, null, 1)}</pre></>}
      <h3>Logs of this span ({logs.length})</h3>
      <LogTable rows={logs} />
      <h3>Resource</h3>
      <Attrs attrs={span.resource} />
    </div>
  );
}

/** Log rows (time, severity, service, body), the span button when onSpan is given, else the
 * trace link under base; a row's toggle shows its attributes, resource and ids. */
export function LogTable({ rows, onSpan, base, range }) {
  const [open, setOpen] = useState(() => new Set());
  if (!rows.length) return <p class="muted">No logs.</p>;
  const key = (l) => `${l.timeUnixNano}|${l.spanId}|${l.service}`;
  const toggle = (k) => setOpen((o) => { const n = new Set(o); if (n.has(k)) n.delete(k); else n.add(k); return n; });
  const cols = (onSpan || base) ? 6 : 5;
  return (
    <table class="logs" aria-label="Logs">
      <thead><tr><th><span class="sr-only">details</span></th><th>time</th><th>severity</th><th>service</th><th>body</th>{(onSpan || base) && <th>trace</th>}</tr></thead>
      <tbody>
        {rows.map((l) => {
          const k = key(l), isOpen = open.has(k);
          return [
            <tr class={sevClass(l.severityNumber)} key={k}>
              <td><button class="wf-tog" aria-expanded={isOpen} aria-label="Details" onClick={() => toggle(k)}>{isOpen ? '▾' : '▸'}</button></td>
              <td class="mono small nowrap">{fmtTime(nsToMs(l.timeUnixNano))}</td>
              <td><span class="sev">{l.severityText || l.severityNumber || '–'}</span></td>
              <td>{l.service}</td>
              <td class="body">{bodyText(l.body)}</td>
              {onSpan && <td>{l.spanId && <button class="btn ghost small" onClick={() => onSpan(l.spanId)}>span</button>}</td>}
              {base && !onSpan && <td>{l.traceId && <Link href={`${base}/traces/${l.traceId}${range || ''}`}>trace</Link>}</td>}
            </tr>,
            isOpen && (
              <tr class="log-details" key={`${k}-d`}>
                <td colSpan={cols}>
                  <h3>Attributes</h3>
                  <Attrs attrs={{ traceId: l.traceId || undefined, spanId: l.spanId || undefined, ...l.attributes }} />
                  {l.resource && Object.keys(l.resource).length > 0 && <><h3>Resource</h3><Attrs attrs={l.resource} /></>}
                </td>
              </tr>
            ),
          ];
        })}
      </tbody>
    </table>
  );
}
