// logs.jsx: the logs explorer: search with filters in the URL, and live tail (the live
// stream's logs topic with the same filters) that adds new lines on top without reload;
// above the lines, the volume of every matching line over time by severity
// (GET .../logs/histogram), where dragging across narrows the window.
import { useState, useRef } from 'preact/hooks';
import { call, pp } from '../api.js';
import { useFetch, SEVERITIES } from '../util.js';
import { useQuery, timeWindow, keepRange, chartRange } from '../router.js';
import { ErrorBox, Loading, RangePicker, Chart, zoomTo } from '../components.jsx';
import { useLive, useLiveStatus } from '../live.js';
import { Pager } from './issues.jsx';
import { LogTable, ServiceFilter } from './traces.jsx';

const TAIL_MAX = 1000;

/** Severity classes of GET .../logs/histogram, top of the stack first, with their colours. */
const SEV_CLASSES = [['error', '--bad'], ['warn', '--warn'], ['info', '--accent'], ['debug', '--muted'], ['other', '--c4']];

/** GET .../logs/histogram with the explorer's (or a panel's) filters over window w. */
export function logVolume(project, filters, w, signal) {
  return call(pp(project, '/logs/histogram'), { signal, query: { ...filters, from: w.from, to: w.to } });
}

/** The volume chart: stacked bars by severity; dragging across, or clicking a bar, narrows the window. */
function VolumeChart({ h, w }) {
  const x = h.buckets.map((b) => b.t / 1000);
  const series = SEV_CLASSES.map(([k, color]) => ({ label: k, color, values: h.buckets.map((b) => (b.bySeverity ? b.bySeverity[k] : null)) }));
  const total = h.buckets.reduce((a, b) => a + (b.count || 0), 0);
  return (
    <div class="log-volume" role="region" aria-label="Log volume">
      <p class="muted small">
        {h.partial ? `At least ${fmtCount(total)} lines: counted the newest only, from ${new Date(h.countedFromMs).toLocaleString()}; older steps are blank.`
          : `${fmtCount(total)} line${total === 1 ? '' : 's'} in this window, per ${fmtStep(h.stepMs)}. Click a bar or drag across the chart to narrow the window.`}
      </p>
      <Chart x={x} xRange={chartRange(w)} series={series} bars stacked height={110} title="Log volume by severity"
        onPick={(t) => zoomTo(t * 1000, t * 1000 + h.stepMs - 1)} />
    </div>
  );
}

const fmtCount = (n) => n.toLocaleString('en-US');
const fmtStep = (ms) => (ms % 3600000 === 0 ? `${ms / 3600000} h` : ms % 60000 === 0 ? `${ms / 60000} min` : `${ms / 1000} s`);

export function Logs({ project }) {
  const [query, setQuery] = useQuery();
  const w = timeWindow(query);
  const range = keepRange(query);
  const f = (k) => query.get(k) || '';
  const tail = query.get('live') === '1';
  const [cursor, setCursor] = useState([]);
  const [tailRows, setTailRows] = useState([]);
  const [gaps, setGaps] = useState(0);
  const list = useFetch((signal) => call(pp(project, '/logs'), {
    signal,
    query: {
      q: f('q'), severity: f('severity'), service: f('service'), traceId: f('traceId'), attr: f('attr'),
      from: w.from, to: w.to, limit: 100, cursor: cursor[cursor.length - 1],
    },
  }), [project, query.toString(), cursor.join()]);
  const volume = useFetch((signal) => logVolume(project, {
    q: f('q'), severity: f('severity'), service: f('service'), traceId: f('traceId'), attr: f('attr'),
  }, w, signal), [project, query.toString()]);
  const status = useLiveStatus();
  const seen = useRef(new Set());
  useLive(project, { topics: 'logs', service: f('service'), severity: f('severity'), q: f('q') }, (kind, data) => {
    if (kind === 'gap') { setGaps((g) => g + 1); return; }
    if (kind !== 'logs' || !data || !Array.isArray(data.items)) return;
    const fresh = data.items.filter((l) => {
      const k = `${l.timeUnixNano}|${l.spanId}|${l.body}`;
      if (seen.current.has(k)) return false;
      seen.current.add(k);
      return true;
    });
    if (fresh.length) setTailRows((rows) => [...fresh.reverse(), ...rows].slice(0, TAIL_MAX));
  }, tail);
  const submit = (e) => {
    e.preventDefault();
    const fd = new FormData(e.target);
    const patch = {};
    for (const k of ['q', 'severity', 'service', 'traceId', 'attr']) patch[k] = fd.get(k);
    setCursor([]);
    setTailRows([]);
    seen.current = new Set();
    setQuery(patch, { replace: false });
  };
  const rows = tail ? [...tailRows, ...(list.data ? list.data.logs : [])] : (list.data ? list.data.logs : []);
  const base = `/p/${encodeURIComponent(project)}`;
  return (
    <section>
      <div class="page-head">
        <h1>Logs</h1>
        <RangePicker />
        <button class={`btn ${tail ? 'primary' : ''}`} aria-pressed={tail} onClick={() => { setTailRows([]); seen.current = new Set(); setQuery({ live: tail ? null : '1' }); }}>
          {tail ? 'Stop live tail' : 'Live tail'}
        </button>
      </div>
      <form class="filters" onSubmit={submit} key={query.toString()}>
        <label>Search<input name="q" type="search" defaultValue={f('q')} placeholder='words, "phrase", -excluded' /></label>
        <label>Min severity
          <select name="severity">
            {SEVERITIES.map(([v, l]) => <option value={v} selected={v === f('severity')}>{l}</option>)}
          </select>
        </label>
        <ServiceFilter project={project} w={w} value={f('service')} />
        <label>Trace id<input name="traceId" defaultValue={f('traceId')} class="mono" size="20" /></label>
        <label>Attribute<input name="attr" defaultValue={f('attr')} placeholder="key=value" /></label>
        <button class="btn primary" type="submit">Search</button>
      </form>
      {tail && (
        <p class="muted small" role="status">
          {status === 'live' ? `Tailing: ${tailRows.length} new line${tailRows.length === 1 ? '' : 's'} since you started.`
            : status === 'unavailable' ? 'Live tail is not available on this server.'
              : status === 'reconnecting' || status === 'offline' ? 'The live stream dropped; reconnecting…' : 'Connecting…'}
          {gaps > 0 && ' Some lines were missed while the stream was away: search again to see them.'}
        </p>
      )}
      <ErrorBox error={volume.error} what="the log volume" />
      {volume.data && <VolumeChart h={volume.data} w={w} />}
      <ErrorBox error={list.error} what="logs" />
      <Loading when={list.loading && !list.data} />
      {(list.data || tailRows.length > 0) && <LogTable rows={rows} base={base} range={range} />}
      {!tail && <Pager cursor={cursor} setCursor={setCursor} next={list.data && list.data.nextCursor} />}
    </section>
  );
}
