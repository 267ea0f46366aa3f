// project.jsx: a project's overview: totals, requests/errors/p95 over time, top endpoints
// and issues (GET .../overview); falls back to issue stats and services without it.
import { call, pp } from '../api.js';
import { useFetch, fmtNum, fmtMs, fmtPct, nsToMs, ago } from '../util.js';
import { useQuery, timeWindow, keepRange, chartRange } from '../router.js';
import { Link, ErrorBox, Loading, Stat, Health, Chart, RangePicker } from '../components.jsx';
import { useLiveReload } from '../live.js';

/** Turns {t:[ms], a:[...], b:[...]} into uPlot x (seconds) and series. */
export function seriesOf(s, keys, labels) {
  if (!s || !s.t) return { x: [], series: [] };
  return { x: s.t.map((t) => t / 1000), series: keys.map((k, i) => ({ label: labels[i], values: s[k] || [] })) };
}

export function ProjectOverview({ project }) {
  const [query] = useQuery();
  const w = timeWindow(query);
  const range = keepRange(query);
  const ov = useFetch((signal) => call(pp(project, '/overview'), { query: { from: w.from, to: w.to }, signal }), [project, query.toString()]);
  // New issues and new requests refresh the figures (at most every 10 s).
  useLiveReload(project, { topics: 'spans,issues' }, ov.reload, { enabled: !w.fixed, delayMs: 10000 });
  const base = `/p/${encodeURIComponent(project)}`;
  return (
    <section>
      <div class="page-head">
        <h1>{project}</h1>
        <RangePicker />
      </div>
      <Loading when={ov.loading && !ov.data && !ov.error} />
      {ov.error && ov.error.status === 404 ? <Fallback project={project} w={w} base={base} range={range} />
        : <ErrorBox error={ov.error} what="the overview" />}
      {ov.data && <OverviewBody d={ov.data} base={base} range={range} xRange={chartRange(w)} />}
    </section>
  );
}

function OverviewBody({ d, base, range, xRange }) {
  const t = d.totals || {};
  const req = seriesOf(d.series, ['requests', 'errors'], ['requests', 'errors']);
  const p95 = seriesOf(d.series, ['p95'], ['p95 ms']);
  return (
    <>
      <div class="stats">
        <Stat label="health" value={<Health status={d.health} />} />
        <Stat label="requests" value={fmtNum(t.requests)} />
        <Stat label="error rate" value={fmtPct(t.errorRate)} tone={t.errorRate > 0.05 ? 'bad' : ''} />
        <Stat label="req/s" value={fmtNum(t.rps)} />
        <Stat label="p50 / p95 / p99" value={`${fmtMs(t.p50)} / ${fmtMs(t.p95)} / ${fmtMs(t.p99)}`} />
        <Stat label="services" value={fmtNum(t.services)} />
        <Stat label="open issues" value={fmtNum(t.openIssues)} />
        <Stat label="new issues" value={fmtNum(t.newIssues)} />
        <Stat label="error logs" value={fmtNum(t.logErrors)} />
      </div>
      <div class="grid2">
        <div class="card"><h2>Requests and errors</h2><Chart x={req.x} xRange={xRange} series={req.series} bars /></div>
        <div class="card"><h2>p95 latency</h2><Chart x={p95.x} xRange={xRange} series={p95.series} fmt={fmtMs} /></div>
      </div>
      <div class="grid2">
        <div class="card">
          <h2>Top endpoints</h2>
          <table>
            <thead><tr><th>service</th><th>endpoint</th><th class="num">requests</th><th class="num">error rate</th><th class="num">p95</th></tr></thead>
            <tbody>
              {(d.topEndpoints || []).map((e) => (
                <tr><td>{e.service}</td><td>{e.endpoint}</td><td class="num">{fmtNum(e.requests)}</td>
                  <td class="num">{fmtPct(e.errorRate)}</td><td class="num">{fmtMs(e.p95)}</td></tr>
              ))}
            </tbody>
          </table>
          <Link href={`${base}/performance${range}`}>All endpoints →</Link>
        </div>
        <div class="card">
          <h2>Top issues</h2>
          <IssueMini issues={d.topIssues || []} base={base} range={range} />
          <Link href={`${base}/issues${range}`}>All issues →</Link>
        </div>
      </div>
    </>
  );
}

function IssueMini({ issues, base, range }) {
  if (!issues.length) return <p class="muted">No issues.</p>;
  return (
    <table>
      <thead><tr><th>issue</th><th class="num">events</th><th>last seen</th></tr></thead>
      <tbody>
        {issues.map((i) => (
          <tr><td><Link href={`${base}/issues/${i.shortId || i.id}${range}`}>{i.shortId} {i.title}</Link></td>
            <td class="num">{fmtNum(i.events ?? i.windowEvents)}</td>
            <td>{ago(i.lastSeen ? (typeof i.lastSeen === 'number' ? i.lastSeen : Date.parse(i.lastSeen)) : nsToMs(i.lastSeenUnixNano))}</td></tr>
        ))}
      </tbody>
    </table>
  );
}

// Without the overview endpoint: issue stats and services from the older API.
function Fallback({ project, w, base, range }) {
  const st = useFetch((signal) => call(pp(project, '/errors/stats'), { query: { from: w.from, to: w.to }, signal }), [project, w.label, w.fixed && w.from]);
  const sv = useFetch((signal) => call(pp(project, '/services'), { query: { from: w.from, to: w.to }, signal }), [project, w.label, w.fixed && w.from]);
  const s = st.data;
  const ev = s && s.eventsPerHour ? { x: s.eventsPerHour.map((p) => p[0] / 1000), series: [{ label: 'error events', values: s.eventsPerHour.map((p) => p[1]) }] } : null;
  return (
    <>
      <ErrorBox error={st.error} what="issue stats" />
      {s && (
        <div class="stats">
          <Stat label="new issues" value={fmtNum(s.new)} />
          <Stat label="regressed" value={fmtNum(s.regressed)} />
          <Stat label="unresolved" value={fmtNum(s.unresolved)} />
          <Stat label="error events" value={fmtNum(s.events)} />
        </div>
      )}
      <div class="grid2">
        <div class="card"><h2>Error events per hour</h2>{ev && <Chart x={ev.x} series={ev.series} bars />}</div>
        <div class="card">
          <h2>Top issues</h2>
          {s && <IssueMini issues={s.topIssues || []} base={base} range={range} />}
        </div>
      </div>
      <div class="card">
        <h2>Services</h2>
        <ErrorBox error={sv.error} what="services" />
        <table>
          <thead><tr><th>service</th><th class="num">spans</th></tr></thead>
          <tbody>
            {(sv.data ? sv.data.services : []).map((x) => (
              <tr><td><Link href={`${base}/traces?service=${encodeURIComponent(x.name)}${range.replace('?', '&')}`}>{x.name}</Link></td>
                <td class="num">{fmtNum(x.spanCount)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
