// metrics.jsx: the metrics explorer: metric, aggregation, group by, filters, step, and the
// chart; everything in the URL. Also exports the series helpers the dashboards reuse.
import { call, pp } from '../api.js';
import { useFetch, fmtNum } from '../util.js';
import { useQuery, timeWindow, chartRange } from '../router.js';
import { ErrorBox, Loading, Chart, RangePicker } from '../components.jsx';

export const AGGS = ['sum', 'avg', 'min', 'max', 'count', 'last', 'rate', 'p50', 'p90', 'p95', 'p99'];

/** Label set as "k=v, k2=v2" (or the metric name when there is none). */
export const labelText = (labels, name) => {
  const e = Object.entries(labels || {});
  return e.length ? e.map(([k, v]) => `${k}=${v}`).join(', ') : name;
};

/** Metric query answer -> uPlot x (s) and aligned series (null where a series has no point). */
export function alignSeries(answer, name) {
  const ts = new Set();
  for (const s of answer.series) for (const p of s.points) ts.add(p[0]);
  const xs = [...ts].sort((a, b) => a - b);
  const idx = new Map(xs.map((t, i) => [t, i]));
  const series = answer.series.slice(0, 20).map((s) => {
    const v = new Array(xs.length).fill(null);
    for (const p of s.points) v[idx.get(p[0])] = p[1];
    return { label: labelText(s.labels, name), values: v };
  });
  return { x: xs.map((t) => t / 1000), series };
}

export function Metrics({ project }) {
  const [query, setQuery] = useQuery();
  const w = timeWindow(query);
  const f = (k) => query.get(k) || '';
  const name = f('metric');
  const agg = f('agg') || 'sum';
  const list = useFetch((signal) => call(pp(project, '/metrics'), { signal, query: { from: w.from, to: w.to } }), [project, w.label]);
  const labels = useFetch((signal) => (name ? call(pp(project, `/metrics/${encodeURIComponent(name)}/labels`), { signal }) : Promise.resolve(null)), [project, name]);
  const data = useFetch((signal) => (name ? call(pp(project, '/metrics/query'), {
    signal, query: { name, agg, groupBy: f('groupBy'), filter: f('filter'), step: f('step'), from: w.from, to: w.to },
  }) : Promise.resolve(null)), [project, query.toString()]);
  const metrics = list.data ? list.data.metrics : [];
  const meta = metrics.find((m) => m.name === name);
  const chart = data.data ? alignSeries(data.data, name) : null;
  const groupBy = f('groupBy') ? f('groupBy').split(',') : [];
  // filter=k=v,k2=v2 in the URL as an object; a chip sets or clears one key.
  const filters = Object.fromEntries(f('filter').split(',').map((kv) => kv.split('=')).filter((kv) => kv.length === 2));
  const setFilter = (k, v) => {
    const next = { ...filters };
    if (v === null) delete next[k]; else next[k] = v;
    setQuery({ filter: Object.entries(next).map(([a, b]) => `${a}=${b}`).join(',') });
  };
  const toggleGroup = (k) => {
    const g = groupBy.includes(k) ? groupBy.filter((x) => x !== k) : [...groupBy, k];
    setQuery({ groupBy: g.join(',') });
  };
  return (
    <section>
      <div class="page-head"><h1>Metrics</h1><RangePicker /></div>
      <ErrorBox error={list.error} what="metrics" />
      <form class="filters" onSubmit={(e) => { e.preventDefault(); setQuery({ filter: new FormData(e.target).get('filter'), step: new FormData(e.target).get('step') }); }} key={query.toString()}>
        <label>Metric
          <select value={name} onChange={(e) => setQuery({ metric: e.target.value, groupBy: null, filter: null })}>
            <option value="">choose a metric…</option>
            {metrics.map((m) => <option value={m.name}>{m.name}</option>)}
          </select>
        </label>
        <label>Aggregation
          <select value={agg} onChange={(e) => setQuery({ agg: e.target.value })}>
            {AGGS.map((a) => <option value={a}>{a}</option>)}
          </select>
        </label>
        <label>Filter<input name="filter" defaultValue={f('filter')} placeholder="k=v,k2=v2" /></label>
        <label>Step<input name="step" defaultValue={f('step')} placeholder="auto (1m, 5m, 1h)" class="short" /></label>
        <button class="btn primary" type="submit">Apply</button>
      </form>
      {meta && <p class="muted small">{meta.type}{meta.unit ? ` · ${meta.unit}` : ''} · {fmtNum(meta.seriesCount)} series{meta.description ? ` · ${meta.description}` : ''}</p>}
      {labels.data && labels.data.labels.length > 0 && (
        <fieldset class="groupby">
          <legend>Group by</legend>
          {labels.data.labels.map((l) => (
            <label class="inline small"><input type="checkbox" checked={groupBy.includes(l.key)} onChange={() => toggleGroup(l.key)} /> {l.key} <span class="muted">({l.valueCount})</span></label>
          ))}
        </fieldset>
      )}
      {labels.data && labels.data.labels.some((l) => l.valueCount > 1) && (
        <details class="card">
          <summary>Filter by a label value</summary>
          {labels.data.labels.filter((l) => l.valueCount > 1).map((l) => (
            <div class="chips" role="group" aria-label={`Values of ${l.key}`}>
              <span class="muted small">{l.key}</span>
              {l.values.slice(0, 30).map((v) => {
                const on = filters[l.key] === v;
                return <button class={`btn small${on ? ' primary' : ''}`} aria-pressed={on} onClick={() => setFilter(l.key, on ? null : v)}>{v}</button>;
              })}
            </div>
          ))}
        </details>
      )}
      {!name && <p class="muted">Choose a metric to chart it.</p>}
      <ErrorBox error={data.error} what="the series" />
      <Loading when={name && data.loading && !data.data} />
      {chart && (
        <div class="card">
          <h2>{agg}({name}){groupBy.length ? ` by ${groupBy.join(', ')}` : ''} <span class="muted small">{data.data.resolution} · step {data.data.stepMs / 1000}s</span></h2>
          <Chart x={chart.x} xRange={chartRange(w)} series={chart.series} height={320} fmt={(v) => fmtNum(v)} />
          {data.data.series.length > 20 && <p class="muted small">Showing 20 of {data.data.series.length} series.</p>}
        </div>
      )}
    </section>
  );
}
