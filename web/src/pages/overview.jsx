// overview.jsx: every project at a glance (health, errors, throughput, p95 each) and the
// cross-project comparison, both from GET /api/v1/analytics/cross-project.
import { useState } from 'preact/hooks';
import { call } from '../api.js';
import { useFetch, fmtNum, fmtMs, fmtPct } from '../util.js';
import { useQuery, timeWindow, keepRange, chartRange } from '../router.js';
import { Link, ErrorBox, Loading, Health, Chart, RangePicker, SortTh, sortRows } from '../components.jsx';
import { useSession } from '../session.js';

function useCross(query) {
  const w = timeWindow(query);
  return useFetch((signal) => call('/analytics/cross-project', { signal, query: { from: w.from, to: w.to } }), [query.toString()]);
}

export function Home() {
  const [query] = useQuery();
  const range = keepRange(query);
  const { me } = useSession();
  const cross = useCross(query);
  const projects = cross.data ? cross.data.projects : null;
  return (
    <section>
      <div class="page-head"><h1>All projects</h1><RangePicker /></div>
      <ErrorBox error={cross.error} what="the cross-project figures" />
      <Loading when={cross.loading && !cross.data && !cross.error} />
      {me.projects.length === 0 && <p class="notice">You are not a member of any project yet.</p>}
      <div class="cards">
        {(projects || me.projects).map((p) => (
          <article class="card project-card" aria-labelledby={`pc-${p.id}`}>
            <h2 id={`pc-${p.id}`}><Link href={`/p/${encodeURIComponent(p.slug)}${range}`}>{p.name}</Link></h2>
            {projects ? (
              <>
                <Health status={p.health} />
                <dl class="figs">
                  <div><dt>requests</dt><dd>{fmtNum(p.requests)}</dd></div>
                  <div><dt>req/s</dt><dd>{fmtNum(p.rps)}</dd></div>
                  <div><dt>errors</dt><dd class={p.errorRate > 0.05 ? 'bad' : ''}>{fmtPct(p.errorRate)}</dd></div>
                  <div><dt>p95</dt><dd>{fmtMs(p.p95)}</dd></div>
                  <div><dt>open issues</dt><dd>{fmtNum(p.openIssues)}</dd></div>
                  <div><dt>error logs</dt><dd>{fmtNum(p.logErrors)}</dd></div>
                </dl>
                {p.series && p.series.t && (
                  <Chart x={p.series.t.map((t) => t / 1000)} xRange={chartRange(timeWindow(query))} series={[{ label: 'requests', values: p.series.requests }]} height={70} title={`${p.name} requests`} />
                )}
              </>
            ) : <p class="muted small">{p.role}</p>}
          </article>
        ))}
      </div>
    </section>
  );
}

const METRICS = [['requests', 'requests', fmtNum], ['errorRate', 'error rate', fmtPct], ['p95', 'p95', fmtMs]];

export function Compare() {
  const [query, setQuery] = useQuery();
  const range = keepRange(query);
  const cross = useCross(query);
  const [sort, setSort] = useState({ key: 'requests', dir: 'desc' });
  const metric = METRICS.find((m) => m[0] === query.get('metric')) || METRICS[0];
  const ps = cross.data ? cross.data.projects : [];
  const withSeries = ps.filter((p) => p.series && p.series.t && p.series.t.length);
  const x = withSeries.length ? withSeries[0].series.t.map((t) => t / 1000) : [];
  const series = withSeries.map((p) => ({ label: p.slug, values: p.series[metric[0]] || [] }));
  return (
    <section>
      <div class="page-head"><h1>Compare projects</h1><RangePicker /></div>
      <ErrorBox error={cross.error} what="the cross-project comparison" />
      <Loading when={cross.loading && !cross.data && !cross.error} />
      {cross.data && (
        <>
          <div class="card">
            <div class="page-head">
              <h2>{metric[1]} per project</h2>
              <label class="inline">Metric
                <select value={metric[0]} onChange={(e) => setQuery({ metric: e.target.value })}>
                  {METRICS.map(([k, l]) => <option value={k}>{l}</option>)}
                </select>
              </label>
            </div>
            <Chart x={x} xRange={chartRange(timeWindow(query))} series={series} fmt={metric[2]} height={240} />
          </div>
          <table>
            <thead>
              <tr>
                <SortTh k="name" sort={sort} setSort={setSort}>project</SortTh>
                <SortTh k="health" sort={sort} setSort={setSort}>health</SortTh>
                <SortTh k="requests" sort={sort} setSort={setSort}>requests</SortTh>
                <SortTh k="rps" sort={sort} setSort={setSort}>req/s</SortTh>
                <SortTh k="errorRate" sort={sort} setSort={setSort}>error rate</SortTh>
                <SortTh k="p50" sort={sort} setSort={setSort}>p50</SortTh>
                <SortTh k="p95" sort={sort} setSort={setSort}>p95</SortTh>
                <SortTh k="p99" sort={sort} setSort={setSort}>p99</SortTh>
                <SortTh k="openIssues" sort={sort} setSort={setSort}>open issues</SortTh>
                <SortTh k="newIssues" sort={sort} setSort={setSort}>new issues</SortTh>
                <SortTh k="logErrors" sort={sort} setSort={setSort}>error logs</SortTh>
              </tr>
            </thead>
            <tbody>
              {sortRows(ps, sort).map((p) => (
                <tr>
                  <td><Link href={`/p/${encodeURIComponent(p.slug)}${range}`}>{p.name}</Link></td>
                  <td><Health status={p.health} /></td>
                  <td class="num">{fmtNum(p.requests)}</td><td class="num">{fmtNum(p.rps)}</td>
                  <td class="num">{fmtPct(p.errorRate)}</td><td class="num">{fmtMs(p.p50)}</td>
                  <td class="num">{fmtMs(p.p95)}</td><td class="num">{fmtMs(p.p99)}</td>
                  <td class="num">{fmtNum(p.openIssues)}</td><td class="num">{fmtNum(p.newIssues)}</td>
                  <td class="num">{fmtNum(p.logErrors)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
