// main.jsx: the dashboard's entry: session check, the app shell (project switcher, time
// range, live status, theme) and the route table.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { api, setCsrf, onUnauthorized } from './api.js';
import { navigate, useLocation, match, keepRange } from './router.js';
import { useLiveStatus } from './live.js';
import { Link } from './components.jsx';
import { Session } from './session.js';
import { Login } from './pages/login.jsx';
import { Home, Compare } from './pages/overview.jsx';
import { ProjectOverview } from './pages/project.jsx';
import { Issues, IssueDetail } from './pages/issues.jsx';
import { Traces, TraceDetail } from './pages/traces.jsx';
import { Logs } from './pages/logs.jsx';
import { Metrics } from './pages/metrics.jsx';
import { Performance } from './pages/perf.jsx';
import { Settings } from './pages/settings.jsx';
import { Setup } from './pages/setup.jsx';
import { Dashboards, DashboardView } from './pages/dashboards.jsx';

const ROUTES = [
  ['/', Home, 'Overview'],
  ['/compare', Compare, 'Compare projects'],
  ['/p/:project', ProjectOverview, 'Project'],
  ['/p/:project/issues', Issues, 'Issues'],
  ['/p/:project/issues/:id', IssueDetail, 'Issue'],
  ['/p/:project/traces', Traces, 'Traces'],
  ['/p/:project/traces/:traceId', TraceDetail, 'Trace'],
  ['/p/:project/logs', Logs, 'Logs'],
  ['/p/:project/metrics', Metrics, 'Metrics'],
  ['/p/:project/performance', Performance, 'API performance'],
  ['/p/:project/dashboards', Dashboards, 'Dashboards'],
  ['/p/:project/dashboards/:id', DashboardView, 'Dashboard'],
  ['/p/:project/settings', Settings, 'Settings'],
  ['/p/:project/setup', Setup, 'Getting started'],
];

const PROJECT_NAV = [
  ['', 'Overview'], ['/issues', 'Issues'], ['/traces', 'Traces'], ['/logs', 'Logs'],
  ['/metrics', 'Metrics'], ['/performance', 'Performance'], ['/dashboards', 'Dashboards'],
  ['/settings', 'Settings'], ['/setup', 'Getting started'],
];

const LIVE_TEXT = {
  idle: null, connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…',
  offline: 'offline', unavailable: 'live updates unavailable',
};

function LiveIndicator() {
  const s = useLiveStatus();
  if (!LIVE_TEXT[s]) return null;
  return <span class={`live live-${s}`} role="status" aria-live="polite" data-live={s}>{LIVE_TEXT[s]}</span>;
}

function ThemeToggle() {
  const [theme, setTheme] = useState(document.documentElement.dataset.theme || '');
  const next = theme === 'dark' ? 'light' : theme === 'light' ? '' : 'dark';
  const label = theme || 'auto';
  return (
    <button class="btn ghost" title="Colour theme" aria-label={`Theme: ${label}. Switch to ${next || 'auto'}`}
      onClick={() => {
        if (next) document.documentElement.dataset.theme = next;
        else delete document.documentElement.dataset.theme;
        try { if (next) localStorage.setItem('sx-theme', next); else localStorage.removeItem('sx-theme'); } catch { /* private mode */ }
        setTheme(next);
      }}>
      {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'} {label}
    </button>
  );
}

function Shell({ me, project, path, query, children, onLogout }) {
  const range = keepRange(query);
  return (
    <div class="shell">
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <Link href={`/${range}`} class="brand">Sextant</Link>
        <label class="inline">
          <span class="sr-only">Project</span>
          <select aria-label="Project" value={project || ''}
            onChange={(e) => {
              // Another project opens on the same section (traces stay traces), not on one item.
              const section = project ? path.split('/')[3] : '';
              const to = e.target.value ? `/p/${encodeURIComponent(e.target.value)}${section ? `/${section}` : ''}` : '/';
              navigate(to + range);
            }}>
            <option value="">All projects</option>
            {me.projects.map((p) => <option value={p.slug}>{p.name}</option>)}
          </select>
        </label>
        <span class="spacer" />
        <LiveIndicator />
        <ThemeToggle />
        <span class="muted user">{me.email}</span>
        <button class="btn ghost" onClick={onLogout}>Log out</button>
      </header>
      <nav class="side" aria-label="Sections">
        {project ? (
          <ul>
            {PROJECT_NAV.map(([sfx, label]) => {
              const href = `/p/${encodeURIComponent(project)}${sfx}`;
              const cur = sfx ? path.startsWith(href) : path === href;
              return <li><Link href={href + range} aria-current={cur ? 'page' : undefined}>{label}</Link></li>;
            })}
          </ul>
        ) : (
          <ul>
            <li><Link href={`/${range}`} aria-current={path === '/' ? 'page' : undefined}>All projects</Link></li>
            <li><Link href={`/compare${range}`} aria-current={path === '/compare' ? 'page' : undefined}>Compare</Link></li>
          </ul>
        )}
      </nav>
      <main id="main" tabIndex={-1}>{children}</main>
    </div>
  );
}

function App() {
  const { path, query } = useLocation();
  const [me, setMe] = useState(undefined);
  const loadMe = () => api('/me').then((m) => { setCsrf(m.csrfToken); setMe(m); }).catch(() => setMe(null));
  // The first check was started by index.html before the bundle arrived.
  const firstMe = () => {
    const early = window.sxMe;
    window.sxMe = null;
    if (!early) return loadMe();
    return early.then((r) => (r && r.ok ? r.json() : Promise.reject(new Error('no session'))))
      .then((m) => { setCsrf(m.csrfToken); setMe(m); })
      .catch(() => setMe(null));
  };
  useEffect(() => { firstMe(); onUnauthorized(() => setMe(null)); }, []);

  if (me === undefined) return <p class="muted center">Loading…</p>;
  if (!me || path === '/login') {
    // Signing in keeps the address that was asked for (a shared link), except /login.
    return <Login onLogin={() => loadMe().then(() => { if (location.pathname === '/login') navigate('/', { replace: true }); })} />;
  }
  let page = null, params = {}, title = 'Not found';
  for (const [pat, C, t] of ROUTES) {
    const m = match(pat, path);
    if (m) { page = C; params = m; title = t; break; }
  }
  document.title = `${title}${params.project ? ` · ${params.project}` : ''} · Sextant`;
  const logout = () => api('/auth/logout', { method: 'POST' }).catch(() => {}).then(() => { setMe(null); navigate('/login'); });
  const Page = page;
  return (
    <Session.Provider value={{ me, reloadMe: loadMe }}>
      <Shell me={me} project={params.project} path={path} query={query} onLogout={logout}>
        {Page ? <Page {...params} key={path} /> : <p class="notice">No such page. <Link href="/">Back to the overview</Link></p>}
      </Shell>
    </Session.Provider>
  );
}

render(<App />, document.getElementById('app'));
