// components.jsx: the small pieces every page uses: links, errors, loading, charts (uPlot),
// the time range picker, stat cards.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { onLinkClick, RANGES, useQuery, navigate } from './router.js';

/** A real link that navigates without reload. */
export function Link({ href, children, ...rest }) {
  return <a href={href} onClick={onLinkClick} {...rest}>{children}</a>;
}

/** Shows a failed load: 404 of a missing endpoint reads "not available", never a crash. */
export function ErrorBox({ error, what = 'this', doing = 'load' }) {
  if (!error) return null;
  if (error.status === 404 && doing === 'load') return <p class="notice" role="status">{`${what} is not available on this server (404).`}</p>;
  return <p class="error" role="alert">{`Could not ${doing} ${what}: ${error.message}`}</p>;
}

export function Loading({ when, children }) {
  if (!when) return children || null;
  return <p class="muted" aria-busy="true">Loading…</p>;
}

/** One figure with its label. */
export function Stat({ label, value, tone }) {
  return (
    <div class={`stat ${tone || ''}`}>
      <div class="stat-value">{value}</div>
      <div class="stat-label">{label}</div>
    </div>
  );
}

export function Health({ status }) {
  const s = status || 'unknown';
  return <span class={`badge health-${s}`}>{s}</span>;
}

/** Time range select bound to ?range= (clears a custom from/to); allowAll adds "All time"
 * (no range in the URL) for pages whose default is no time filter. */
export function RangePicker({ allowAll = false }) {
  const [query, setQuery] = useQuery();
  const custom = query.get('from') && query.get('to');
  const value = custom ? 'custom' : (query.get('range') || (allowAll ? '' : '1h'));
  return (
    <label class="inline">
      <span class="sr-only">Time range</span>
      <select
        aria-label="Time range"
        value={value}
        onChange={(e) => setQuery({ range: e.target.value, from: null, to: null }, { replace: false })}
      >
        {custom && <option value="custom">custom</option>}
        {allowAll && <option value="">All time</option>}
        {RANGES.map((r) => <option value={r}>{`Last ${r}`}</option>)}
      </select>
    </label>
  );
}

/** Sets a custom window (unix ms) in the URL, as a new history entry (Back undoes it). */
export function zoomTo(from, to) {
  if (!(to > from)) return;
  const q = new URLSearchParams(location.search);
  q.set('from', String(from));
  q.set('to', String(to));
  q.delete('range');
  navigate(`${location.pathname}?${q}`);
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}
const PALETTE = ['--c1', '--c2', '--c3', '--c4', '--c5', '--c6'];

/**
 * A uPlot time series chart. x: seconds (uPlot's time unit); series: [{label, values}].
 * Bars when bars is set, points only when scatter is; stacked adds the series up (the first on top; the
 * legend shows each one's own value). A series may name its colour (a CSS variable, `color`).
 * onPick(x) is called with the x (seconds) of the point under a click that was not a drag.
 * Re-created when the data changes, resized with its box.
 */
export function Chart({ x, series, height = 200, bars = false, scatter = false, stacked = false, fmt, title, xRange, onPick }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || !x || !x.length) return undefined;
    const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid') }, ticks: { stroke: cssVar('--grid') } };
    const opts = {
      width: box.current.clientWidth || 600,
      height,
      // Dragging across a chart that has xRange zooms the page's window (from/to in the URL).
      cursor: { drag: { x: !!xRange, y: false, setScale: false } },
      hooks: {
        ...(xRange ? {
          setSelect: [(u) => {
            if (u.select.width < 5) return;
            const lo = u.posToVal(u.select.left, 'x'), hi = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
            zoomTo(Math.floor(lo * 1000), Math.ceil(hi * 1000));
          }],
        } : {}),
        ...(onPick ? {
          ready: [(u) => {
            let downX = null;
            u.over.addEventListener('mousedown', (e) => { downX = e.clientX; });
            u.over.addEventListener('click', (e) => {
              const moved = downX === null || Math.abs(e.clientX - downX) >= 5;
              downX = null;
              if (!moved && u.cursor.idx != null) onPick(u.data[0][u.cursor.idx]);
            });
          }],
        } : {}),
      },
      // The x axis spans the chosen window (xRange, seconds); a lone point gets an hour
      // around it instead of uPlot's default of years.
      scales: { x: { time: true, range: xRange ? () => xRange : x.length === 1 ? (u, lo, hi) => [lo - 1800, hi + 1800] : undefined } },
      legend: { show: series.length > 1 || !!title },
      axes: [axis, { ...axis, size: 60, values: fmt ? (u, v) => v.map(fmt) : undefined }],
      series: [{}].concat(series.map((s, i) => {
        const color = cssVar(s.color || PALETTE[i % PALETTE.length]);
        const own = (v, idx) => (stacked && idx != null ? s.values[idx] : v);
        return {
          label: s.label,
          stroke: color,
          fill: stacked ? color : bars ? color + '99' : undefined,
          width: 1.5,
          paths: scatter ? () => null : bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
          points: scatter ? { show: true, size: 7, fill: color } : stacked ? { show: false } : undefined,
          value: fmt || stacked ? (u, v, si, idx) => { const o = own(v, idx); return o == null ? '–' : fmt ? fmt(o) : o.toLocaleString('en-US'); } : undefined,
          spanGaps: false,
        };
      })),
    };
    // Stacked: series i is drawn as the sum of series i.. n-1, the first (tallest) under the rest.
    const data = stacked ? series.map((s, i) => s.values.map((v, k) => (v == null ? null
      : series.slice(i).reduce((a, t) => a + (t.values[k] || 0), 0)))) : series.map((s) => s.values);
    const plot = new uPlot(opts, [x, ...data], box.current);
    const ro = new ResizeObserver(() => plot.setSize({ width: box.current.clientWidth, height }));
    ro.observe(box.current);
    return () => { ro.disconnect(); plot.destroy(); };
  }, [x, series, height, bars, scatter, stacked, onPick, xRange && xRange.join()]);
  if (!x || !x.length) return <p class="muted chart-empty">No data in this range.</p>;
  return <div class="chart" ref={box} role="img" aria-label={title || (series.map((s) => s.label).join(', ') + ' chart')} />;
}

/** A table header cell that sorts: click or Enter/Space (it is a button). */
export function SortTh({ k, sort, setSort, children }) {
  const dir = sort.key === k ? sort.dir : null;
  return (
    <th aria-sort={dir === 'asc' ? 'ascending' : dir === 'desc' ? 'descending' : 'none'}>
      <button class="th-btn" onClick={() => setSort({ key: k, dir: dir === 'desc' ? 'asc' : 'desc' })}>
        {children}{dir ? (dir === 'desc' ? ' ↓' : ' ↑') : ''}
      </button>
    </th>
  );
}

/** Sorts rows by sort.key/sort.dir (numbers and strings). */
export function sortRows(rows, sort) {
  if (!sort.key) return rows;
  const m = sort.dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = a[sort.key], y = b[sort.key];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * m;
  });
}

/** A side panel: Escape or the close button closes it; focus moves into it when it opens. */
export function Panel({ title, onClose, children }) {
  const ref = useRef(null);
  useEffect(() => {
    const key = (e) => { if (e.key === 'Escape') onClose(); };
    document.addEventListener('keydown', key);
    if (ref.current) ref.current.focus();
    return () => document.removeEventListener('keydown', key);
  }, [onClose]);
  return (
    <aside class="panel" role="dialog" aria-label={title} tabIndex={-1} ref={ref}>
      <header class="panel-head">
        <h2>{title}</h2>
        <button class="btn ghost" onClick={onClose} aria-label="Close panel">✕</button>
      </header>
      <div class="panel-body">{children}</div>
    </aside>
  );
}

/** Attribute map as a key/value table. */
export function Attrs({ attrs }) {
  const entries = Object.entries(attrs || {}).filter(([, v]) => v !== undefined && v !== null);
  if (!entries.length) return <p class="muted">none</p>;
  return (
    <table class="kv">
      <tbody>
        {entries.map(([k, v]) => (
          <tr><th scope="row">{k}</th><td>{typeof v === 'string' ? v : JSON.stringify(v)}</td></tr>
        ))}
      </tbody>
    </table>
  );
}
