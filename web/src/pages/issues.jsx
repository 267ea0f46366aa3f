// issues.jsx: the issues list (filters in the URL, live on new/regressed issues) and the
// issue detail: stack trace with in-app frames, tags, counts, events, triage actions.
import { useState, useEffect } from 'preact/hooks';
import { call, pp } from '../api.js';
import { useFetch, fmtNum, nsToMs, ago, fmtTime } from '../util.js';
import { useQuery, timeWindow, keepRange } from '../router.js';
import { Link, ErrorBox, Loading, Chart, RangePicker, Attrs } from '../components.jsx';
import { useLiveReload } from '../live.js';
import { useSession, roleOf, atLeast } from '../session.js';

const STATUSES = ['unresolved', 'resolved', 'ignored'];
const SORTS = [['lastSeen', 'last seen'], ['firstSeen', 'first seen'], ['events', 'events'], ['users', 'users']];

export function Issues({ project }) {
  const [query, setQuery] = useQuery();
  const range = keepRange(query);
  const status = query.get('status') || 'unresolved';
  const sort = query.get('sort') || 'lastSeen';
  const all = query.get('range') === null && !query.get('from');
  const w = timeWindow(query);
  const [cursor, setCursor] = useState([]);
  const list = useFetch((signal) => call(pp(project, '/errors'), {
    signal,
    query: {
      status, sort, q: query.get('q'), service: query.get('service'), limit: 25,
      cursor: cursor[cursor.length - 1],
      from: all ? undefined : w.from, to: all ? undefined : w.to,
    },
  }), [project, query.toString(), cursor.join()]);
  const [fresh, setFresh] = useState(0);
  useLiveReload(project, { topics: 'issues' }, list.reload, { delayMs: 500, onEvent: () => setFresh((n) => n + 1) });
  const base = `/p/${encodeURIComponent(project)}`;
  // Bulk triage: PATCH .../errors with the selected ids, all or nothing.
  const { me } = useSession();
  const canTriage = atLeast(roleOf(me, project), 'member');
  const [picked, setPicked] = useState(() => new Set());
  useEffect(() => setPicked(new Set()), [project, query.toString(), cursor.join()]); // only what is shown
  const [bulkErr, setBulkErr] = useState(null);
  const shown = list.data ? list.data.issues : [];
  const pick = (id) => setPicked((p) => { const n = new Set(p); if (n.has(id)) n.delete(id); else n.add(id); return n; });
  const allPicked = shown.length > 0 && shown.every((i) => picked.has(i.id));
  const bulk = async (body) => {
    setBulkErr(null);
    try {
      await call(pp(project, '/errors'), { method: 'PATCH', body: { ...body, ids: [...picked] } });
      setPicked(new Set());
      list.reload();
    } catch (e) { setBulkErr(e); }
  };
  return (
    <section>
      <div class="page-head">
        <h1>Issues</h1>
        <RangePicker allowAll />
      </div>
      <form class="filters" onSubmit={(e) => { e.preventDefault(); setCursor([]); setQuery({ q: new FormData(e.target).get('q') }); }}>
        <label>Status
          <select value={status} onChange={(e) => { setCursor([]); setQuery({ status: e.target.value }); }}>
            {STATUSES.map((s) => <option value={s}>{s}</option>)}
          </select>
        </label>
        <label>Sort
          <select value={sort} onChange={(e) => { setCursor([]); setQuery({ sort: e.target.value }); }}>
            {SORTS.map(([v, l]) => <option value={v}>{l}</option>)}
          </select>
        </label>
        <label>Search<input name="q" type="search" defaultValue={query.get('q') || ''} placeholder="title, message, culprit" /></label>
        <button class="btn" type="submit">Search</button>
        {fresh > 0 && <span class="muted" role="status">{`updated live (${fresh})`}</span>}
      </form>
      <ErrorBox error={list.error} what="issues" />
      <Loading when={list.loading && !list.data} />
      {canTriage && shown.length > 0 && (
        <div class="actions" role="group" aria-label="Selected issues">
          <span class="muted small">{picked.size} selected</span>
          {ACTIONS.filter(([label]) => label !== 'Resolve in next release').map(([label, body]) => (
            <button class="btn small" disabled={!picked.size} onClick={() => bulk(body)}>{`${label} selected`}</button>
          ))}
        </div>
      )}
      <ErrorBox error={bulkErr} what="the selected issues" doing="change" />
      {list.data && (list.data.issues.length === 0 ? <p class="muted">No issues match.</p> : (
        <table class="issues">
          <thead><tr>{canTriage && <th><input type="checkbox" aria-label="Select all issues on this page" checked={allPicked}
            onChange={() => setPicked(allPicked ? new Set() : new Set(shown.map((i) => i.id)))} /></th>}<th>issue</th><th>service</th><th class="num">events</th><th class="num">users</th><th>last seen</th><th>status</th></tr></thead>
          <tbody>
            {list.data.issues.map((i) => (
              <tr>
                {canTriage && <td><input type="checkbox" aria-label={`Select ${i.shortId}`} checked={picked.has(i.id)} onChange={() => pick(i.id)} /></td>}
                <td>
                  <Link href={`${base}/issues/${i.shortId}${range}`} class="issue-link"><b>{i.shortId}</b> {i.title}</Link>
                  <div class="muted small">{i.culprit}</div>
                </td>
                <td>{i.service}</td>
                <td class="num">{fmtNum(i.events)}</td>
                <td class="num">{fmtNum(i.users)}</td>
                <td title={fmtTime(nsToMs(i.lastSeenUnixNano))}>{ago(nsToMs(i.lastSeenUnixNano))}</td>
                <td><span class={`badge st-${i.status}`}>{i.substatus && i.status === 'unresolved' ? i.substatus : i.status}</span></td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
      <Pager cursor={cursor} setCursor={setCursor} next={list.data && list.data.nextCursor} />
    </section>
  );
}

/** Previous / next buttons over opaque cursors (a stack of the cursors used). */
export function Pager({ cursor, setCursor, next }) {
  if (!cursor.length && !next) return null;
  return (
    <div class="pager">
      <button class="btn" disabled={!cursor.length} onClick={() => setCursor(cursor.slice(0, -1))}>← Newer</button>
      <button class="btn" disabled={!next} onClick={() => setCursor([...cursor, next])}>Older →</button>
    </div>
  );
}

const ACTIONS = [
  ['Resolve', { status: 'resolved' }, (i) => i.status !== 'resolved'],
  ['Resolve in next release', { status: 'resolved', inNextRelease: true }, (i) => i.status !== 'resolved'],
  ['Ignore', { status: 'ignored' }, (i) => i.status !== 'ignored'],
  ['Unresolve', { status: 'unresolved' }, (i) => i.status !== 'unresolved'],
];

export function IssueDetail({ project, id }) {
  const [query] = useQuery();
  const range = keepRange(query);
  const { me } = useSession();
  const canTriage = atLeast(roleOf(me, project), 'member');
  const issue = useFetch((signal) => call(pp(project, `/errors/${encodeURIComponent(id)}`), { signal }), [project, id]);
  const [evCursor, setEvCursor] = useState([]);
  const events = useFetch((signal) => call(pp(project, `/errors/${encodeURIComponent(id)}/events`), { signal, query: { limit: 20, cursor: evCursor[evCursor.length - 1] } }), [project, id, evCursor.join()]);
  const [busy, setBusy] = useState('');
  const [actErr, setActErr] = useState(null);
  const act = async (label, body) => {
    setBusy(label);
    setActErr(null);
    try {
      const r = await call(pp(project, `/errors/${encodeURIComponent(id)}`), { method: 'PATCH', body });
      issue.setData((d) => ({ ...d, ...r }));
    } catch (e) { setActErr(e); } finally { setBusy(''); }
  };
  const base = `/p/${encodeURIComponent(project)}`;
  if (issue.error) return <section><ErrorBox error={issue.error} what={`issue ${id}`} /></section>;
  if (!issue.data) return <Loading when />;
  const i = issue.data, ev = i.latestEvent;
  const hourly = i.hourly ? { x: i.hourly.map((p) => p[0] / 1000), series: [{ label: 'events per hour', values: i.hourly.map((p) => p[1]) }] } : null;
  return (
    <section>
      <p><Link href={`${base}/issues${range}`}>← Issues</Link></p>
      <div class="page-head">
        <h1><span class="muted">{i.shortId}</span> {i.title}</h1>
        <span class={`badge st-${i.status}`} data-testid="issue-status">{i.status}</span>
      </div>
      <p class="muted">{i.culprit}</p>
      <div class="actions" role="group" aria-label="Triage">
        {ACTIONS.filter(([, , show]) => show(i)).map(([label, body]) => (
          <button class="btn" disabled={!canTriage || !!busy} onClick={() => act(label, body)}>{busy === label ? '…' : label}</button>
        ))}
        {!canTriage && <span class="muted">Viewers cannot triage.</span>}
        {i.traceId && <Link class="btn" href={`${base}/traces/${i.traceId}${range}`}>View trace</Link>}
      </div>
      <ErrorBox error={actErr} what="the change" doing="save" />
      <div class="stats">
        <div class="stat"><div class="stat-value">{fmtNum(i.events)}</div><div class="stat-label">events</div></div>
        <div class="stat"><div class="stat-value">{fmtNum(i.users)}</div><div class="stat-label">users</div></div>
        <div class="stat"><div class="stat-value">{ago(nsToMs(i.firstSeenUnixNano))}</div><div class="stat-label">first seen</div></div>
        <div class="stat"><div class="stat-value">{ago(nsToMs(i.lastSeenUnixNano))}</div><div class="stat-label">last seen</div></div>
        <div class="stat"><div class="stat-value">{i.firstRelease || '–'} → {i.lastRelease || '–'}</div><div class="stat-label">releases</div></div>
      </div>
      <div class="card"><h2>Last 24 hours</h2>{hourly && <Chart x={hourly.x} series={hourly.series} bars height={140} />}</div>
      {ev && <EventView ev={ev} base={base} range={range} />}
      <div class="card">
        <h2>Tags</h2>
        <div class="tags">
          {(i.tags || []).map((t) => (
            <div class="tag">
              <h3>{t.key} <span class="muted small">{t.total}</span></h3>
              {t.values.map((v) => (
                <div class="bar-row" title={`${v.value}: ${v.count}`}>
                  <span class="bar-label">{v.value}</span>
                  <span class="bar"><span style={{ width: `${t.total ? (100 * v.count) / t.total : 0}%` }} /></span>
                  <span class="num small">{v.count}</span>
                </div>
              ))}
            </div>
          ))}
        </div>
      </div>
      <div class="card">
        <h2>Events</h2>
        <ErrorBox error={events.error} what="events" />
        {events.data && (
          <table>
            <thead><tr><th>time</th><th>service</th><th>release</th><th>message</th><th>trace</th></tr></thead>
            <tbody>
              {events.data.events.map((e) => (
                <tr>
                  <td>{fmtTime(nsToMs(e.timeUnixNano))}</td><td>{e.service}</td><td>{e.release}</td><td>{e.message}</td>
                  <td>{e.traceId && <Link href={`${base}/traces/${e.traceId}${range}`}>{e.traceId.slice(0, 8)}…</Link>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <Pager cursor={evCursor} setCursor={setEvCursor} next={events.data && events.data.nextCursor} />
      </div>
    </section>
  );
}

/** The latest event: its stack (crashing frame first, in-app frames marked) and context. */
function EventView({ ev, base, range }) {
  const [all, setAll] = useState(false);
  const frames = [...(ev.frames || [])].reverse();
  const shown = all ? frames : frames.filter((f) => f.inApp);
  return (
    <div class="card">
      <h2>Latest event <span class="muted small">{fmtTime(nsToMs(ev.timeUnixNano))}</span></h2>
      <p><b>{ev.type}</b>: {ev.message}</p>
      <p class="muted small">
        {ev.service} {ev.release && `· ${ev.release}`} {ev.environment && `· ${ev.environment}`} · {ev.handled ? 'handled' : 'unhandled'}
        {ev.traceId && <> · <Link href={`${base}/traces/${ev.traceId}${range}`}>trace {ev.traceId.slice(0, 8)}…</Link></>}
      </p>
      {frames.length > 0 ? (
        <>
          <label class="inline small"><input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> show library frames</label>
          <ol class="frames" aria-label="Stack trace, crashing frame first">
            {(shown.length ? shown : frames).map((f) => (
              <li class={f.inApp ? 'in-app' : 'lib'}>
                <code>{f.function || '<anonymous>'}</code>
                <span class="muted"> {f.file || f.module}{f.line ? `:${f.line}` : ''}{f.column ? `:${f.column}` : ''}</span>
                {f.inApp && <span class="badge small">in app</span>}
              </li>
            ))}
          </ol>
        </>
      ) : ev.stacktrace ? <pre class="stack">{ev.stacktrace}</pre> : <p class="muted">No stack trace.</p>}
      <details><summary>Context and attributes</summary>
        <Attrs attrs={{ userId: ev.userId, route: ev.route, url: ev.url, userAgent: ev.userAgent, ...ev.attributes }} />
      </details>
    </div>
  );
}
