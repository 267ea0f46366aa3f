// perf.jsx: API performance of one service (endpoints with p50/p95/p99, error rate, status
// classes and health; requests/p95 over time; slow database statements) and the service
// map, laid out by dagre and drawn as SVG.
import { useState, useMemo } from 'preact/hooks';
import { call, pp } from '../api.js';
import { useFetch, fmtNum, fmtMs, fmtPct } from '../util.js';
import { useQuery, timeWindow, keepRange, chartRange } from '../router.js';
import { Link, ErrorBox, Loading, Chart, RangePicker, Health, SortTh, sortRows } from '../components.jsx';
import { useServices } from './traces.jsx';

export function Performance({ project }) {
  const [query, setQuery] = useQuery();
  const w = timeWindow(query);
  const range = keepRange(query);
  const services = useServices(project, w);
  const service = query.get('service') || services[0] || '';
  const [sort, setSort] = useState({ key: 'requests', dir: 'desc' });
  const perf = useFetch((signal) => (service ? call(pp(project, `/services/${encodeURIComponent(service)}/performance`), { signal, query: { from: w.from, to: w.to } }) : Promise.resolve(null)), [project, service, query.toString()]);
  const health = useFetch((signal) => (service ? call(pp(project, '/health'), { signal, query: { service } }) : Promise.resolve(null)), [project, service]);
  const db = useFetch((signal) => (service ? call(pp(project, `/services/${encodeURIComponent(service)}/database`), { signal, query: { from: w.from, to: w.to, limit: 20 } }) : Promise.resolve(null)), [project, service, query.toString()]);
  const hmap = new Map(((health.data && health.data.endpoints) || []).map((e) => [e.operation, e]));
  const rows = perf.data ? perf.data.endpoints.map((e) => ({ ...e, health: (hmap.get(e.operation) || {}).status || 'unknown', reason: (hmap.get(e.operation) || {}).reason })) : [];
  const s = perf.data ? perf.data.series : [];
  const x = s.map((p) => p.timeUnixMs / 1000);
  const xRange = chartRange(w);
  const base = `/p/${encodeURIComponent(project)}`;
  return (
    <section>
      <div class="page-head"><h1>API performance</h1><RangePicker /></div>
      <ServiceMap project={project} w={w} current={service} onPick={(svc) => setQuery({ service: svc })} />
      <div class="filters">
        <label>Service
          <select value={service} onChange={(e) => setQuery({ service: e.target.value })}>
            {[...new Set([...services, service].filter(Boolean))].map((v) => <option value={v}>{v}</option>)}
          </select>
        </label>
        {health.data && health.data.summary && (
          <span class="muted">{`${health.data.summary.healthy} healthy · ${health.data.summary.degraded} degraded · ${health.data.summary.failing} failing (last 15 min)`}</span>
        )}
      </div>
      {!service && <p class="muted">No services with spans in this range.</p>}
      <ErrorBox error={perf.error} what="the service's performance" />
      <Loading when={service && perf.loading && !perf.data} />
      {perf.data && (
        <>
          <div class="grid2">
            <div class="card"><h2>Requests and errors</h2><Chart x={x} xRange={xRange} bars series={[{ label: 'requests', values: s.map((p) => p.requests) }, { label: 'errors', values: s.map((p) => p.errors) }]} /></div>
            <div class="card"><h2>p95</h2><Chart x={x} xRange={xRange} fmt={fmtMs} series={[{ label: 'p95', values: s.map((p) => p.p95Ms) }]} /></div>
          </div>
          {rows.length === 0 && <p class="muted">No requests to this service's endpoints in this range.</p>}
          {rows.length > 0 && <table class="endpoints" aria-label="Endpoints">
            <thead>
              <tr>
                <SortTh k="operation" sort={sort} setSort={setSort}>endpoint</SortTh>
                <SortTh k="health" sort={sort} setSort={setSort}>health</SortTh>
                <SortTh k="requests" sort={sort} setSort={setSort}>requests</SortTh>
                <SortTh k="rps" sort={sort} setSort={setSort}>req/s</SortTh>
                <SortTh k="errorRate" sort={sort} setSort={setSort}>error rate</SortTh>
                <th>2xx / 3xx / 4xx / 5xx</th>
                <SortTh k="p50Ms" sort={sort} setSort={setSort}>p50</SortTh>
                <SortTh k="p95Ms" sort={sort} setSort={setSort}>p95</SortTh>
                <SortTh k="p99Ms" sort={sort} setSort={setSort}>p99</SortTh>
              </tr>
            </thead>
            <tbody>
              {sortRows(rows, sort).map((e) => (
                <tr>
                  <td><Link href={`${base}/traces?service=${encodeURIComponent(service)}&operation=${encodeURIComponent(e.operation)}${range.replace('?', '&')}`}>{e.operation}</Link> <span class="muted small">{e.kind}</span></td>
                  <td title={e.reason}><Health status={e.health} /></td>
                  <td class="num">{fmtNum(e.requests)}</td><td class="num">{fmtNum(e.rps)}</td>
                  <td class={`num ${e.errorRate > 0.05 ? 'bad' : ''}`}>{fmtPct(e.errorRate)}</td>
                  <td class="num small">{`${fmtNum(e.s2xx)} / ${fmtNum(e.s3xx)} / ${fmtNum(e.s4xx)} / ${fmtNum(e.s5xx)}`}</td>
                  <td class="num">{fmtMs(e.p50Ms)}</td><td class="num">{fmtMs(e.p95Ms)}</td><td class="num">{fmtMs(e.p99Ms)}</td>
                </tr>
              ))}
            </tbody>
          </table>}
        </>
      )}
      {db.data && db.data.statements.length > 0 && (
        <div class="card">
          <h2>Database statements (slowest p95 first)</h2>
          <table>
            <thead><tr><th>statement</th><th>system</th><th class="num">calls</th><th class="num">error rate</th><th class="num">p95</th></tr></thead>
            <tbody>
              {db.data.statements.map((st) => (
                <tr><td class="mono small">{st.statement}</td><td>{st.dbSystem}</td><td class="num">{fmtNum(st.calls)}</td>
                  <td class="num">{fmtPct(st.errorRate)}</td><td class="num">{fmtMs(st.p95Ms)}</td></tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** The service map: dagre lays out services (nodes) and calls (edges); SVG draws them. */
function ServiceMap({ project, w, current, onPick }) {
  const map = useFetch((signal) => call(pp(project, '/service-map'), { signal, query: { from: w.from, to: w.to } }), [project, w.label]);
  // dagre is loaded with the first map that has nodes (its own chunk, not in the first page).
  const lib = useFetch(() => (map.data && map.data.nodes.length ? import('@dagrejs/dagre').then((m) => m.default || m) : null), [!!(map.data && map.data.nodes.length)]);
  const dagre = lib.data;
  const layout = useMemo(() => {
    if (!dagre || !map.data || !map.data.nodes.length) return null;
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: 'LR', nodesep: 40, ranksep: 170, marginx: 10, marginy: 20 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of map.data.nodes) g.setNode(n.service, { width: Math.max(90, n.service.length * 8 + 20), height: 36 });
    for (const e of map.data.edges) g.setEdge(e.from, e.to, { e });
    dagre.layout(g);
    return g;
  }, [map.data, dagre]);
  return (
    <div class="card">
      <h2>Service map</h2>
      <ErrorBox error={map.error} what="the service map" />
      <ErrorBox error={lib.error} what="the map layout" />
      {map.data && !map.data.nodes.length && <p class="muted">No calls between services in this range.</p>}
      {layout && (
        <svg class="svcmap" width={layout.graph().width} height={layout.graph().height} role="group" aria-label="Service map">
          <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" class="arrow" /></marker></defs>
          {layout.edges().map((ed) => {
            const e = layout.edge(ed);
            const pts = e.points.map((p) => `${p.x},${p.y}`).join(' ');
            const mid = e.points[Math.floor(e.points.length / 2)];
            const bad = e.e.errorRate > 0.05;
            return (
              <g>
                <polyline points={pts} class={`edge${bad ? ' bad' : ''}`} marker-end="url(#arrow)" />
                <text x={mid.x} y={mid.y - 6} class="edge-label">{`${fmtNum(e.e.calls)} · ${fmtPct(e.e.errorRate)} · ${fmtMs(e.e.p95Ms)}`}</text>
              </g>
            );
          })}
          {layout.nodes().map((id) => {
            const n = layout.node(id);
            return (
              <g class={`node${id === current ? ' cur' : ''}`} tabIndex={0} role="button" aria-label={`Service ${id}`}
                onClick={() => onPick(id)} onKeyDown={(e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onPick(id); } }}>
                <rect x={n.x - n.width / 2} y={n.y - n.height / 2} width={n.width} height={n.height} rx="6" />
                <text x={n.x} y={n.y + 4} text-anchor="middle">{id}</text>
              </g>
            );
          })}
        </svg>
      )}
    </div>
  );
}
