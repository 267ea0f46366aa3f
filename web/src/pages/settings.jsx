// settings.jsx: project settings (sampling, retention, rate limits, quotas via PUT project),
// attribute rules (drop, truncate, redact; README "Attribute rules"), ingest keys, members and usage. Controls a role may not use are disabled, and the
// server's 403 is shown when it says no anyway.
import { useState } from 'preact/hooks';
import { call, pp } from '../api.js';
import { useFetch, fmtNum } from '../util.js';
import { ErrorBox, Loading } from '../components.jsx';
import { useSession, roleOf, atLeast } from '../session.js';

// [group, key, label] of the numeric settings; group null for top-level fields.
const FIELDS = [
  [null, 'samplingRate', 'Sampling rate (0..1)', 'any'],
  [null, 'slowTraceMs', 'Always keep spans slower than (ms, 0 off)', '1'],
  ['retentionDays', 'traces', 'Retention: traces (days)', '1'],
  ['retentionDays', 'logs', 'Retention: logs (days)', '1'],
  ['retentionDays', 'metrics', 'Retention: metrics (days)', '1'],
  ['rateLimits', 'spansPerSecond', 'Rate limit: spans/s', '1'],
  ['rateLimits', 'logsPerSecond', 'Rate limit: logs/s', '1'],
  ['rateLimits', 'metricPointsPerSecond', 'Rate limit: metric points/s', '1'],
  ['dailyQuota', 'spans', 'Daily quota: spans', '1'],
  ['dailyQuota', 'logs', 'Daily quota: logs', '1'],
  ['dailyQuota', 'metricPoints', 'Daily quota: metric points', '1'],
  [null, 'storageQuotaBytes', 'Storage quota (bytes)', '1'],
];
const NULLABLE = new Set(['rateLimits', 'dailyQuota', 'storageQuotaBytes']);

export function Settings({ project }) {
  const { me } = useSession();
  const role = roleOf(me, project);
  const admin = atLeast(role, 'admin');
  const proj = useFetch((signal) => call(pp(project), { signal }), [project]);
  const [saved, setSaved] = useState('');
  const [err, setErr] = useState(null);
  const save = async (e) => {
    e.preventDefault();
    const fd = new FormData(e.target);
    const body = { name: fd.get('name') };
    for (const [g, k] of FIELDS) {
      const raw = String(fd.get(`${g || ''}.${k}`) || '').trim();
      const nullable = NULLABLE.has(g) || NULLABLE.has(k);
      if (raw === '' && !nullable) continue;
      const v = raw === '' ? null : Number(raw);
      if (g) (body[g] = body[g] || {})[k] = v; else body[k] = v;
    }
    body.redactSecrets = fd.get('redactSecrets') === 'on';
    setErr(null);
    setSaved('');
    try {
      const r = await call(pp(project), { method: 'PUT', body });
      proj.setData(r.project || r);
      setSaved('Saved.');
    } catch (ex) { setErr(ex); }
  };
  const p = proj.data;
  return (
    <section>
      <h1>Settings</h1>
      <ErrorBox error={proj.error} what="the project" />
      <Loading when={proj.loading && !p} />
      {p && (
        <form class="card settings" onSubmit={save}>
          <h2>Project</h2>
          <fieldset disabled={!admin}>
            <label>Name<input name="name" defaultValue={p.name} required maxLength={200} /></label>
            <p class="muted small">Slug <code>{p.slug}</code> · status {p.status} · settings version {p.settingsVersion}</p>
            <div class="form-grid">
              {FIELDS.map(([g, k, label, step]) => {
                const v = g ? (p[g] || {})[k] : p[k];
                return <label>{label}<input name={`${g || ''}.${k}`} type="number" step={step} min="0" defaultValue={v ?? ''} placeholder="none" /></label>;
              })}
            </div>
            <label class="inline"><input type="checkbox" name="redactSecrets" defaultChecked={p.redactSecrets} /> Redact secrets in attributes</label>
            <div><button class="btn primary" type="submit">Save settings</button> <span role="status">{saved}</span></div>
          </fieldset>
          {!admin && <p class="muted small">Only admins and owners change settings.</p>}
          <ErrorBox error={err} what="the settings" doing="save" />
        </form>
      )}
      {p && <AttributeRules project={project} admin={admin} p={p} onSaved={(np) => proj.setData(np)} />}
      <Keys project={project} admin={admin} />
      <Members project={project} role={role} />
      <Usage project={project} />
    </section>
  );
}

const RULE_ACTIONS = [['drop', 'drop the attribute'], ['truncate', 'truncate the value'], ['redact', 'redact the value']];

/** A rule as the form edits it (every field a string or boolean). */
const ruleForm = (r) => ({ action: r.action || 'drop', key: r.key || '', pattern: r.pattern || '', maxLength: r.maxLength != null ? String(r.maxLength) : '', ignoreCase: !!r.ignoreCase });

/** The rule the API takes: only the fields its action uses; the server validates the rest. */
function ruleBody(f) {
  const r = { action: f.action };
  if (f.key.trim()) r.key = f.key.trim();
  if (f.action === 'truncate') r.maxLength = f.maxLength.trim() === '' ? null : Number(f.maxLength);
  if (f.action === 'redact' && f.pattern) {
    r.pattern = f.pattern;
    if (f.ignoreCase) r.ignoreCase = true;
  }
  return r;
}

/** The attribute rules editor: a list of rules applied in order, saved with PUT (attributeRules). */
function AttributeRules({ project, admin, p, onSaved }) {
  const [rules, setRules] = useState(() => (p.attributeRules || []).map(ruleForm));
  const [saved, setSaved] = useState('');
  const [err, setErr] = useState(null);
  const edit = (i, patch) => { setSaved(''); setRules((rs) => rs.map((r, k) => (k === i ? { ...r, ...patch } : r))); };
  const move = (i, d) => setRules((rs) => { const n = rs.slice(); [n[i], n[i + d]] = [n[i + d], n[i]]; return n; });
  const save = async (e) => {
    e.preventDefault();
    setErr(null);
    setSaved('');
    try {
      const r = await call(pp(project), { method: 'PUT', body: { attributeRules: rules.map(ruleBody) } });
      const np = r.project || r;
      setRules((np.attributeRules || []).map(ruleForm));
      onSaved(np);
      setSaved('Saved.');
    } catch (ex) { setErr(ex); }
  };
  return (
    <form class="card settings attr-rules" onSubmit={save} aria-label="Attribute rules">
      <h2>Attribute rules</h2>
      <p class="muted small">Applied in order to every attribute at ingest. <code>key</code> matches attribute keys
        (<code>*</code> matches any run of characters); a redact rule with a pattern (POSIX extended regular expression)
        replaces each match, in every string value and log body when it has no key.</p>
      <fieldset disabled={!admin}>
        {rules.length === 0 && <p class="muted">No rules.</p>}
        <ol class="rules">
          {rules.map((r, i) => {
            const n = i + 1;
            return (
              <li class="filters rule">
                <label>Action
                  <select aria-label={`Rule ${n} action`} value={r.action} onChange={(e) => edit(i, { action: e.target.value })}>
                    {RULE_ACTIONS.map(([v, l]) => <option value={v}>{`${v}: ${l}`}</option>)}
                  </select>
                </label>
                <label>Key<input aria-label={`Rule ${n} key`} value={r.key} placeholder={r.action === 'redact' ? 'any (with a pattern)' : 'http.request.header.*'} onInput={(e) => edit(i, { key: e.target.value })} /></label>
                {r.action === 'truncate' && <label>Max length (bytes)<input aria-label={`Rule ${n} max length`} type="number" min="1" value={r.maxLength} onInput={(e) => edit(i, { maxLength: e.target.value })} /></label>}
                {r.action === 'redact' && <label>Pattern<input aria-label={`Rule ${n} pattern`} class="mono" value={r.pattern} placeholder="whole value" onInput={(e) => edit(i, { pattern: e.target.value })} /></label>}
                {r.action === 'redact' && r.pattern && <label class="inline"><input type="checkbox" aria-label={`Rule ${n} ignore case`} checked={r.ignoreCase} onChange={(e) => edit(i, { ignoreCase: e.target.checked })} /> ignore case</label>}
                <span class="rule-buttons">
                  <button type="button" class="btn small" aria-label={`Move rule ${n} up`} disabled={i === 0} onClick={() => move(i, -1)}>↑</button>
                  <button type="button" class="btn small" aria-label={`Move rule ${n} down`} disabled={i === rules.length - 1} onClick={() => move(i, 1)}>↓</button>
                  <button type="button" class="btn small" aria-label={`Remove rule ${n}`} onClick={() => { setSaved(''); setRules((rs) => rs.filter((_, k) => k !== i)); }}>Remove</button>
                </span>
              </li>
            );
          })}
        </ol>
        <div>
          <button type="button" class="btn" onClick={() => { setSaved(''); setRules((rs) => [...rs, ruleForm({})]); }}>Add rule</button>{' '}
          <button class="btn primary" type="submit">Save attribute rules</button> <span role="status">{saved}</span>
        </div>
      </fieldset>
      {!admin && <p class="muted small">Only admins and owners change attribute rules.</p>}
      <ErrorBox error={err} what="the attribute rules" doing="save" />
    </form>
  );
}

function Keys({ project, admin }) {
  const keys = useFetch((signal) => (admin ? call(pp(project, '/keys'), { signal }) : Promise.resolve(null)), [project, admin]);
  const [secret, setSecret] = useState('');
  const [err, setErr] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    setErr(null);
    try {
      const r = await call(pp(project, '/keys'), { method: 'POST', body: { name: new FormData(e.target).get('name') } });
      setSecret(r.key);
      e.target.reset();
      keys.reload();
    } catch (ex) { setErr(ex); }
  };
  const revoke = async (k) => {
    if (!window.confirm(`Revoke key ${k.name} (${k.prefix}…)? Senders using it are refused at once.`)) return;
    try { await call(pp(project, `/keys/${k.id}`), { method: 'DELETE' }); keys.reload(); } catch (ex) { setErr(ex); }
  };
  return (
    <div class="card">
      <h2>Ingest keys</h2>
      {!admin ? <p class="muted">Only admins and owners see ingest keys.</p> : (
        <>
          <ErrorBox error={keys.error} what="keys" />
          {secret && <p class="notice" role="status">New key (shown once): <code class="secret">{secret}</code></p>}
          <table>
            <thead><tr><th>name</th><th>prefix</th><th>created</th><th>last used</th><th>state</th><th /></tr></thead>
            <tbody>
              {(keys.data ? keys.data.keys : []).map((k) => (
                <tr>
                  <td>{k.name}</td><td class="mono">{k.prefix}…</td><td>{k.createdAt}</td><td>{k.lastUsedAt || 'never'}</td>
                  <td>{k.revokedAt ? <span class="badge">revoked</span> : 'live'}</td>
                  <td>{!k.revokedAt && <button class="btn small" onClick={() => revoke(k)}>Revoke</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <form class="filters" onSubmit={create}>
            <label>Name<input name="name" required maxLength={100} placeholder="prod" /></label>
            <button class="btn" type="submit">Create key</button>
          </form>
          <ErrorBox error={err} what="the key change" doing="save" />
        </>
      )}
    </div>
  );
}

const ROLES = ['viewer', 'member', 'admin', 'owner'];

function Members({ project, role }) {
  const members = useFetch((signal) => call(pp(project, '/members'), { signal }), [project]);
  const [err, setErr] = useState(null);
  const admin = atLeast(role, 'admin');
  const add = async (email, r) => {
    setErr(null);
    try { await call(pp(project, '/members'), { method: 'POST', body: { email, role: r } }); members.reload(); } catch (ex) { setErr(ex); }
  };
  const remove = async (m) => {
    if (!window.confirm(`Remove ${m.email} from the project?`)) return;
    setErr(null);
    try { await call(pp(project, `/members/${m.userId}`), { method: 'DELETE' }); members.reload(); } catch (ex) { setErr(ex); }
  };
  return (
    <div class="card">
      <h2>Members</h2>
      <ErrorBox error={members.error} what="members" />
      <table>
        <thead><tr><th>email</th><th>name</th><th>role</th><th /></tr></thead>
        <tbody>
          {(members.data ? members.data.members : []).map((m) => (
            <tr>
              <td>{m.email}</td><td>{m.name}</td>
              <td>
                <select aria-label={`Role of ${m.email}`} value={m.role} disabled={!admin} onChange={(e) => add(m.email, e.target.value)}>
                  {ROLES.map((r) => <option value={r}>{r}</option>)}
                </select>
              </td>
              <td>{admin && <button class="btn small" onClick={() => remove(m)}>Remove</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {admin && (
        <form class="filters" onSubmit={(e) => { e.preventDefault(); const fd = new FormData(e.target); add(fd.get('email'), fd.get('role')); e.target.reset(); }}>
          <label>Email<input name="email" type="email" required /></label>
          <label>Role<select name="role">{ROLES.map((r) => <option value={r} selected={r === 'member'}>{r}</option>)}</select></label>
          <button class="btn" type="submit">Add member</button>
        </form>
      )}
      <ErrorBox error={err} what="the member change" doing="save" />
    </div>
  );
}

function Usage({ project }) {
  const usage = useFetch((signal) => call(pp(project, '/usage'), { signal, query: { days: 7 } }), [project]);
  const days = usage.data ? usage.data.days : [];
  return (
    <div class="card">
      <h2>Usage (last 7 days)</h2>
      <ErrorBox error={usage.error} what="usage" />
      <table>
        <thead><tr><th>day</th><th class="num">spans</th><th class="num">logs</th><th class="num">metric points</th><th class="num">refused</th></tr></thead>
        <tbody>
          {days.map((d) => {
            const acc = (s) => (d[s] ? d[s].accepted : 0);
            const refused = ['spans', 'logs', 'metrics'].reduce((n, s) => n + Object.entries(d[s] || {}).filter(([k]) => k !== 'accepted').reduce((a, [, v]) => a + (Number(v) || 0), 0), 0);
            return <tr><td>{d.date}</td><td class="num">{fmtNum(acc('spans'))}</td><td class="num">{fmtNum(acc('logs'))}</td><td class="num">{fmtNum(acc('metrics'))}</td><td class="num">{fmtNum(refused)}</td></tr>;
          })}
        </tbody>
      </table>
    </div>
  );
}
