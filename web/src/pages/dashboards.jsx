// dashboards.jsx: custom dashboards per project (GET/POST/PUT/DELETE .../dashboards):
// the list, a dashboard on a 12-column grid whose panels run metric, RED or log queries,
// and the panel editor (saved with the version the server gave, 409 on a conflict).
import { useState } from 'preact/hooks';
import { call, pp } from '../api.js';
import { useFetch, fmtNum, fmtMs, fmtPct } from '../util.js';
import { useQuery, timeWindow, keepRange, navigate, chartRange } from '../router.js';
import { Link, ErrorBox, Loading, Chart, RangePicker } from '../components.jsx';
import { useSession, roleOf, atLeast } from '../session.js';
import { AGGS, alignSeries, labelText } from './metrics.jsx';
import { logVolume } from './logs.jsx';

const TYPES = ['timeseries', 'stat', 'table', 'bar'];
const RED_FIELDS = ['requests', 'errors', 'errorRate', 'p50', 'p95', 'p99', 'rps'];

export function Dashboards({ project }) {
  const [query] = useQuery();
  const range = keepRange(query);
  const { me } = useSession();
  const canEdit = atLeast(roleOf(me, project), 'member');
  const list = useFetch((signal) => call(pp(project, '/dashboards'), { signal }), [project]);
  const [err, setErr] = useState(null);
  const base = `/p/${encodeURIComponent(project)}`;
  const create = async (e) => {
    e.preventDefault();
    const fd = new FormData(e.target);
    setErr(null);
    try {
      const r = await call(pp(project, '/dashboards'), { method: 'POST', body: { name: fd.get('name'), description: fd.get('description') || '', panels: [] } });
      navigate(`${base}/dashboards/${r.dashboard.id}${range}${range ? '&' : '?'}edit=1`);
    } catch (ex) { setErr(ex); }
  };
  return (
    <section>
      <h1>Dashboards</h1>
      <ErrorBox error={list.error} what="dashboards" />
      <Loading when={list.loading && !list.data} />
      {list.data && (list.data.dashboards.length === 0 ? <p class="muted">No dashboards yet.</p> : (
        <table>
          <thead><tr><th>name</th><th>description</th><th class="num">panels</th><th>updated</th></tr></thead>
          <tbody>
            {list.data.dashboards.map((d) => (
              <tr><td><Link href={`${base}/dashboards/${d.id}${range}`}>{d.name}</Link></td><td>{d.description}</td>
                <td class="num">{d.panelCount}</td><td>{d.updatedAt} {d.updatedBy && `by ${d.updatedBy}`}</td></tr>
            ))}
          </tbody>
        </table>
      ))}
      {canEdit && !(list.error && list.error.status === 404) && (
        <form class="card filters" onSubmit={create}>
          <h2 class="wide">New dashboard</h2>
          <label>Name<input name="name" required maxLength={200} /></label>
          <label>Description<input name="description" maxLength={200} /></label>
          <button class="btn primary" type="submit">Create</button>
          <ErrorBox error={err} what="the dashboard" doing="create" />
        </form>
      )}
    </section>
  );
}

let panelSeq = 0;
function newPanel(panels) {
  const y = panels.reduce((m, p) => Math.max(m, (p.layout.y || 0) + (p.layout.h || 4)), 0);
  panelSeq += 1;
  return {
    id: `p${Date.now().toString(36)}${panelSeq}`, title: 'New panel', type: 'timeseries',
    query: { source: 'metrics', metric: '', aggregation: 'sum', groupBy: [], filters: {} },
    layout: { x: 0, y, w: 6, h: 4 },
  };
}

export function DashboardView({ project, id }) {
  const [query, setQuery] = useQuery();
  const range = keepRange(query);
  const { me } = useSession();
  const canEdit = atLeast(roleOf(me, project), 'member');
  const editing = canEdit && query.get('edit') === '1';
  const dash = useFetch((signal) => call(pp(project, `/dashboards/${encodeURIComponent(id)}`), { signal }), [project, id]);
  const [draft, setDraft] = useState(null);
  const [editPanel, setEditPanel] = useState(null);
  const [err, setErr] = useState(null);
  const base = `/p/${encodeURIComponent(project)}`;
  if (dash.error) return <section><p><Link href={`${base}/dashboards${range}`}>← Dashboards</Link></p><ErrorBox error={dash.error} what="the dashboard" /></section>;
  if (!dash.data) return <Loading when />;
  const d = dash.data.dashboard;
  const panels = editing ? (draft || d.panels) : d.panels;
  const setPanels = (ps) => setDraft(ps);
  const save = async () => {
    setErr(null);
    try {
      const r = await call(pp(project, `/dashboards/${encodeURIComponent(id)}`), { method: 'PUT', body: { panels, version: d.version } });
      dash.setData(r);
      setDraft(null);
      setQuery({ edit: null });
    } catch (ex) { setErr(ex); }
  };
  const remove = async () => {
    if (!window.confirm(`Delete dashboard ${d.name}?`)) return;
    try { await call(pp(project, `/dashboards/${encodeURIComponent(id)}`), { method: 'DELETE' }); navigate(`${base}/dashboards${range}`); } catch (ex) { setErr(ex); }
  };
  const rows = Math.max(1, ...panels.map((p) => (p.layout.y || 0) + (p.layout.h || 4)));
  return (
    <section>
      <p><Link href={`${base}/dashboards${range}`}>← Dashboards</Link></p>
      <div class="page-head">
        <h1>{d.name}</h1>
        <RangePicker />
        {canEdit && !editing && <button class="btn" onClick={() => setQuery({ edit: '1' })}>Edit</button>}
        {editing && (
          <>
            <button class="btn" onClick={() => { const p = newPanel(panels); setPanels([...panels, p]); setEditPanel(p.id); }}>Add panel</button>
            <button class="btn primary" onClick={save}>Save</button>
            <button class="btn" onClick={() => { setDraft(null); setQuery({ edit: null }); }}>Cancel</button>
            <button class="btn danger" onClick={remove}>Delete</button>
          </>
        )}
      </div>
      {d.description && <p class="muted">{d.description}</p>}
      {err && err.code === 'version_conflict' ? <p class="error" role="alert">Someone else saved this dashboard meanwhile. <button class="btn small" onClick={() => { setDraft(null); dash.reload(); }}>Load their version</button> (your changes are lost)</p>
        : <ErrorBox error={err} what="the dashboard" doing="save" />}
      {panels.length === 0 && <p class="muted">No panels yet{canEdit ? ': Edit, then Add panel.' : '.'}</p>}
      <div class="dash-grid" style={{ gridTemplateRows: `repeat(${rows}, 60px)` }}>
        {panels.map((p) => (
          <div class="card dash-panel" style={{ gridColumn: `${(p.layout.x || 0) + 1} / span ${p.layout.w || 6}`, gridRow: `${(p.layout.y || 0) + 1} / span ${p.layout.h || 4}` }}>
            <div class="page-head">
              <h2>{p.title}</h2>
              {editing && <Arrange panel={p} onChange={(np) => setPanels(panels.map((x) => (x.id === np.id ? np : x)))} />}
              {editing && <button class="btn small" onClick={() => setEditPanel(p.id)}>Edit panel</button>}
            </div>
            <PanelBody project={project} panel={p} query={query} />
          </div>
        ))}
      </div>
      {editing && editPanel && panels.find((p) => p.id === editPanel) && (
        <PanelEditor panel={panels.find((p) => p.id === editPanel)}
          onChange={(np) => setPanels(panels.map((p) => (p.id === np.id ? np : p)))}
          onDelete={() => { setPanels(panels.filter((p) => p.id !== editPanel)); setEditPanel(null); }}
          onClose={() => setEditPanel(null)} />
      )}
    </section>
  );
}

// [label, name, change of the layout] of the arrange buttons; the grid keeps x + w <= 12.
const MOVES = [
  ['←', 'Move left', (l) => ({ x: Math.max(0, l.x - 1) })],
  ['→', 'Move right', (l) => ({ x: Math.min(12 - l.w, l.x + 1) })],
  ['↑', 'Move up', (l) => ({ y: Math.max(0, l.y - 1) })],
  ['↓', 'Move down', (l) => ({ y: Math.min(10000, l.y + 1) })],
  ['−', 'Narrower', (l) => ({ w: Math.max(1, l.w - 1) })],
  ['+', 'Wider', (l) => ({ w: Math.min(12 - l.x, l.w + 1) })],
];

/** Buttons that move and resize a panel on the grid (keyboard friendly, no dragging). */
function Arrange({ panel, onChange }) {
  const l = { x: 0, y: 0, w: 6, h: 4, ...panel.layout };
  return (
    <span class="arrange" role="group" aria-label={`Arrange ${panel.title}`}>
      {MOVES.map(([label, name, f]) => (
        <button class="btn small" title={name} aria-label={`${name}: ${panel.title}`}
          onClick={() => onChange({ ...panel, layout: { ...l, ...f(l) } })}>{label}</button>
      ))}
    </span>
  );
}

/** Runs a panel's query; resolves to {x, series} for charts (plus rows for tables). */
async function runPanel(project, q, w, signal) {
  if (q.source === 'metrics') {
    if (!q.metric) return { x: [], series: [] };
    const filter = Object.entries(q.filters || {}).map(([k, v]) => `${k}=${v}`).join(',');
    const r = await call(pp(project, '/metrics/query'), { signal, query: { name: q.metric, agg: q.aggregation, groupBy: (q.groupBy || []).join(','), filter, from: w.from, to: w.to } });
    return alignSeries(r, q.metric);
  }
  if (q.source === 'red') {
    if (!q.service) return { x: [], series: [] };
    const r = await call(pp(project, `/services/${encodeURIComponent(q.service)}/performance`), { signal, query: { from: w.from, to: w.to } });
    const eps = q.endpoint ? r.endpoints.filter((e) => e.operation === q.endpoint) : r.endpoints;
    const x = r.series.map((p) => p.timeUnixMs / 1000), step = (r.stepMs || 60000) / 1000;
    const f = q.field;
    const values = r.series.map((p) => (f === 'requests' ? p.requests : f === 'errors' ? p.errors
      : f === 'errorRate' ? (p.requests ? p.errors / p.requests : null) : f === 'rps' ? p.requests / step
        : f === 'p50' ? p.p50Ms : f === 'p99' ? p.p99Ms : p.p95Ms));
    const total = eps.reduce((a, e) => a + e.requests, 0), errs = eps.reduce((a, e) => a + e.errors, 0);
    const statKey = { p50: 'p50Ms', p95: 'p95Ms', p99: 'p99Ms' }[f];
    const stat = f === 'requests' ? total : f === 'errors' ? errs : f === 'errorRate' ? (total ? errs / total : null)
      : f === 'rps' ? eps.reduce((a, e) => a + e.rps, 0) : Math.max(0, ...eps.map((e) => e[statKey] || 0));
    return { x, series: [{ label: `${q.service} ${f}`, values }], stat, fmt: f === 'errorRate' ? fmtPct : statKey ? fmtMs : fmtNum };
  }
  if (q.source === 'logs') {
    // Every matching line counted per step by the server (GET .../logs/histogram).
    const h = await logVolume(project, { q: q.q, severity: q.severity, service: q.service }, w, signal);
    const counts = h.buckets.map((b) => b.count);
    return { x: h.buckets.map((b) => b.t / 1000), series: [{ label: 'log lines', values: counts }], stat: counts.reduce((a, c) => a + (c || 0), 0), capped: h.partial };
  }
  throw new Error(`unknown source ${q.source}`);
}

function PanelBody({ project, panel, query }) {
  const w = timeWindow(query);
  const res = useFetch((signal) => runPanel(project, panel.query, w, signal), [project, JSON.stringify(panel.query), query.toString()]);
  if (res.error) return <ErrorBox error={res.error} what="this panel" />;
  if (!res.data) return <Loading when />;
  const { x, series } = res.data;
  const fmt = res.data.fmt || fmtNum;
  const last = (s) => { for (let i = s.values.length - 1; i >= 0; i--) if (s.values[i] != null) return s.values[i]; return null; };
  if (panel.type === 'stat') {
    const v = res.data.stat !== undefined ? res.data.stat : series.length ? last(series[0]) : null;
    return <div class="stat big"><div class="stat-value">{fmt(v)}</div>{res.data.capped && <div class="muted small">at least</div>}</div>;
  }
  if (panel.type === 'table') {
    return (
      <table>
        <thead><tr><th>series</th><th class="num">last</th><th class="num">max</th></tr></thead>
        <tbody>{series.map((s) => <tr><td>{s.label}</td><td class="num">{fmt(last(s))}</td><td class="num">{fmt(Math.max(...s.values.filter((v) => v != null)))}</td></tr>)}</tbody>
      </table>
    );
  }
  const xRange = chartRange(w);
  return <Chart x={x} xRange={xRange} series={series} bars={panel.type === 'bar'} height={Math.max(80, (panel.layout.h || 4) * 60 - 90)} fmt={fmt} title={panel.title} />;
}

function PanelEditor({ panel, onChange, onDelete, onClose }) {
  const q = panel.query;
  const set = (patch) => onChange({ ...panel, ...patch });
  const setQ = (patch) => set({ query: { ...q, ...patch } });
  const setL = (k, v) => {
    const l = { ...panel.layout, [k]: Math.max(k === 'w' || k === 'h' ? 1 : 0, Math.min(k === 'x' ? 11 : k === 'w' ? 12 : k === 'y' ? 10000 : 100, Number(v) || 0)) };
    if (l.x + l.w > 12) { if (k === 'x') l.w = 12 - l.x; else l.x = 12 - l.w; } // the grid has 12 columns
    set({ layout: l });
  };
  const source = (s) => set({ query: s === 'metrics' ? { source: s, metric: '', aggregation: 'sum', groupBy: [], filters: {} }
    : s === 'red' ? { source: s, field: 'requests' } : { source: s } });
  const clean = (o) => { const r = {}; for (const [k, v] of Object.entries(o)) if (v !== '') r[k] = v; return r; };
  return (
    <aside class="panel" role="dialog" aria-label="Edit panel" onKeyDown={(e) => { if (e.key === 'Escape') onClose(); }}>
      <header class="panel-head"><h2>Edit panel</h2><button class="btn ghost" onClick={onClose} aria-label="Close panel">✕</button></header>
      <div class="panel-body form-col">
        <label>Title<input value={panel.title} maxLength={200} onInput={(e) => set({ title: e.target.value })} autoFocus /></label>
        <label>Type<select value={panel.type} onChange={(e) => set({ type: e.target.value })}>{TYPES.map((t) => <option value={t}>{t}</option>)}</select></label>
        <label>Source<select value={q.source} onChange={(e) => source(e.target.value)}>
          <option value="metrics">metric</option><option value="red">API performance (RED)</option><option value="logs">log count</option>
        </select></label>
        {q.source === 'metrics' && (
          <>
            <label>Metric<input value={q.metric} onInput={(e) => setQ({ metric: e.target.value })} /></label>
            <label>Aggregation<select value={q.aggregation} onChange={(e) => setQ({ aggregation: e.target.value })}>{AGGS.filter((a) => a !== 'last' && a !== 'p90').map((a) => <option value={a}>{a}</option>)}</select></label>
            <label>Group by (comma list)<input value={(q.groupBy || []).join(',')} onInput={(e) => setQ({ groupBy: e.target.value.split(',').map((s) => s.trim()).filter(Boolean) })} /></label>
            <label>Filters (k=v, comma list)<input value={labelText(q.filters, '').replace(/, /g, ',')}
              onChange={(e) => setQ({ filters: Object.fromEntries(e.target.value.split(',').map((s) => s.split('=')).filter((kv) => kv.length === 2 && kv[0].trim()).map(([k, v]) => [k.trim(), v.trim()])) })} /></label>
          </>
        )}
        {q.source === 'red' && (
          <>
            <label>Service<input value={q.service || ''} onInput={(e) => setQ(clean({ ...q, service: e.target.value }))} /></label>
            <label>Endpoint (optional)<input value={q.endpoint || ''} onInput={(e) => { const n = { ...q, endpoint: e.target.value }; onChange({ ...panel, query: clean(n) }); }} /></label>
            <label>Field<select value={q.field} onChange={(e) => setQ({ field: e.target.value })}>{RED_FIELDS.map((f) => <option value={f}>{f}</option>)}</select></label>
          </>
        )}
        {q.source === 'logs' && (
          <>
            <label>Search<input value={q.q || ''} onInput={(e) => onChange({ ...panel, query: clean({ ...q, q: e.target.value }) })} /></label>
            <label>Min severity<input value={q.severity || ''} placeholder="ERROR" onInput={(e) => onChange({ ...panel, query: clean({ ...q, severity: e.target.value }) })} /></label>
            <label>Service<input value={q.service || ''} onInput={(e) => onChange({ ...panel, query: clean({ ...q, service: e.target.value }) })} /></label>
          </>
        )}
        <fieldset class="layout-fields"><legend>Place on the 12-column grid</legend>
          {['x', 'y', 'w', 'h'].map((k) => <label>{{ x: 'column', y: 'row', w: 'width', h: 'height' }[k]}<input type="number" value={panel.layout[k]} onInput={(e) => setL(k, e.target.value)} /></label>)}
        </fieldset>
        <div><button class="btn danger" onClick={onDelete}>Remove panel</button> <button class="btn" onClick={onClose}>Done</button></div>
        <p class="muted small">Changes show at once; Save stores the dashboard.</p>
      </div>
    </aside>
  );
}
