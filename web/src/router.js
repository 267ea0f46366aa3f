// router.js: history-API routing (no hashes) and URL query state, so every filter and time
// range is part of the address and a link can be shared.
import { useEffect, useState, useCallback } from 'preact/hooks';

const listeners = new Set();
function emit() { listeners.forEach((fn) => fn()); }
window.addEventListener('popstate', emit);

/** Goes to a same-origin URL (path + query) without reloading. */
export function navigate(to, { replace = false } = {}) {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  emit();
  if (!replace) window.scrollTo(0, 0);
}

/** Re-renders the caller on every navigation; returns {path, query}. */
export function useLocation() {
  const [, set] = useState(0);
  useEffect(() => {
    const fn = () => set((n) => n + 1);
    listeners.add(fn);
    return () => listeners.delete(fn);
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

/** Matches a path against patterns like /p/:project/traces/:id; returns params or null. */
export function match(pattern, path) {
  const a = pattern.split('/').filter(Boolean), b = path.split('/').filter(Boolean);
  if (a.length !== b.length) return null;
  const params = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i].startsWith(':')) params[a[i].slice(1)] = decodeURIComponent(b[i]);
    else if (a[i] !== b[i]) return null;
  }
  return params;
}

/** Returns [query, setQuery]: setQuery(patch) merges into the URL (null removes a key). */
export function useQuery() {
  const { query } = useLocation();
  const set = useCallback((patch, opts = { replace: true }) => {
    const q = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null || v === undefined || v === '') q.delete(k);
      else q.set(k, String(v));
    }
    const s = q.toString();
    navigate(location.pathname + (s ? `?${s}` : ''), opts);
  }, []);
  return [query, set];
}

/** Link: a real <a> that navigates client-side on a plain left click. */
export function onLinkClick(e) {
  const a = e.currentTarget;
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.target || a.origin !== location.origin) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
}

export const RANGES = ['15m', '1h', '6h', '24h', '7d'];
const UNIT = { m: 60e3, h: 3600e3, d: 86400e3 };

/** Time window from the URL: ?range=1h (default) or ?from=ms&to=ms. Returns {from,to,label}. */
export function timeWindow(query) {
  const from = Number(query.get('from')), to = Number(query.get('to'));
  if (from > 0 && to > from) return { from, to, label: 'custom', fixed: true };
  const r = RANGES.includes(query.get('range')) ? query.get('range') : '1h';
  const now = Date.now();
  return { from: now - parseInt(r, 10) * UNIT[r.slice(-1)], to: now, label: r, fixed: false };
}

/** Keeps the time range (and only it) when linking to another page. */
export function keepRange(query) {
  const q = new URLSearchParams();
  for (const k of ['range', 'from', 'to']) if (query.get(k)) q.set(k, query.get(k));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A window as a chart's x range in seconds, on whole minutes (stable across renders). */
export const chartRange = (w) => [Math.floor(w.from / 60000) * 60, Math.ceil(w.to / 60000) * 60];
