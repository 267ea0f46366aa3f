// dashboards.test.mjs: the dashboard API of contract B against the real stack. Custom dashboards:
// create, read, list, update with optimistic versions (409 version_conflict), delete (204), each
// change audited with its actor; every validation limit answered 400 (413 for the body) naming the
// field and storing nothing; roles (a viewer reads and gets 403 for writes, a user of another
// project gets 404, CSRF by cookie). Then GET .../overview and GET /analytics/cross-project with
// figures computed here from what the test sent: spans built in the test (requests, errors, rate,
// rps, percentiles inside [min, max], the series per step, top endpoints), log records around and
// inside the window (logErrors counts severity >= ERROR inside it), issues seeded with psql
// (open, new, merged and resolved ones; top issues by events in the window), health from recent
// spans (failing on a 25% error rate, healthy, unknown without recent requests); cross-project
// lists exactly the caller's projects (every one for an instance admin, its own for a project token).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually, apiError } from './lib/stack.mjs';
import { encodeTraceRequest } from './lib/otlp.mjs';

const stack = useStack('dashboards');

const U = {}; // users: {id, email, token, cookie, csrf}
const P = {}; // projects: A (ann owns, cy member, di viewer), B (ed owns), C (ann owns)
const hex = (n) => randomBytes(n).toString('hex');
const MINUTE_MS = 60_000;

/** One API call; query: parameters; token: a bearer token; cookie/csrf for a session; raw: a body sent as is. */
function call(method, p, { body, raw, query, token, cookie, csrf, headers = {} } = {}) {
  const h = { Accept: 'application/json', 'User-Agent': 'dashboards-e2e/1', ...headers };
  if (body !== undefined || raw !== undefined) h['Content-Type'] ??= 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  if (cookie) h.Cookie = `sx_session=${cookie}`;
  if (csrf) h['X-CSRF-Token'] = csrf;
  const u = new URL(p.replace(/^\/+/, ''), stack.apiBase);
  for (const [k, v] of Object.entries(query ?? {})) u.searchParams.append(k, v);
  return stack.request(method, u, { headers: h, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
}
const as = (who) => ({ token: U[who].token });
function ok(r, want = 200) {
  assert.equal(r.status, want, `${r.status} ${r.text.slice(0, 400)}`);
  return want === 204 ? null : r.json();
}

async function newUser(name, ...flags) {
  const u = await stack.ctl('user', 'create', `${name}-${hex(2)}@example.com`, ...flags);
  const login = await call('POST', 'auth/login', { body: { email: u.email, password: u.password } });
  assert.equal(login.status, 200, login.text);
  const cookie = /sx_session=([^;]+)/.exec(login.headers['set-cookie'].join('\n'))[1];
  const csrf = login.json().csrfToken;
  const t = ok(await call('POST', 'me/tokens', { body: { name: 'e2e' }, cookie, csrf }), 201);
  U[name] = { id: u.id, email: u.email, token: t.token, cookie, csrf };
}

async function newProject(owner, name) {
  const p = ok(await call('POST', 'projects', { body: { name: `${name} ${hex(3)}` }, ...as(owner) }), 201).project;
  const k = ok(await call('POST', `projects/${p.slug}/keys`, { body: { name: 'e2e' }, ...as(owner) }), 201);
  // Error logs make no issues here: the issues are seeded below, so every count is known.
  await stack.ctl('project', 'errors', p.slug, '--error-logs', 'off');
  return { id: p.id, slug: p.slug, name: p.name, key: k.key };
}

const PANELS = [
  { id: 'req', title: 'Requests', type: 'timeseries', query: { source: 'red', service: 'shop', field: 'requests' },
    layout: { x: 0, y: 0, w: 6, h: 4 } },
  { id: 'lat', title: 'Latenz p95 – Übersicht', type: 'stat',
    query: { source: 'metrics', metric: 'http.server.duration', aggregation: 'p95', groupBy: ['http.route'],
      filters: { env: 'prod' } },
    layout: { x: 6, y: 0, w: 6, h: 4 } },
  { id: 'errs', title: 'Error logs', type: 'bar', query: { source: 'logs', severity: 'ERROR', q: 'timeout' },
    layout: { x: 0, y: 4, w: 12, h: 3 } },
];

stackTest(stack, 'users and projects: A (ann owner, cy member, di viewer), B (ed), C (ann)', async () => {
  for (const n of ['ann', 'cy', 'di', 'ed']) await newUser(n);
  await newUser('root', '--admin');
  P.A = await newProject('ann', 'Dash Alpha');
  P.B = await newProject('ed', 'Dash Bravo');
  P.C = await newProject('ann', 'Dash Charlie');
  ok(await call('POST', `projects/${P.A.slug}/members`, { body: { email: U.cy.email, role: 'member' }, ...as('ann') }), 201);
  ok(await call('POST', `projects/${P.A.slug}/members`, { body: { email: U.di.email, role: 'viewer' }, ...as('ann') }), 201);
});

// ---- dashboards ------------------------------------------------------------------------------

stackTest(stack, 'CRUD round trip: create 201, get, list, put bumps the version, stale put 409, delete 204', async () => {
  const base = `projects/${P.A.slug}/dashboards`;
  assert.deepEqual(ok(await call('GET', base, as('di'))).dashboards, []);
  const created = ok(await call('POST', base, { body: { name: 'Shop', description: 'the shop', panels: PANELS }, ...as('cy') }), 201).dashboard;
  assert.equal(typeof created.id, 'number');
  assert.equal(created.name, 'Shop');
  assert.equal(created.description, 'the shop');
  assert.equal(created.version, 1);
  assert.deepEqual(created.panels, PANELS);
  assert.equal(created.createdBy, U.cy.email);
  assert.equal(created.updatedBy, U.cy.email);
  assert.ok(!Number.isNaN(Date.parse(created.createdAt)) && created.createdAt === created.updatedAt, JSON.stringify(created));

  // Optional members of a query: groupBy and filters come back empty; no description is "".
  const bare = ok(await call('POST', base, { body: { name: 'Bare', panels: [{ id: 'm', title: '', type: 'table',
    query: { source: 'metrics', metric: 'queue.depth', aggregation: 'max' }, layout: { x: 0, y: 0, w: 12, h: 1 } }] },
  ...as('ann') }), 201).dashboard;
  assert.equal(bare.description, '');
  assert.deepEqual(bare.panels[0].query, { source: 'metrics', metric: 'queue.depth', aggregation: 'max', groupBy: [], filters: {} });
  // By id and by the project's id as well as its slug; a viewer reads.
  assert.deepEqual(ok(await call('GET', `${base}/${created.id}`, as('di'))).dashboard, created);
  assert.deepEqual(ok(await call('GET', `projects/${P.A.id}/dashboards/${created.id}`, as('cy'))).dashboard, created);

  const list = ok(await call('GET', base, as('di'))).dashboards;
  assert.deepEqual(list.map((d) => [d.name, d.panelCount]), [['Bare', 1], ['Shop', 3]]);
  const item = list.find((d) => d.id === created.id);
  assert.deepEqual(Object.keys(item).sort(), ['description', 'id', 'name', 'panelCount', 'updatedAt', 'updatedBy']);

  // PUT: only what is given changes; the version goes up by one.
  const put = ok(await call('PUT', `${base}/${created.id}`, { body: { name: 'Shop (prod)', version: 1 }, ...as('ann') })).dashboard;
  assert.equal(put.name, 'Shop (prod)');
  assert.equal(put.version, 2);
  assert.deepEqual(put.panels, PANELS);
  assert.equal(put.description, 'the shop');
  assert.equal(put.createdBy, U.cy.email);
  assert.equal(put.updatedBy, U.ann.email);
  const panels2 = [PANELS[2]];
  const put2 = ok(await call('PUT', `${base}/${created.id}`, { body: { panels: panels2, description: '', version: 2 }, ...as('cy') })).dashboard;
  assert.equal(put2.version, 3);
  assert.deepEqual(put2.panels, panels2);
  assert.equal(put2.description, '');
  // A stale version: 409 version_conflict, and nothing changes.
  const stale = await call('PUT', `${base}/${created.id}`, { body: { name: 'lost update', version: 2 }, ...as('ann') });
  assert.equal(stale.status, 409, stale.text);
  assert.equal(apiError(stale).code, 'version_conflict');
  assert.match(apiError(stale).message, /version 3/);
  assert.deepEqual(ok(await call('GET', `${base}/${created.id}`, as('di'))).dashboard, put2);

  // DELETE: 204 with no body; then 404 for GET, PUT and DELETE.
  const del = await call('DELETE', `${base}/${created.id}`, as('cy'));
  assert.equal(del.status, 204, del.text);
  assert.equal(del.text, '');
  assert.equal((await call('GET', `${base}/${created.id}`, as('cy'))).status, 404);
  assert.equal((await call('PUT', `${base}/${created.id}`, { body: { name: 'x', version: 3 }, ...as('cy') })).status, 404);
  assert.equal((await call('DELETE', `${base}/${created.id}`, as('cy'))).status, 404);
  for (const bad of ['0', 'abc', '-1', '99999999999999999999']) assert.equal((await call('GET', `${base}/${bad}`, as('cy'))).status, 404, bad);
  assert.deepEqual(ok(await call('GET', base, as('cy'))).dashboards.map((d) => d.name), ['Bare']);
  P.A.bare = bare;
  P.A.deleted = created.id;
});

stackTest(stack, 'every change is audited with its actor, target and details', async () => {
  const entries = ok(await call('GET', `projects/${P.A.slug}/audit?limit=500`, as('ann'))).entries
    .filter((e) => e.action.startsWith('dashboard.')).reverse();
  const id = String(P.A.deleted);
  assert.deepEqual(entries.filter((e) => e.target === id).map((e) => [e.action, e.actor, e.details.version, e.details.panels]), [
    ['dashboard.create', U.cy.email, 1, 3],
    ['dashboard.update', U.ann.email, 2, 3],
    ['dashboard.update', U.cy.email, 3, 1],
    ['dashboard.delete', U.cy.email, 3, 1],
  ]);
  assert.equal(entries.find((e) => e.target === id).details.name, 'Shop');
  assert.ok(entries.some((e) => e.action === 'dashboard.create' && e.target === String(P.A.bare.id) && e.actor === U.ann.email));
  // Refused changes (the stale PUT above, the 404s) wrote nothing.
  assert.equal(entries.length, 5);
});

stackTest(stack, 'validation: each limit and shape error is a 400 naming the field; nothing is stored', async () => {
  const base = `projects/${P.A.slug}/dashboards`;
  const panel = (over = {}) => ({ ...PANELS[0], ...over });
  const many = (n) => Array.from({ length: n }, (_, i) => panel({ id: `p${i}` }));
  const long = 'x'.repeat(201);
  const cases = [
    [{ name: 'x', panels: many(51) }, /^panels: 51 panels: at most 50/],
    [{ name: long, panels: [] }, /^name: longer than 200 characters/],
    [{ name: 'x', description: long }, /^description: longer than 200/],
    [{ name: '' }, /^name: must not be empty/],
    [{ panels: [] }, /^name: is required/],
    [{ name: 'x', panels: {} }, /^panels: must be an array/],
    [{ name: 'x', owner: 'me' }, /unknown member "owner"/],
    [{ name: 'x', panels: ['nope'] }, /^panels\[0\]: must be an object/],
    [{ name: 'x', panels: [panel({ title: long })] }, /^panels\[0\]\.title: longer than 200/],
    [{ name: 'x', panels: [panel(), panel({ id: 'req' })] }, /^panels\[1\]: id "req" is used by panels\[0\]/],
    [{ name: 'x', panels: [panel({ id: '' })] }, /^panels\[0\]\.id: must not be empty/],
    [{ name: 'x', panels: [panel({ type: 'pie' })] }, /^panels\[0\]\.type: must be one of timeseries\|stat\|table\|bar/],
    [{ name: 'x', panels: [panel({ color: 'red' })] }, /^panels\[0\]: unknown member "color"/],
    [{ name: 'x', panels: [panel({ query: undefined })] }, /^panels\[0\]\.query: is required/],
    [{ name: 'x', panels: [panel({ query: { source: 'sql' } })] }, /^panels\[0\]\.query\.source: must be one of metrics\|red\|logs/],
    [{ name: 'x', panels: [panel({ query: { source: 'red', field: 'apdex' } })] }, /^panels\[0\]\.query\.field: must be one of/],
    [{ name: 'x', panels: [panel({ query: { source: 'red', field: 'rps', metric: 'm' } })] }, /^panels\[0\]\.query: unknown member "metric"/],
    [{ name: 'x', panels: [panel({ query: { source: 'metrics', metric: 'm', aggregation: 'median' } })] },
      /^panels\[0\]\.query\.aggregation: must be one of sum\|avg\|min\|max\|count\|rate\|p50\|p95\|p99/],
    [{ name: 'x', panels: [panel({ query: { source: 'metrics', aggregation: 'sum' } })] }, /^panels\[0\]\.query\.metric: is required/],
    [{ name: 'x', panels: [panel({ query: { source: 'metrics', metric: 'm', aggregation: 'sum', groupBy: 'route' } })] },
      /^panels\[0\]\.query\.groupBy: must be an array/],
    [{ name: 'x', panels: [panel({ query: { source: 'metrics', metric: 'm', aggregation: 'sum', groupBy: [long] } })] },
      /^panels\[0\]\.query\.groupBy\[0\]: longer than 200/],
    [{ name: 'x', panels: [panel({ query: { source: 'metrics', metric: 'm', aggregation: 'sum', filters: { env: 1 } } })] },
      /^panels\[0\]\.query\.filters\.env: must be a string/],
    // Nesting: a filter value that is an object is refused as a shape error, deeper ones by the parser's depth limit.
    [{ name: 'x', panels: [panel({ query: { source: 'metrics', metric: 'm', aggregation: 'sum', filters: { env: { a: 'b' } } } })] },
      /^panels\[0\]\.query\.filters\.env: must be a string/],
    [{ name: 'x', panels: [panel({ query: { source: 'metrics', metric: 'm', aggregation: 'sum', filters: { a: { b: { c: { d: [[1]] } } } } } })] },
      /nested too deeply/],
    [{ name: 'x', panels: [panel({ query: { source: 'logs', severity: 'LOUD' } })] }, /^panels\[0\]\.query\.severity: must be/],
    [{ name: 'x', panels: [panel({ query: { source: 'logs', severity: 25 } })] }, /^panels\[0\]\.query\.severity: must be/],
    [{ name: 'x', panels: [panel({ layout: { x: 8, y: 0, w: 6, h: 2 } })] }, /^panels\[0\]\.layout: x \+ w is 14/],
    [{ name: 'x', panels: [panel({ layout: { x: 0, y: 0, w: 0, h: 2 } })] }, /^panels\[0\]\.layout\.w: must be an integer from 1 to 12/],
    [{ name: 'x', panels: [panel({ layout: { x: 0, y: 0, w: 2 } })] }, /^panels\[0\]\.layout\.h: is required/],
    [{ name: 'x', panels: [panel({ layout: { x: 0.5, y: 0, w: 2, h: 1 } })] }, /^panels\[0\]\.layout\.x: must be an integer/],
    [[], /the body must be a JSON object/],
  ];
  for (const [body, re] of cases) {
    const r = await call('POST', base, { body, ...as('cy') });
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 200)}: ${r.status} ${r.text.slice(0, 300)}`);
    const e = apiError(r);
    assert.equal(e.code, 'bad_request');
    assert.match(e.message, re, JSON.stringify(body).slice(0, 200));
  }
  // The limits themselves pass: 50 panels, 200 characters (not bytes: 'é' is two), empty panels.
  const edge = ok(await call('POST', base, { body: { name: 'é'.repeat(200), description: 'ü'.repeat(200),
    panels: many(50).map((p, i) => ({ ...p, title: 'ß'.repeat(200), layout: { x: i % 12, y: i, w: 12 - (i % 12), h: 1 } })) },
  ...as('cy') }), 201).dashboard;
  assert.equal(edge.panels.length, 50);
  assert.equal(edge.name, 'é'.repeat(200));
  ok(await call('DELETE', `${base}/${edge.id}`, as('cy')), 204);

  // PUT: version required and an integer; the same panel checks.
  const id = P.A.bare.id;
  for (const [body, re] of [[{ name: 'x' }, /^body\.version: is required/], [{ name: 'x', version: '1x' }, /^body\.version: must be an integer/],
    [{ version: 0 }, /^body\.version: must be an integer from 1/], [{ version: 1, panels: many(51) }, /^panels: 51 panels/]]) {
    const r = await call('PUT', `${base}/${id}`, { body, ...as('cy') });
    assert.equal(r.status, 400, r.text);
    assert.match(apiError(r).message, re);
  }
  // Over 64 KB: 413; not JSON: 400; not application/json: 415.
  const big = await call('POST', base, { body: { name: 'x', description: 'y'.repeat(70_000) }, ...as('cy') });
  assert.equal(big.status, 413, big.text);
  assert.equal(apiError(big).code, 'too_large');
  assert.equal((await call('POST', base, { raw: '{"name": "x",', ...as('cy') })).status, 400);
  assert.equal((await call('POST', base, { raw: '{"name":"x"}', headers: { 'Content-Type': 'text/plain' }, ...as('cy') })).status, 415);
  // Nothing of the above was stored.
  const after = ok(await call('GET', base, as('cy'))).dashboards;
  assert.deepEqual(after.map((d) => [d.id, d.name]), [[id, 'Bare']]);
  assert.equal(ok(await call('GET', `${base}/${id}`, as('cy'))).dashboard.version, 1);
});

stackTest(stack, 'roles: a viewer reads but may not write (403); another project\'s user gets 404; CSRF by cookie', async () => {
  const base = `projects/${P.A.slug}/dashboards`;
  const id = P.A.bare.id;
  ok(await call('GET', base, as('di')));
  for (const [m, p, body] of [['POST', base, { name: 'v' }], ['PUT', `${base}/${id}`, { name: 'v', version: 1 }], ['DELETE', `${base}/${id}`]]) {
    const r = await call(m, p, { body, ...as('di') });
    assert.equal(r.status, 403, `viewer ${m} ${p}: ${r.text}`);
    assert.equal(apiError(r).code, 'forbidden');
    // ed (owner of B, nothing on A) and B's ingest key: 404 and 401, by slug and by id.
    for (const path of [p, p.replace(P.A.slug, String(P.A.id))]) {
      assert.equal((await call(m, path, { body, ...as('ed') })).status, 404, `ed ${m} ${path}`);
      assert.equal((await call(m, path, { body, token: P.B.key })).status, 401, `B's key ${m} ${path}`);
    }
  }
  assert.equal((await call('GET', base, as('ed'))).status, 404);
  assert.equal((await call('GET', `${base}/${id}`, as('ed'))).status, 404);
  assert.equal((await call('GET', `projects/${P.A.slug}/overview`, as('ed'))).status, 404);
  // A's dashboard id under B's own path: 404 for B's owner.
  assert.equal((await call('GET', `projects/${P.B.slug}/dashboards/${id}`, as('ed'))).status, 404);
  assert.equal((await call('PUT', `projects/${P.B.slug}/dashboards/${id}`, { body: { name: 'pwned', version: 1 }, ...as('ed') })).status, 404);
  assert.equal((await call('DELETE', `projects/${P.B.slug}/dashboards/${id}`, as('ed'))).status, 404);
  // By cookie: without the CSRF header 403 csrf, with it 201.
  const nocsrf = await call('POST', base, { body: { name: 'cookie' }, cookie: U.cy.cookie });
  assert.equal(nocsrf.status, 403);
  assert.equal(apiError(nocsrf).code, 'csrf');
  const c = ok(await call('POST', base, { body: { name: 'cookie' }, cookie: U.cy.cookie, csrf: U.cy.csrf }), 201).dashboard;
  ok(await call('DELETE', `${base}/${c.id}`, { cookie: U.cy.cookie, csrf: U.cy.csrf }), 204);
  // Methods: 405 with Allow.
  const r = await call('PATCH', `${base}/${id}`, { body: {}, ...as('cy') });
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, 'GET, HEAD, PUT, DELETE');
  assert.equal(ok(await call('GET', `${base}/${id}`, as('cy'))).dashboard.name, 'Bare', 'unchanged');
});

// ---- overview and cross-project ------------------------------------------------------------

// The scenario lives around T0, 40 minutes ago (minute-aligned), away from the health window.
const T0_MS = Math.floor((Date.now() - 40 * MINUTE_MS) / MINUTE_MS) * MINUTE_MS;
const FROM_MS = T0_MS - 10 * MINUTE_MS;
const TO_MS = T0_MS + 10 * MINUTE_MS - 1;
const STEP_MS = 5 * MINUTE_MS;
const WINDOW = { from: String(FROM_MS), to: String(TO_MS), step: '5m' };
const ns = (ms) => BigInt(ms) * 1_000_000n;

function span({ name, route, ms, atMs, error = false, status = 200, kind = 2 }) {
  const start = ns(atMs);
  return { traceId: hex(16), spanId: hex(8), name, kind, start, end: start + BigInt(Math.round(ms * 1e6)),
    attributes: route ? { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': status } : {},
    ...(error ? { status: { code: 2, message: 'boom' } } : {}), ms, error: error || status >= 500, service: '', route };
}

async function sendSpans(project, service, spans) {
  for (const s of spans) s.service = service;
  for (let i = 0; i < spans.length; i += 20) {
    const r = await stack.ingest(encodeTraceRequest([{ resource: { 'service.name': service }, spans: spans.slice(i, i + 20) }]),
      { key: project.key });
    assert.equal(r.status, 200, r.text);
  }
}

async function sendLogs(project, records) {
  const url = new URL(stack.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/logs');
  const body = { resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'shop' } }] },
    scopeLogs: [{ scope: { name: 'e2e' }, logRecords: records.map(([atMs, sev, text]) => ({
      timeUnixNano: String(ns(atMs)), severityNumber: sev, body: { stringValue: text } })) }] }] };
  const r = await stack.request('POST', url, { headers: { 'Content-Type': 'application/json', 'X-API-Key': project.key },
    body: JSON.stringify(body) });
  assert.equal(r.status, 200, r.text);
}

/** Seeds an issue with psql; counts: [[hourMs, events]]. Returns its id. */
async function seedIssue(project, { title, status = 'unresolved', firstMs, lastMs, counts = [], mergedInto = null }) {
  const sub = status === 'resolved' ? 'resolved' : 'ongoing';
  const id = (await stack.psql(
    `WITH s AS (INSERT INTO issue_seq (project_id, last_seq) VALUES (${project.id}, 1)
       ON CONFLICT (project_id) DO UPDATE SET last_seq = issue_seq.last_seq + 1 RETURNING last_seq)
     INSERT INTO issues (project_id, short_seq, grouping_version, grouping_rule, title, type, message, culprit, level,
       service, status, substatus, first_seen_ns, last_seen_ns, event_count, user_count, merged_into)
     SELECT ${project.id}, s.last_seq, 'v1', 'message', '${title}', 'Error', '${title}', '', 'error', 'shop',
       '${status}', '${sub}', ${ns(firstMs)}, ${ns(lastMs)}, ${counts.reduce((a, [, n]) => a + n, 0)}, 0, ${mergedInto ?? 'NULL'}
     FROM s RETURNING id`)).split('\n')[0];
  for (const [hourMs, n] of counts) {
    await stack.psql(`INSERT INTO issue_counts_hourly (project_id, issue_id, hour_ns, events) VALUES (${project.id}, ${id}, ${ns(hourMs)}, ${n})`);
  }
  return id;
}

// Project A: two services in the window, in two steps; project C: one route. Durations of each
// endpoint fall in one rollup bucket, so every percentile lies in [min, max] of its spans.
const A_SHOP = [];
for (let i = 0; i < 30; i++) {
  A_SHOP.push(span({ name: 'GET /items', route: '/items', ms: 101 + i, atMs: T0_MS + i * 500, status: i < 3 ? 503 : 200 }));
}
for (let i = 0; i < 12; i++) {
  A_SHOP.push(span({ name: 'GET /cart', route: '/cart', ms: 11 + i / 2, atMs: T0_MS + 6 * MINUTE_MS + i * 100, error: i === 0 }));
}
const A_BILLING = [];
for (let i = 0; i < 8; i++) A_BILLING.push(span({ name: 'charge', ms: 40 + i, atMs: T0_MS + 2 * MINUTE_MS + i }));
// Outside the window: counted nowhere.
const A_OUTSIDE = [span({ name: 'GET /items', route: '/items', ms: 5000, atMs: FROM_MS - 2 * MINUTE_MS, status: 500 }),
  span({ name: 'GET /items', route: '/items', ms: 5000, atMs: TO_MS + 2 * MINUTE_MS, status: 500 })];
const C_API = [];
for (let i = 0; i < 5; i++) C_API.push(span({ name: 'GET /x', route: '/x', ms: 2 + i * 0.2, atMs: T0_MS + i, status: 200 }));

function expected(spans) {
  const inWin = spans.filter((s) => Number(s.start / 1_000_000n) >= FROM_MS && Number(s.start / 1_000_000n) <= TO_MS);
  const requests = inWin.length;
  const errors = inWin.filter((s) => s.error).length;
  const first = Math.floor(FROM_MS / STEP_MS);
  const nsteps = Math.floor(TO_MS / STEP_MS) - first + 1;
  const t = Array.from({ length: nsteps }, (_, k) => (first + k) * STEP_MS);
  const sreq = new Array(nsteps).fill(0);
  const serr = new Array(nsteps).fill(0);
  const slo = new Array(nsteps).fill(Infinity);
  const shi = new Array(nsteps).fill(-Infinity);
  for (const s of inWin) {
    const minute = Math.floor(Number(s.start / 1_000_000n) / MINUTE_MS) * MINUTE_MS;
    const k = Math.floor(minute / STEP_MS) - first;
    sreq[k]++;
    if (s.error) serr[k]++;
    slo[k] = Math.min(slo[k], s.ms);
    shi[k] = Math.max(shi[k], s.ms);
  }
  const ms = inWin.map((s) => s.ms);
  return { requests, errors, errorRate: requests ? errors / requests : 0, rps: requests / (((TO_MS - FROM_MS) * 1e6 + 1) / 1e9), // [from, to] inclusive, in ns
    lo: Math.min(...ms), hi: Math.max(...ms), t, sreq, serr, slo, shi };
}

/** The series' p50, p95 and p99 per step: null without requests, else ordered and inside the
 * step's [min, max] durations; p50 below p99 in the step of GET /items (101..130 ms). */
function assertSeriesPercentiles(series, exp, what) {
  for (const k of ['p50', 'p95', 'p99']) assert.equal(series[k].length, exp.t.length, `${what} ${k} length`);
  exp.t.forEach((_, k) => {
    const [p50, p95, p99] = [series.p50[k], series.p95[k], series.p99[k]];
    if (!exp.sreq[k]) {
      assert.deepEqual([p50, p95, p99], [null, null, null], `${what} step ${k}`);
      return;
    }
    assert.ok(p50 <= p95 && p95 <= p99, `${what} step ${k}: ${p50} ${p95} ${p99} out of order`);
    assert.ok(p50 >= exp.slo[k] - 1e-9 && p99 <= exp.shi[k] + 1e-9, `${what} step ${k}: outside [${exp.slo[k]}, ${exp.shi[k]}]`);
  });
  const items = Math.floor(T0_MS / STEP_MS) - Math.floor(FROM_MS / STEP_MS);
  assert.ok(series.p50[items] < series.p99[items], `${what}: p50 ${series.p50[items]} not below p99 ${series.p99[items]}`);
}

function assertRed(got, exp, what) {
  assert.equal(got.requests, exp.requests, `${what} requests`);
  assert.equal(got.errors ?? exp.errors, exp.errors, `${what} errors`);
  assert.ok(Math.abs(got.errorRate - exp.errorRate) < 1e-12, `${what} errorRate ${got.errorRate} != ${exp.errorRate}`);
  assert.ok(Math.abs(got.rps - exp.rps) < 1e-9, `${what} rps ${got.rps} != ${exp.rps}`);
  for (const k of ['p50', 'p95', 'p99']) {
    assert.ok(got[k] >= exp.lo - 1e-9 && got[k] <= exp.hi + 1e-9, `${what} ${k} ${got[k]} outside [${exp.lo}, ${exp.hi}]`);
  }
  assert.ok(got.p50 <= got.p95 && got.p95 <= got.p99, `${what} percentiles out of order`);
}

const RECENT_MS = () => Date.now() - 2 * MINUTE_MS;

stackTest(stack, 'overview: totals, series, top endpoints and issues, logErrors and health from what was sent', async () => {
  await sendSpans(P.A, 'shop', [...A_SHOP, ...A_OUTSIDE]);
  await sendSpans(P.A, 'billing', A_BILLING);
  await sendSpans(P.C, 'api', C_API);
  // Recent spans (outside the window) for health: A fails (25% errors over 20), C is healthy, B has none.
  const now = RECENT_MS();
  const recentA = Array.from({ length: 20 }, (_, i) => span({ name: 'GET /items', route: '/items', ms: 100, atMs: now + i, status: i < 5 ? 500 : 200 }));
  const recentC = Array.from({ length: 12 }, (_, i) => span({ name: 'GET /x', route: '/x', ms: 2, atMs: now + i }));
  await sendSpans(P.A, 'shop', recentA);
  await sendSpans(P.C, 'api', recentC);
  // Logs: 4 at ERROR or above inside the window, 3 below ERROR, 2 severe ones outside it.
  await sendLogs(P.A, [[T0_MS, 17, 'db timeout'], [T0_MS + 1000, 21, 'fatal'], [T0_MS + 7 * MINUTE_MS, 19, 'error3'],
    [TO_MS, 17, 'last ms'], [T0_MS, 13, 'warn'], [T0_MS, 9, 'info'], [T0_MS, 16, 'warn4'],
    [FROM_MS - 1, 17, 'before'], [TO_MS + 1, 17, 'after']]);
  // Issues: two open (one new), one resolved new one, one merged new one (never counted).
  const hour = Math.floor(T0_MS / 3_600_000) * 3_600_000;
  const i1 = await seedIssue(P.A, { title: 'TypeError in cart', firstMs: T0_MS, lastMs: T0_MS + 60_000, counts: [[hour, 7]] });
  const i2 = await seedIssue(P.A, { title: 'Old timeout', firstMs: T0_MS - 2 * 86_400_000, lastMs: T0_MS, counts: [[hour, 3], [hour - 86_400_000, 50]] });
  const i3 = await seedIssue(P.A, { title: 'Fixed bug', status: 'resolved', firstMs: T0_MS + 1000, lastMs: T0_MS + 2000, counts: [[hour, 1]] });
  await seedIssue(P.A, { title: 'Merged dup', firstMs: T0_MS, lastMs: T0_MS, counts: [[hour, 40]], mergedInto: i1 });
  await seedIssue(P.B, { title: 'Secret B', firstMs: T0_MS, lastMs: T0_MS, counts: [[hour, 9]] });

  const all = [...A_SHOP, ...A_BILLING, ...A_OUTSIDE];
  const expA = expected(all);
  let body;
  await eventually(async () => {
    body = ok(await call('GET', `projects/${P.A.slug}/overview`, { query: WINDOW, ...as('di') }));
    assert.equal(body.totals.requests, expA.requests);
    assert.equal(body.totals.logErrors, 4);
    assert.equal(body.health, 'failing');
  }, { what: 'A rolled up', timeoutMs: 40_000 });
  assert.equal(body.from, FROM_MS);
  assert.equal(body.to, TO_MS);
  assert.equal(body.stepMs, STEP_MS);
  assertRed(body.totals, expA, 'A totals');
  assert.equal(body.totals.services, 2);
  assert.equal(body.totals.openIssues, 2);
  assert.equal(body.totals.newIssues, 2);
  assert.deepEqual(body.series.t, expA.t);
  assert.deepEqual(body.series.requests, expA.sreq);
  assert.deepEqual(body.series.errors, expA.serr);
  body.series.p95.forEach((v, k) => assert.equal(v === null, expA.sreq[k] === 0, `p95[${k}] ${v}`));
  assertSeriesPercentiles(body.series, expA, 'overview series');
  // The RED panel's series (GET .../performance) carries p50Ms and p99Ms beside p95Ms.
  const perf = ok(await call('GET', `projects/${P.A.slug}/services/shop/performance`, { query: { from: WINDOW.from, to: WINDOW.to }, ...as('di') }));
  assert.ok(perf.series.length > 0);
  for (const pt of perf.series) {
    assert.ok(pt.requests > 0 && pt.p50Ms <= pt.p95Ms && pt.p95Ms <= pt.p99Ms, JSON.stringify(pt));
  }
  assert.ok(perf.series.some((pt) => pt.p50Ms < pt.p99Ms), 'p50Ms is its own series, not p95Ms');
  // Top endpoints: busiest first, with their own figures.
  assert.deepEqual(body.topEndpoints.map((e) => [e.service, e.endpoint, e.requests]),
    [['shop', 'GET /items', 30], ['shop', 'GET /cart', 12], ['billing', 'charge', 8]]);
  assert.ok(Math.abs(body.topEndpoints[0].errorRate - 3 / 30) < 1e-12);
  assert.ok(body.topEndpoints[0].p95 >= 101 && body.topEndpoints[0].p95 <= 130, String(body.topEndpoints[0].p95));
  assert.ok(body.topEndpoints[2].p95 >= 40 && body.topEndpoints[2].p95 <= 47);
  // Top issues: by events in the window's hours, merged ones left out.
  assert.deepEqual(body.topIssues.map((i) => [i.id, i.title, i.events, i.status]),
    [[i1, 'TypeError in cart', 7, 'unresolved'], [i2, 'Old timeout', 3, 'unresolved'], [i3, 'Fixed bug', 1, 'resolved']]);
  assert.match(body.topIssues[0].shortId, new RegExp(`^${P.A.slug.toUpperCase()}-\\d+$`));
  assert.equal(Date.parse(body.topIssues[0].lastSeen), T0_MS + 60_000);
  assert.equal(body.topIssues[0].lastSeenUnixNano, String(ns(T0_MS + 60_000)));

  // A window without data: zeros, nulls, and the steps still there; health is about now.
  const empty = ok(await call('GET', `projects/${P.A.slug}/overview`,
    { query: { from: String(FROM_MS - 86_400_000), to: String(TO_MS - 86_400_000), step: '300000' }, ...as('di') }));
  assert.equal(empty.totals.requests, 0);
  assert.equal(empty.totals.p95, null);
  assert.equal(empty.totals.logErrors, 0);
  assert.equal(empty.totals.openIssues, 2, 'open issues are counted now, whatever the window');
  assert.equal(empty.series.t.length, expA.t.length);
  assert.ok(empty.series.requests.every((v) => v === 0) && empty.series.p95.every((v) => v === null));
  assert.ok(empty.series.p50.every((v) => v === null) && empty.series.p99.every((v) => v === null));
  assert.equal(empty.health, 'failing');
  // Default step over a day: at most 300 points; bad steps and windows: 400.
  const day = ok(await call('GET', `projects/${P.A.slug}/overview`, { query: { timeRange: '24h' }, ...as('di') }));
  assert.ok(day.series.t.length <= 300 && day.series.t.length >= 280, String(day.series.t.length));
  assert.equal(day.stepMs, 5 * MINUTE_MS);
  for (const q of [{ step: '30s' }, { step: 'soon' }, { step: '1m', timeRange: '7d' }, { from: 'yesterday' }, { step: ['5m', '10m'] }]) {
    const r = await call('GET', `projects/${P.A.slug}/overview?${new URLSearchParams(Object.entries(q).flatMap(([k, v]) => [v].flat().map((x) => [k, x])))}`, as('di'));
    assert.equal(r.status, 400, `${JSON.stringify(q)}: ${r.text}`);
    apiError(r);
  }
  P.A.exp = expA;
});

stackTest(stack, 'cross-project: each caller sees exactly its projects, with the same figures', async () => {
  const expA = P.A.exp;
  const expC = expected(C_API);
  let body;
  await eventually(async () => {
    body = ok(await call('GET', 'analytics/cross-project', { query: WINDOW, ...as('ann') }));
    assert.equal(body.projects.find((p) => p.id === P.C.id)?.health, 'healthy');
    assert.equal(body.projects.find((p) => p.id === P.C.id)?.requests, expC.requests);
  }, { what: 'C rolled up', timeoutMs: 40_000 });
  assert.equal(body.from, FROM_MS);
  assert.equal(body.stepMs, STEP_MS);
  assert.deepEqual(body.projects.map((p) => [p.id, p.slug, p.role]), [[P.A.id, P.A.slug, 'owner'], [P.C.id, P.C.slug, 'owner']]);
  const a = body.projects[0];
  assert.equal(a.name, P.A.name);
  assertRed(a, expA, 'A');
  assert.deepEqual([a.openIssues, a.newIssues, a.logErrors, a.health], [2, 2, 4, 'failing']);
  assert.deepEqual(a.series.t, expA.t);
  assert.deepEqual(a.series.requests, expA.sreq);
  a.series.errorRate.forEach((v, k) => {
    if (!expA.sreq[k]) assert.equal(v, null, `errorRate[${k}]`);
    else assert.ok(Math.abs(v - expA.serr[k] / expA.sreq[k]) < 1e-12, `errorRate[${k}] ${v}`);
  });
  a.series.p95.forEach((v, k) => assert.equal(v === null, expA.sreq[k] === 0));
  assertSeriesPercentiles(a.series, expA, 'cross-project series');
  const c = body.projects[1];
  assertRed(c, expC, 'C');
  assert.deepEqual([c.openIssues, c.newIssues, c.logErrors], [0, 0, 0]);

  // The overview of A says the same.
  const ov = ok(await call('GET', `projects/${P.A.slug}/overview`, { query: WINDOW, ...as('ann') }));
  for (const k of ['requests', 'errors', 'errorRate', 'rps', 'p50', 'p95', 'p99', 'openIssues', 'newIssues', 'logErrors']) {
    assert.equal(a[k], ov.totals[k], k);
  }

  // cy (member of A) and di (viewer of A): A only; ed: B only, with no requests and "unknown" health.
  for (const [who, role] of [['cy', 'member'], ['di', 'viewer']]) {
    const r = ok(await call('GET', 'analytics/cross-project', { query: WINDOW, ...as(who) }));
    assert.deepEqual(r.projects.map((p) => [p.id, p.role]), [[P.A.id, role]], who);
  }
  const ed = ok(await call('GET', 'analytics/cross-project', { query: WINDOW, ...as('ed') }));
  assert.deepEqual(ed.projects.map((p) => [p.id, p.requests, p.openIssues, p.newIssues, p.health]), [[P.B.id, 0, 1, 1, 'unknown']]);
  assert.ok(!JSON.stringify(ed).includes(P.A.slug));
  // A project token: its own project only; an instance admin: every project.
  const tok = ok(await call('GET', 'analytics/cross-project', { query: WINDOW, token: stack.token }));
  assert.deepEqual(tok.projects.map((p) => [String(p.id), p.role]), [[String(stack.projectId), 'member']]);
  const root = ok(await call('GET', 'analytics/cross-project', { query: WINDOW, ...as('root') }));
  const ids = root.projects.map((p) => p.id);
  for (const id of [Number(stack.projectId), P.A.id, P.B.id, P.C.id]) assert.ok(ids.includes(id), `${id} in ${ids}`);
  assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
  assert.ok(root.projects.every((p) => p.role === 'instance-admin'));
  assert.equal(root.truncated, false);
  assertRed(root.projects.find((p) => p.id === P.A.id), expA, 'A as root');
  // A user with no project: an empty list. No token: 401. Bad step: 400. POST: 405.
  await newUser('nobody');
  assert.deepEqual(ok(await call('GET', 'analytics/cross-project', as('nobody'))).projects, []);
  assert.equal((await call('GET', 'analytics/cross-project', {})).status, 401);
  assert.equal((await call('GET', 'analytics/cross-project?step=7s', as('ann'))).status, 400);
  const post = await call('POST', 'analytics/cross-project', { body: {}, ...as('ann') });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});
