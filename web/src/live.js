// live.js: the project's live stream (GET .../stream, Server-Sent Events) for live pages,
// and the stream state the header shows: live, reconnecting, offline or unavailable.
import { useEffect, useRef, useState } from 'preact/hooks';
import { qs, signalUnauthorized } from './api.js';

// One status for the header indicator; the page that holds the stream sets it.
let status = 'idle';
const watchers = new Set();
function setStatus(s) {
  if (s === status) return;
  status = s;
  watchers.forEach((fn) => fn(s));
}

/** The current stream status, re-rendering on change. */
export function useLiveStatus() {
  const [s, set] = useState(status);
  useEffect(() => { watchers.add(set); set(status); return () => watchers.delete(set); }, []);
  return s;
}

const EVENTS = ['spans', 'logs', 'metrics', 'issue', 'gap'];

/**
 * Opens the live stream of `project` while `enabled`, with `params` (topics, service,
 * severity, q). onEvent(kind, data) runs for every event; a 'gap' event means events were
 * missed. EventSource retries network drops itself (from the last id); when it gives up
 * (an HTTP error), this retries with a growing delay and the last id, a 404 marks the
 * stream as unavailable (server without live updates) and a 401 sends the user to log in.
 */
export function useLive(project, params, onEvent, enabled = true) {
  const cb = useRef(onEvent);
  cb.current = onEvent;
  const key = JSON.stringify([project, params, enabled]);
  useEffect(() => {
    if (!enabled || !project) return undefined;
    let es = null, timer = null, closed = false, lastId = '', delay = 1000;
    const open = () => {
      if (closed) return;
      setStatus(lastId ? 'reconnecting' : 'connecting');
      es = new EventSource(`/api/v1/projects/${encodeURIComponent(project)}/stream${qs({ ...params, lastEventId: lastId })}`);
      es.onopen = () => { delay = 1000; setStatus('live'); };
      for (const ev of EVENTS) {
        es.addEventListener(ev, (m) => {
          if (m.lastEventId) lastId = m.lastEventId;
          let data = null;
          try { data = JSON.parse(m.data); } catch { return; }
          cb.current(ev, data);
        });
      }
      es.onerror = () => {
        if (closed) return;
        if (es.readyState === EventSource.CONNECTING) { setStatus('reconnecting'); return; }
        es.close();
        // Given up: find out why (404: no live stream on this server) and retry later.
        const ac = new AbortController();
        fetch(`/api/v1/projects/${encodeURIComponent(project)}/stream${qs(params)}`, { signal: ac.signal })
          .then((r) => { ac.abort(); return r.status; })
          .catch(() => 0)
          .then((st) => {
            if (closed) return;
            if (st === 401) { setStatus('offline'); signalUnauthorized(); return; } // session over: log in again
            setStatus(st === 404 ? 'unavailable' : 'offline');
            timer = setTimeout(open, st === 404 ? 60000 : delay);
            delay = Math.min(delay * 2, 30000);
          });
      };
    };
    open();
    return () => {
      closed = true;
      clearTimeout(timer);
      if (es) es.close();
      setStatus('idle');
    };
  }, [key]);
}

/**
 * Reloads a page's data when the live stream says something changed: at most once per
 * delayMs (events come in bursts), and after a 'gap' too. onEvent(kind, data) runs first
 * for every event, when given.
 */
export function useLiveReload(project, params, reload, { enabled = true, delayMs = 2000, onEvent } = {}) {
  const pending = useRef(null);
  const again = useRef(reload);
  again.current = reload;
  useEffect(() => () => clearTimeout(pending.current), []);
  useLive(project, params, (kind, data) => {
    if (onEvent) onEvent(kind, data);
    if (pending.current) return;
    pending.current = setTimeout(() => { pending.current = null; again.current(); }, delayMs);
  }, enabled);
}
