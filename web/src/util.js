// util.js: formatting and the data-loading hook shared by every page.
import { useEffect, useState, useRef } from 'preact/hooks';

/**
 * useFetch(fn, deps): runs fn(signal) when deps change; returns {data, error, loading,
 * reload, setData}. A newer run aborts the older one, so an old answer never overwrites.
 */
export function useFetch(fn, deps) {
  const [state, set] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    const ac = new AbortController();
    set((s) => ({ ...s, loading: true, error: null }));
    Promise.resolve()
      .then(() => fnRef.current(ac.signal))
      .then((data) => { if (!ac.signal.aborted) set({ data, error: null, loading: false }); })
      .catch((error) => { if (!ac.signal.aborted) set({ data: null, error, loading: false }); });
    return () => ac.abort();
  }, [...deps, tick]);
  return {
    ...state,
    reload: () => setTick((t) => t + 1),
    setData: (d) => set((s) => ({ ...s, data: typeof d === 'function' ? d(s.data) : d })),
  };
}

/** 1234567 -> "1.23M"; null -> "–". */
export function fmtNum(n, digits = 3) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toPrecision(digits)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toPrecision(digits)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toPrecision(digits)}k`;
  if (Number.isInteger(n)) return String(n);
  return String(+n.toPrecision(digits));
}

/** Milliseconds as "850 µs", "12.3 ms", "4.56 s", "2.1 min". */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms === 0) return '0';
  if (ms < 1) return `${+(ms * 1000).toPrecision(3)} µs`;
  if (ms < 1000) return `${+ms.toPrecision(3)} ms`;
  if (ms < 60000) return `${+(ms / 1000).toPrecision(3)} s`;
  return `${+(ms / 60000).toPrecision(3)} min`;
}

/** A 0..1 ratio as "12.5%". */
export function fmtPct(r) {
  if (r === null || r === undefined || Number.isNaN(r)) return '–';
  return `${+(r * 100).toPrecision(3)}%`;
}

/** Unix nanoseconds (string) to milliseconds (number). */
export const nsToMs = (ns) => (ns ? Number(BigInt(ns) / 1000000n) : 0);

/** Milliseconds to "2026-11-22 08:46:01.123" in local time. */
export function fmtTime(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** "3 min ago" style relative time for milliseconds. */
export function ago(ms) {
  if (!ms) return '–';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export const SEVERITIES = [['', 'any'], ['TRACE', 'TRACE'], ['DEBUG', 'DEBUG'], ['INFO', 'INFO'], ['WARN', 'WARN'], ['ERROR', 'ERROR'], ['FATAL', 'FATAL']];

/** Severity number to its class name for colouring. */
export function sevClass(n) {
  if (n >= 17) return 'sev-error';
  if (n >= 13) return 'sev-warn';
  if (n >= 9) return 'sev-info';
  return 'sev-debug';
}

/** Minimum severity name -> number (TRACE 1 .. FATAL 21). */
export const SEV_NUM = { TRACE: 1, DEBUG: 5, INFO: 9, WARN: 13, ERROR: 17, FATAL: 21 };

/** A log body as text: strings as they are, structured bodies as JSON. */
export const bodyText = (b) => (typeof b === 'string' ? b : JSON.stringify(b));

/** Turns an attribute value (typed JSON) into display text. */
export const valText = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
