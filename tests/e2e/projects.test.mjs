// projects.test.mjs: the projects, members, ingest keys, usage and audit API (issue 5 sections 2, 3
// and 5) against the real stack: a user creates a project and owns it; settings by PUT reach GET,
// `sextantctl project show` and ingest (suspension answers 403 within seconds); members with the
// owner rules (admin cannot make owners, the last owner stays: 409); ingest keys (two live at
// once, a revoked one refused at once: 403 "API key revoked", as ingest answers revoked keys); usage counters after an ingest; an audit row for each
// action with actor and address; the instance audit for instance admins only. Then the role
// matrix on project A (who gets 403 for which write) and the isolation matrix: every endpoint,
// called by every role of A with project B's slug, id and ids, answers 404 and leaves B as it
// was; an ingest key used as a bearer token reads nothing.
//
// Not here: projects_create_admin_only (a second stack with SEXTANT_EXTRA_CONF costs a minute;
// the setting's default and README row are checked by test_foundation, its effect is one
// comparison in sx_api_project_create).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, eventually } from './lib/stack.mjs';
import { fixture, fixtureJson, jsonSpans, spanCountsByTrace, freshTraceIds, rewriteProtoTraceIds } from './lib/otlp.mjs';

const stack = useStack('projects');

const COUNTS = spanCountsByTrace(jsonSpans(fixtureJson('traces-json.json')));
const PROTO_BODY = fixture('traces-proto.bin');
const batch = () => rewriteProtoTraceIds(PROTO_BODY, freshTraceIds(COUNTS.keys()));

const U = {};  // users: {id, email, password, token}
const A = {};  // project A (ann owns; bob admin, cy member, di viewer)
const B = {};  // project B (ed owns), with a key, an issue and data
const ROLES = ['owner', 'admin', 'member', 'viewer'];
const ROLE_USER = { owner: 'ann', admin: 'bob', member: 'cy', viewer: 'di' };

/** One API call; token: a bearer token; cookie/csrf for a session. */
function call(method, p, { body, token, cookie, csrf, headers = {} } = {}) {
  const h = { Accept: 'application/json', 'User-Agent': 'projects-e2e/1', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  if (cookie) h.Cookie = `sx_session=${cookie}`;
  if (csrf) h['X-CSRF-Token'] = csrf;
  const u = new URL(p.replace(/^\/+/, ''), stack.apiBase);
  return stack.request(method, u, { headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
}
const as = (who) => ({ token: U[who].token });
function ok(r, want = 200) {
  assert.equal(r.status, want, `${r.status} ${r.text.slice(0, 400)}`);
  return r.json();
}

async function newUser(name, ...flags) {
  const u = await stack.ctl('user', 'create', `${name}@example.com`, ...flags);
  const login = await call('POST', 'auth/login', { body: { email: u.email, password: u.password } });
  assert.equal(login.status, 200, login.text);
  const cookie = /sx_session=([^;]+)/.exec(login.headers['set-cookie'].join('\n'))[1];
  const csrf = login.json().csrfToken;
  const t = ok(await call('POST', 'me/tokens', { body: { name: 'e2e' }, cookie, csrf }), 201);
  U[name] = { id: u.id, email: u.email, password: u.password, token: t.token, cookie, csrf };
}

stackTest(stack, 'users; any user creates a project and owns it; project tokens may not', async () => {
  for (const n of ['ann', 'bob', 'cy', 'di', 'ed']) await newUser(n);
  await newUser('root', '--admin');

  const suffix = randomBytes(3).toString('hex');
  const a = ok(await call('POST', 'projects', { body: { name: `Alpha Team ${suffix}` }, ...as('ann') }), 201);
  assert.equal(a.role, 'owner');
  assert.equal(a.project.slug, `alpha-team-${suffix}`);
  assert.equal(a.project.status, 'active');
  assert.deepEqual(a.project.retentionDays, { traces: 14, logs: 14, metrics: 90 });
  assert.deepEqual(a.project.rateLimits, { spansPerSecond: null, logsPerSecond: null, metricPointsPerSecond: null });
  assert.deepEqual(a.project.dailyQuota, { spans: null, logs: null, metricPoints: null });
  assert.equal(a.project.storageQuotaBytes, null);
  assert.deepEqual(a.project.attributeRules, []);
  assert.equal(a.project.redactSecrets, true);
  Object.assign(A, { id: String(a.project.id), slug: a.project.slug });

  const b = ok(await call('POST', 'projects', { body: { name: 'Bravo', slug: `bravo-${suffix}` }, ...as('ed') }), 201);
  Object.assign(B, { id: String(b.project.id), slug: b.project.slug });

  // The same explicit slug again: 409; a bad slug: 400; a project token: 403.
  assert.equal((await call('POST', 'projects', { body: { name: 'x', slug: B.slug }, ...as('ann') })).status, 409);
  assert.equal((await call('POST', 'projects', { body: { name: 'x', slug: 'Bad Slug' }, ...as('ann') })).status, 400);
  assert.equal((await call('POST', 'projects', { body: { name: 'x', slug: '123' }, ...as('ann') })).status, 400);
  assert.equal((await call('POST', 'projects', { body: { name: 'x' }, token: stack.token })).status, 403);
  // By cookie without the CSRF header: 403 csrf.
  const nocsrf = await call('POST', 'projects', { body: { name: 'x' }, cookie: U.ann.cookie });
  assert.equal(nocsrf.status, 403);
  assert.equal(nocsrf.json().error.code, 'csrf');

  const mine = ok(await call('GET', 'projects', as('ann'))).projects;
  assert.deepEqual(mine.map((p) => [p.slug, p.role]), [[A.slug, 'owner']]);
  const all = ok(await call('GET', 'projects', as('root'))).projects.map((p) => p.slug);
  assert.ok(all.includes(A.slug) && all.includes(B.slug) && all.includes(stack.project), JSON.stringify(all));
  assert.equal(await stack.psql(`SELECT role FROM project_members WHERE project_id = ${A.id} AND user_id = ${U.ann.id}`), 'owner');
});

stackTest(stack, 'members: add, change, remove; admins cannot make or touch owners; the last owner stays', async () => {
  const add = (who, email, role) => call('POST', `projects/${A.slug}/members`, { body: { email, role }, ...as(who) });
  assert.equal(ok(await add('ann', U.bob.email, 'admin'), 201).member.role, 'admin');
  ok(await add('ann', U.cy.email, 'viewer'), 201);
  ok(await add('bob', U.cy.email, 'member'), 200); // an admin changes a member's role
  ok(await add('bob', U.di.email, 'viewer'), 201);
  assert.equal((await add('bob', U.ed.email, 'owner')).status, 403);   // admin cannot make owners
  assert.equal((await add('bob', U.ann.email, 'member')).status, 403); // nor demote one
  assert.equal((await add('ann', 'nobody@example.com', 'member')).status, 404);
  assert.equal((await add('ann', U.ed.email, 'boss')).status, 400);
  assert.equal((await add('cy', U.ed.email, 'viewer')).status, 403);   // a member may not add
  // The last owner can be neither demoted nor removed.
  const demote = await add('ann', U.ann.email, 'admin');
  assert.equal(demote.status, 409, demote.text);
  const rm = await call('DELETE', `projects/${A.slug}/members/${U.ann.id}`, as('ann'));
  assert.equal(rm.status, 409, rm.text);
  assert.equal((await call('DELETE', `projects/${A.slug}/members/${U.ann.id}`, as('bob'))).status, 403);
  // A second owner, then removed again (by id of a user who is no member: 404).
  ok(await add('ann', U.ed.email, 'owner'), 201);
  ok(await call('DELETE', `projects/${A.slug}/members/${U.ed.id}`, as('ann')));
  assert.equal((await call('DELETE', `projects/${A.slug}/members/${U.ed.id}`, as('ann'))).status, 404);
  const list = ok(await call('GET', `projects/${A.slug}/members`, as('di'))).members;
  assert.deepEqual(list.map((m) => [m.email, m.role]), [[U.ann.email, 'owner'], [U.bob.email, 'admin'],
    [U.cy.email, 'member'], [U.di.email, 'viewer']]);
});

stackTest(stack, 'keys: two live keys both ingest; a revoked one is refused at once', async () => {
  const k1 = ok(await call('POST', `projects/${A.slug}/keys`, { body: { name: 'k1' }, ...as('bob') }), 201);
  const k2 = ok(await call('POST', `projects/${A.slug}/keys`, { body: { name: 'k2' }, ...as('ann') }), 201);
  assert.match(k1.key, /^sxk_/);
  assert.equal(k1.info.prefix, k1.key.slice(0, 12));
  Object.assign(A, { key1: k1.key, key1Id: k1.info.id, key2: k2.key, key2Id: k2.info.id });
  assert.equal((await stack.ingest(batch(), { key: A.key1 })).status, 200);
  assert.equal((await stack.ingest(batch(), { key: A.key2 })).status, 200);
  const keys = ok(await call('GET', `projects/${A.slug}/keys`, as('ann'))).keys;
  assert.deepEqual(keys.map((k) => [k.name, k.revokedAt]), [['k1', null], ['k2', null]]);
  assert.ok(!JSON.stringify(keys).includes(A.key1.slice(12)), 'the key list holds no secret');
  const rv = ok(await call('DELETE', `projects/${A.slug}/keys/${A.key1Id}`, as('ann')));
  assert.ok(rv.key.revokedAt);
  // At once (its cache entry is gone); ingest answers a revoked key 403 "API key revoked".
  const refused = await stack.ingest(batch(), { key: A.key1 });
  assert.equal(refused.status, 403);
  assert.match(refused.text, /revoked/);
  assert.equal((await stack.ingest(batch(), { key: A.key2 })).status, 200);
});

stackTest(stack, 'PUT settings: validated like project set, seen in GET and sextantctl project show', async () => {
  const put = (body, who = 'ann') => call('PUT', `projects/${A.slug}`, { body, ...as(who) });
  const before = ok(await call('GET', `projects/${A.slug}`, as('di')));
  for (const bad of [{ samplingRate: 2 }, { retentionDays: { traces: 0 } }, { rateLimits: { spansPerSecond: 0 } },
    { attributeRules: [{ action: 'explode' }] }, { status: 'paused' }, { redactSecrets: 'no' }, { nope: 1 },
    { dailyQuota: { spans: -1 } }, { samplingRate: 0.5, slowTraceMs: 'x' }, {}]) {
    const r = await put(bad);
    assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
  }
  assert.equal(ok(await call('GET', `projects/${A.slug}`, as('di'))).settingsVersion, before.settingsVersion);

  const rules = [{ action: 'redact', key: 'user.email' }];
  const after = ok(await put({ name: 'Alpha Renamed', samplingRate: 0.5, slowTraceMs: 250,
    retentionDays: { traces: 7 }, rateLimits: { spansPerSecond: 100000 }, dailyQuota: { logs: 5000000 },
    storageQuotaBytes: 1e12, attributeRules: rules, redactSecrets: false }, 'bob'));
  assert.equal(after.name, 'Alpha Renamed');
  assert.equal(after.samplingRate, 0.5);
  assert.deepEqual(after.retentionDays, { traces: 7, logs: 14, metrics: 90 });
  assert.deepEqual(after.rateLimits, { spansPerSecond: 100000, logsPerSecond: null, metricPointsPerSecond: null });
  assert.deepEqual(after.dailyQuota, { spans: null, logs: 5000000, metricPoints: null });
  assert.equal(after.storageQuotaBytes, 1e12);
  assert.deepEqual(after.attributeRules, rules);
  assert.equal(after.redactSecrets, false);
  assert.equal(after.settingsVersion, before.settingsVersion + 1);
  assert.deepEqual(ok(await call('GET', `projects/${A.id}`, as('cy'))), after);
  const shown = await stack.ctl('project', 'show', A.slug);
  assert.equal(shown.samplingRate, 0.5);
  assert.equal(shown.slowTraceMs, 250);
  assert.equal(shown.retentionTracesDays, 7);
  assert.equal(shown.rateSpansPerS, 100000);
  assert.equal(shown.quotaLogsDaily, 5000000);
  assert.equal(shown.redactSecrets, false);
  assert.deepEqual(shown.attributeRules, rules);
  // Back to defaults: null removes a limit.
  const back = ok(await put({ samplingRate: 1, slowTraceMs: 0, rateLimits: { spansPerSecond: null },
    dailyQuota: { logs: null }, storageQuotaBytes: null, attributeRules: [], redactSecrets: true }));
  assert.deepEqual(back.rateLimits.spansPerSecond, null);
  assert.equal(back.storageQuotaBytes, null);
});

stackTest(stack, 'ingest applies a PUT: suspended answers 403 within seconds, active accepts again', async () => {
  assert.equal((await stack.ingest(batch(), { key: A.key2 })).status, 200); // caches the settings
  ok(await call('PUT', `projects/${A.slug}`, { body: { status: 'suspended' }, ...as('ann') }));
  const t0 = Date.now();
  await eventually(async () => (await stack.ingest(batch(), { key: A.key2 })).status === 403,
    { timeoutMs: 5000, what: 'suspended project refused' });
  assert.ok(Date.now() - t0 < 5000);
  ok(await call('PUT', `projects/${A.slug}`, { body: { status: 'active' }, ...as('ann') }));
  await eventually(async () => (await stack.ingest(batch(), { key: A.key2 })).status === 200,
    { timeoutMs: 5000, what: 'active project accepts again' });
});

stackTest(stack, 'usage: per UTC day and signal, for viewers and up', async () => {
  const u = ok(await call('GET', `projects/${A.slug}/usage`, { ...as('di') }));
  assert.equal(u.days.length, 7);
  const today = new Date().toISOString().slice(0, 10);
  assert.equal(u.days[0].date, today);
  assert.ok(u.days[0].spans.accepted > 0, JSON.stringify(u.days[0]));
  assert.equal(u.days[0].logs.accepted, 0);
  assert.deepEqual(Object.keys(u.days[0].spans), ['accepted', 'rate_limited', 'quota_exceeded', 'storage_exceeded',
    'sampled_out', 'dropped', 'redacted']);
  assert.equal(ok(await call('GET', `projects/${A.slug}/usage?days=2`, as('ann'))).days.length, 2);
  assert.equal((await call('GET', `projects/${A.slug}/usage?days=0`, as('ann'))).status, 400);
});

stackTest(stack, 'audit: a row per action with actor, address and agent; instance audit for instance admins', async () => {
  const entries = [];
  let cursor = null;
  for (let i = 0; i < 50; i++) {
    const page = ok(await call('GET', `projects/${A.slug}/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      { ...as('bob'), headers: { 'X-Forwarded-For': '203.0.113.7' } }));
    entries.push(...page.entries);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  const actions = entries.map((e) => e.action);
  for (const a of ['project.create', 'member.add', 'member.update', 'member.remove', 'key.create', 'key.revoke',
    'project.settings']) assert.ok(actions.includes(a), `${a} missing in ${actions}`);
  const ids = entries.map((e) => Number(e.id));
  assert.deepEqual(ids, [...ids].sort((x, y) => y - x), 'newest first');
  const created = entries.find((e) => e.action === 'project.create');
  assert.equal(created.actor, U.ann.email);
  assert.equal(created.actorUserId, U.ann.id);
  assert.ok(created.ip && created.ip !== 'unknown', JSON.stringify(created));
  assert.equal(created.userAgent, 'projects-e2e/1');
  const rev = entries.find((e) => e.action === 'key.revoke');
  assert.equal(rev.details.keyId, A.key1Id);
  const kc = entries.find((e) => e.action === 'key.create');
  assert.ok(!JSON.stringify(kc).includes(A.key1) && !JSON.stringify(kc).includes(A.key2), 'no secrets in the audit');
  const settings = entries.find((e) => e.action === 'project.settings' && e.actor === U.bob.email);
  assert.equal(settings.details.samplingRate, '0.5');
  assert.ok(entries.every((e) => e.projectId === Number(A.id)));
  // Nothing of B in A's log.
  assert.ok(!entries.some((e) => e.target === B.slug));
  // The forwarded address nginx passes is recorded with the peer.
  ok(await call('PUT', `projects/${A.slug}`, { body: { slowTraceMs: 1 }, ...as('ann'), headers: { 'X-Forwarded-For': '203.0.113.7' } }));
  const last = ok(await call('GET', `projects/${A.slug}/audit?limit=1`, as('ann'))).entries[0];
  assert.match(last.ip, /^203\.0\.113\.7 via /);
  // Members and viewers may not read it; the instance audit is for instance admins.
  assert.equal((await call('GET', `projects/${A.slug}/audit`, as('cy'))).status, 403);
  assert.equal((await call('GET', `projects/${A.slug}/audit`, as('di'))).status, 403);
  assert.equal((await call('GET', 'audit', as('ann'))).status, 403);
  assert.equal((await call('GET', 'audit', { token: stack.token })).status, 403);
  const inst = ok(await call('GET', 'audit?limit=500', as('root'))).entries;
  assert.ok(inst.some((e) => e.action === 'project.create' && e.target === B.slug));
  assert.ok(inst.some((e) => e.action === 'auth.login'));
});

stackTest(stack, 'role matrix on A: which role gets 403 for which call', async () => {
  // Each row: a call and the weakest role allowed (calls that succeed are harmless repeats).
  const calls = [
    ['GET', `projects/${A.slug}`, undefined, 'viewer'],
    ['GET', `projects/${A.slug}/members`, undefined, 'viewer'],
    ['GET', `projects/${A.slug}/usage`, undefined, 'viewer'],
    ['GET', `projects/${A.slug}/traces`, undefined, 'viewer'],
    ['GET', `projects/${A.slug}/keys`, undefined, 'admin'],
    ['GET', `projects/${A.slug}/audit`, undefined, 'admin'],
    ['PUT', `projects/${A.slug}`, { slowTraceMs: 0 }, 'admin'],
    ['POST', `projects/${A.slug}/members`, { email: U.di.email, role: 'viewer' }, 'admin'],
    ['POST', `projects/${A.slug}/keys`, { name: 'matrix' }, 'admin'],
    ['DELETE', `projects/${A.slug}/keys/${A.key1Id}`, undefined, 'admin'],
    ['PATCH', `projects/${A.slug}/errors`, { ids: ['999999'], status: 'resolved' }, 'member'],
    ['GET', `projects/${A.slug}/overview`, undefined, 'viewer'],
    ['GET', `projects/${A.slug}/dashboards`, undefined, 'viewer'],
    ['POST', `projects/${A.slug}/dashboards`, { name: 'matrix' }, 'member'],
    ['PUT', `projects/${A.slug}/dashboards/999999`, { name: 'matrix', version: 1 }, 'member'],
    ['DELETE', `projects/${A.slug}/dashboards/999999`, undefined, 'member'],
  ];
  const rank = { viewer: 0, member: 1, admin: 2, owner: 3 };
  for (const [m, p, body, least] of calls) {
    for (const role of ROLES) {
      const r = await call(m, p, { body, ...as(ROLE_USER[role]) });
      if (rank[role] < rank[least]) assert.equal(r.status, 403, `${role} ${m} ${p}: ${r.text}`);
      else assert.notEqual(r.status, 403, `${role} ${m} ${p}: ${r.text}`);
    }
  }
  // Deleting the project: owner only (tried by the others here; the owner deletes at the end).
  for (const role of ['admin', 'member', 'viewer']) {
    assert.equal((await call('DELETE', `projects/${A.slug}`, as(ROLE_USER[role]))).status, 403);
  }
  // A project token acts as a member: reads, but administers nothing.
  const tok = stack.token; // the demo project's token
  assert.equal((await call('GET', `projects/${stack.project}`, { token: tok })).status, 200);
  assert.equal((await call('PUT', `projects/${stack.project}`, { body: { slowTraceMs: 0 }, token: tok })).status, 403);
  assert.equal((await call('POST', `projects/${stack.project}/keys`, { body: { name: 'x' }, token: tok })).status, 403);
});

/** Project B's state that no call by A's users may change. */
async function snapshotB() {
  return {
    project: ok(await call('GET', `projects/${B.slug}`, as('ed'))),
    members: ok(await call('GET', `projects/${B.slug}/members`, as('ed'))).members,
    keys: ok(await call('GET', `projects/${B.slug}/keys`, as('ed'))).keys,
    issue: await stack.psql(`SELECT status, substatus, merged_into FROM issues WHERE id = ${B.issue}`),
    dashboards: ok(await call('GET', `projects/${B.slug}/dashboards`, as('ed'))).dashboards,
    dashboard: ok(await call('GET', `projects/${B.slug}/dashboards/${B.dash}`, as('ed'))).dashboard,
  };
}

stackTest(stack, 'isolation matrix: every endpoint with B\'s slug, id and ids answers 404 to every role of A', async () => {
  const k = ok(await call('POST', `projects/${B.slug}/keys`, { body: { name: 'b' }, ...as('ed') }), 201);
  Object.assign(B, { key: k.key, keyId: k.info.id });
  assert.equal((await stack.ingest(batch(), { key: B.key })).status, 200);
  const row = await stack.psql(
    `WITH s AS (INSERT INTO issue_seq (project_id, last_seq) VALUES (${B.id}, 1)
       ON CONFLICT (project_id) DO UPDATE SET last_seq = issue_seq.last_seq + 1 RETURNING last_seq)
     INSERT INTO issues (project_id, short_seq, grouping_version, grouping_rule, title, type, message, culprit, level,
       service, status, substatus, first_seen_ns, last_seen_ns, event_count, user_count)
     SELECT ${B.id}, s.last_seq, 'v1', 'message', 'Secret B', 'Error', 'Secret B', '', 'error', 'api',
       'unresolved', 'new', ${Date.now()}000000, ${Date.now()}000000, 1, 0 FROM s RETURNING id`);
  B.issue = row.split('\n')[0];
  B.dash = ok(await call('POST', `projects/${B.slug}/dashboards`, { body: { name: 'Secret B board' }, ...as('ed') }), 201).dashboard.id;
  const traceId = [...COUNTS.keys()][0];
  const before = await snapshotB();

  const endpoints = (p) => [
    ['GET', `projects/${p}`], ['GET', `projects/${p}/traces`], ['GET', `projects/${p}/traces/${traceId}`],
    ['GET', `projects/${p}/services`], ['GET', `projects/${p}/logs`], ['GET', `projects/${p}/metrics`],
    ['GET', `projects/${p}/metrics/http.server.duration/labels`], ['GET', `projects/${p}/metrics/query?name=x`],
    ['GET', `projects/${p}/services/api/performance`], ['GET', `projects/${p}/services/api/dependencies`],
    ['GET', `projects/${p}/services/api/database`], ['GET', `projects/${p}/service-map`],
    ['GET', `projects/${p}/health`], ['GET', `projects/${p}/errors`], ['GET', `projects/${p}/errors/${B.issue}`],
    ['GET', `projects/${p}/errors/${B.issue}/events`], ['GET', `projects/${p}/errors/stats`],
    ['PATCH', `projects/${p}/errors/${B.issue}`, { status: 'ignored' }],
    ['PATCH', `projects/${p}/errors`, { ids: [B.issue], status: 'resolved' }],
    ['POST', `projects/${p}/errors/merge`, { ids: [B.issue, B.issue] }],
    ['PUT', `projects/${p}`, { status: 'suspended', name: 'pwned' }], ['DELETE', `projects/${p}`],
    ['GET', `projects/${p}/members`], ['POST', `projects/${p}/members`, { email: U.ann.email, role: 'owner' }],
    ['DELETE', `projects/${p}/members/${U.ed.id}`],
    ['GET', `projects/${p}/keys`], ['POST', `projects/${p}/keys`, { name: 'stolen' }],
    ['DELETE', `projects/${p}/keys/${B.keyId}`],
    ['GET', `projects/${p}/usage`], ['GET', `projects/${p}/audit`],
    ['GET', `projects/${p}/overview`], ['GET', `projects/${p}/dashboards`],
    ['POST', `projects/${p}/dashboards`, { name: 'stolen' }], ['GET', `projects/${p}/dashboards/${B.dash}`],
    ['PUT', `projects/${p}/dashboards/${B.dash}`, { name: 'pwned', version: 1 }],
    ['DELETE', `projects/${p}/dashboards/${B.dash}`],
  ];
  let n = 0;
  for (const role of ROLES) {
    for (const p of [B.slug, B.id]) {
      for (const [m, path, body] of endpoints(p)) {
        const r = await call(m, path, { body, ...as(ROLE_USER[role]) });
        assert.equal(r.status, 404, `${role} ${m} ${path}: ${r.status} ${r.text.slice(0, 300)}`);
        assert.ok(!r.text.includes('Secret B') && !r.text.includes(B.slug), `${role} ${m} ${path} leaks: ${r.text}`);
        n++;
      }
    }
    // A's own URL with B's ids: B's key and B's owner are not A's.
    assert.equal((await call('DELETE', `projects/${A.slug}/keys/${B.keyId}`, as('ann'))).status, 404);
    assert.equal((await call('DELETE', `projects/${A.slug}/members/${U.ed.id}`, as('ann'))).status, 404);
    assert.equal((await call('GET', `projects/${A.slug}/errors/${B.issue}`, as(ROLE_USER[role]))).status, 404);
    assert.equal((await call('GET', `projects/${A.slug}/dashboards/${B.dash}`, as(ROLE_USER[role]))).status, 404);
    // (A viewer may not write dashboards at all: 403 before any id is looked at.)
    assert.equal((await call('PUT', `projects/${A.slug}/dashboards/${B.dash}`, { body: { name: 'x', version: 1 }, ...as(ROLE_USER[role]) })).status,
      role === 'viewer' ? 403 : 404);
    // (A viewer may not triage at all: 403 before any id is looked at, the same for every id.)
    assert.equal((await call('PATCH', `projects/${A.slug}/errors/${B.issue}`, { body: { status: 'ignored' }, ...as(ROLE_USER[role]) })).status,
      role === 'viewer' ? 403 : 404);
  }
  assert.ok(n >= 4 * 2 * 36);
  assert.deepEqual(await snapshotB(), before, 'B changed');
  assert.equal((await stack.ingest(batch(), { key: B.key })).status, 200, 'B\'s key still works');

  // An ingest key used as a bearer token reads nothing.
  for (const p of [`projects/${B.slug}`, `projects/${B.slug}/traces`, 'projects', 'audit', `projects/${B.slug}/keys`]) {
    assert.equal((await call('GET', p, { token: B.key })).status, 401, p);
  }
  // B's owner does not see A either.
  assert.equal((await call('GET', `projects/${A.slug}`, as('ed'))).status, 404);
});

stackTest(stack, 'DELETE: owner only; the project, its keys and members go, its keys stop at once', async () => {
  assert.equal((await stack.ingest(batch(), { key: A.key2 })).status, 200);
  const d = ok(await call('DELETE', `projects/${A.slug}`, as('ann')));
  assert.equal(d.deleted, true);
  assert.equal((await stack.ingest(batch(), { key: A.key2 })).status, 401);
  assert.equal((await call('GET', `projects/${A.slug}`, as('ann'))).status, 404);
  assert.equal((await call('GET', `projects/${A.slug}`, as('root'))).status, 404);
  assert.equal(await stack.psql(`SELECT count(*) FROM ingest_keys WHERE project_id = ${A.id}`), '0');
  assert.equal(await stack.psql(`SELECT count(*) FROM project_members WHERE project_id = ${A.id}`), '0');
  assert.deepEqual(ok(await call('GET', 'projects', as('ann'))).projects, []);
  const inst = ok(await call('GET', 'audit?limit=5', as('root'))).entries;
  const del = inst.find((e) => e.action === 'project.delete');
  assert.equal(del.target, A.slug);
  assert.equal(del.details.projectId, Number(A.id));
  // B is untouched.
  assert.equal(ok(await call('GET', `projects/${B.slug}`, as('ed'))).status, 'active');
  // Its telemetry (tables without a foreign key to projects) goes with the next maintain.
  const spansOf = (id) => stack.psql(`SELECT count(*) FROM spans WHERE project_id = ${id}`);
  await eventually(async () => assert.notEqual(await spansOf(A.id), '0'), { what: "A's spans stored" });
  // (the fixture's spans are from 2026-01-01: B keeps them longer than the default 14 days)
  await stack.ctl('project', 'set', B.slug, '--retention-traces', '3650');
  const bSpans = await spansOf(B.id);
  assert.notEqual(bSpans, '0');
  const m = await stack.ctl('maintain');
  assert.ok(m.deletedProjects.projects.includes(Number(A.id)), JSON.stringify(m.deletedProjects));
  assert.ok(m.deletedProjects.deletedRows > 0);
  assert.equal(await spansOf(A.id), '0');
  assert.equal(await stack.psql(`SELECT count(*) FROM traces WHERE project_id = ${A.id}`), '0');
  assert.equal(await spansOf(B.id), bSpans, "B's spans stay");
});
