// auth.test.mjs: users, dashboard sessions, personal access tokens and roles (issue 5) against
// the real stack: sextantctl user/member commands, POST /api/v1/auth/login (generic 401, cookie
// attributes, throttling per email and per address), GET /api/v1/me by session and by token,
// session expiry and logout, CSRF on state-changing requests by cookie (X-CSRF-Token, Origin),
// personal tokens (create, list, revoke, expiry), and what each role sees: a member only their
// projects (404 elsewhere, as another project's token), a viewer reads but may not triage, an
// instance admin sees every project. Project tokens keep working. Expected values come from what
// the test did (the users, memberships and issues it made).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { useStack, stackTest, apiError, run } from './lib/stack.mjs';

const stack = useStack('auth');

const U = {};   // users by name: {id, email, password}
const B = {};   // a second project: {id, slug, token}
let issueA;     // an issue of the demo project: its id

const sha256hex = (s) => createHash('sha256').update(s).digest('hex');

/** sextantctl with stdin; parsed JSON stdout (throws on exit != 0). */
async function ctlStdin(input, ...args) {
  const bin = path.join(stack.binDir, 'sextantctl');
  const r = await run(bin, ['--config', stack.demo.SEXTANT_CONFIG, ...args], { env: stack.env, input });
  if (r.code !== 0) throw new Error(`sextantctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** One API call. auth: {cookie, csrf, token, origin}; body: an object sent as JSON. */
function call(method, p, { body, cookie, csrf, token, origin, headers = {} } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (cookie) h.Cookie = `sx_session=${cookie}`;
  if (csrf) h['X-CSRF-Token'] = csrf;
  if (token) h.Authorization = `Bearer ${token}`;
  if (origin) h.Origin = origin;
  const u = new URL(p.replace(/^\/+/, ''), stack.apiBase);
  return stack.request(method, u, { headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
}

const login = (email, password, opts = {}) => call('POST', 'auth/login', { body: { email, password }, ...opts });

/** The sx_session cookie set by an answer: {value, attrs (lowercased list)}. */
function sessionCookie(res) {
  const all = res.headers['set-cookie'] ?? [];
  const line = all.find((c) => c.startsWith('sx_session='));
  assert.ok(line, `no sx_session cookie in ${JSON.stringify(all)}`);
  const [kv, ...attrs] = line.split(';').map((s) => s.trim());
  return { value: kv.slice('sx_session='.length), attrs, line };
}

/** Logs in (must succeed); returns {cookie, csrf, body}. */
async function session(u) {
  const r = await login(u.email, u.password);
  assert.equal(r.status, 200, r.text);
  return { cookie: sessionCookie(r).value, csrf: r.json().csrfToken, body: r.json() };
}

async function auditCount(action, target) {
  return Number(await stack.psql(`SELECT count(*) FROM audit_log WHERE action = '${action}'
    AND target = '${target.replaceAll("'", "''")}'`));
}

stackTest(stack, 'sextantctl user create: a generated password, or one read from stdin', async () => {
  const a = await stack.ctl('user', 'create', 'alice@example.com', '--name', 'Alice');
  assert.equal(a.email, 'alice@example.com');
  assert.equal(a.isAdmin, false);
  assert.match(a.password, /^[A-Za-z0-9_-]{24}$/);
  U.alice = { id: a.id, email: a.email, password: a.password };

  const c = await ctlStdin('viewer-password-1\n', 'user', 'create', 'carol@example.com', '--password-stdin');
  assert.equal(c.password, null); // a password given on stdin is never printed
  U.carol = { id: c.id, email: c.email, password: 'viewer-password-1' };
  const d = await stack.ctl('user', 'create', 'dave@example.com', '--admin');
  assert.equal(d.isAdmin, true);
  U.dave = { id: d.id, email: d.email, password: d.password };
  const e = await stack.ctl('user', 'create', 'eve@example.com');
  U.eve = { id: e.id, email: e.email, password: e.password };

  // Same email in another case: refused.
  const dup = await stack.ctlRaw('user', 'create', 'ALICE@example.com');
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /exists already/);
  const short = await run(path.join(stack.binDir, 'sextantctl'), ['--config', stack.demo.SEXTANT_CONFIG, 'user',
    'create', 'x@example.com', '--password-stdin'], { env: stack.env, input: 'short\n' });
  assert.equal(short.code, 1);

  const list = await stack.ctl('user', 'list');
  assert.deepEqual(list.map((x) => [x.email, x.isAdmin]), [['alice@example.com', false], ['carol@example.com', false],
    ['dave@example.com', true], ['eve@example.com', false]]);
  assert.equal(await auditCount('user.create', 'alice@example.com'), 1);

  // The hash is Argon2id; the password is nowhere in the database.
  const h = await stack.psql(`SELECT password_hash FROM users WHERE id = ${a.id}`);
  assert.match(h, /^\$argon2id\$v=19\$m=65536,t=2,p=1\$/);

  // Projects and roles: alice member and carol viewer of the demo project; B has no users.
  const p = await stack.ctl('project', 'create', 'Second project');
  B.id = String(p.id ?? p.project?.id);
  B.slug = p.slug ?? p.project?.slug;
  B.token = (await stack.ctl('token', 'create', '--project', B.slug)).token;
  assert.ok(B.slug, JSON.stringify(p));
  const m = await stack.ctl('member', 'add', '--project', stack.project, 'alice@example.com', 'member');
  assert.deepEqual(m, { projectId: Number(stack.projectId), userId: U.alice.id, role: 'member' });
  await stack.ctl('member', 'add', '--project', stack.project, 'carol@example.com', 'viewer');
  const ml = await stack.ctl('member', 'list', '--project', stack.project);
  assert.deepEqual(ml.map((x) => [x.email, x.role]), [['alice@example.com', 'member'], ['carol@example.com', 'viewer']]);
  const bad = await stack.ctlRaw('member', 'add', '--project', stack.project, 'alice@example.com', 'boss');
  assert.equal(bad.code, 2);

  // One issue in the demo project to triage.
  const row = await stack.psql(
    `WITH s AS (INSERT INTO issue_seq (project_id, last_seq) VALUES (${stack.projectId}, 1)
       ON CONFLICT (project_id) DO UPDATE SET last_seq = issue_seq.last_seq + 1 RETURNING last_seq)
     INSERT INTO issues (project_id, short_seq, grouping_version, grouping_rule, title, type, message, culprit, level,
       service, status, substatus, first_seen_ns, last_seen_ns, event_count, user_count)
     SELECT ${stack.projectId}, s.last_seq, 'v1', 'message', 'Boom', 'Error', 'Boom', '', 'error', 'api',
       'unresolved', 'new', ${Date.now()}000000, ${Date.now()}000000, 1, 0 FROM s RETURNING id`);
  issueA = row.split('\n')[0];
});

stackTest(stack, 'login: a session cookie (HttpOnly, Secure, SameSite=Strict, Path, Max-Age) and a CSRF token', async () => {
  const r = await login('Alice@Example.com', U.alice.password); // email case does not matter
  assert.equal(r.status, 200, r.text);
  const body = r.json();
  assert.deepEqual(body.user, { id: U.alice.id, email: 'alice@example.com', name: 'Alice', isAdmin: false });
  assert.match(body.csrfToken, /^sxc_[A-Za-z0-9_-]{43}$/);
  const c = sessionCookie(r);
  assert.match(c.value, /^sxs_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(c.attrs.slice().sort(), ['HttpOnly', 'Max-Age=604800', 'Path=/', 'SameSite=Strict', 'Secure'].sort());
  assert.equal(r.headers['cache-control'], 'no-store');
  // Only the SHA-256 of the cookie is stored.
  const stored = await stack.psql(`SELECT encode(token_hash, 'hex'), csrf_token,
    extract(epoch FROM expires_at - created_at)::int FROM sessions WHERE user_id = ${U.alice.id}`);
  assert.equal(stored, `${sha256hex(c.value)}|${body.csrfToken}|604800`);
  assert.equal(await auditCount('auth.login', 'alice@example.com'), 1);
  U.alice.session = { cookie: c.value, csrf: body.csrfToken };
});

stackTest(stack, 'login failures: one generic 401 for a wrong password and for an unknown email', async () => {
  const wrong = await login(U.alice.email, 'not-the-password');
  const unknown = await login('nobody@example.com', 'not-the-password');
  assert.equal(wrong.status, 401);
  assert.equal(unknown.status, 401);
  assert.equal(wrong.text, unknown.text);
  assert.deepEqual(apiError(wrong), { code: 'unauthorized', message: 'invalid email or password' });
  assert.equal(wrong.headers['set-cookie'], undefined);
  // Both are audited, the password is not.
  const rows = await stack.psql(`SELECT target || ' ' || details::text FROM audit_log
    WHERE action = 'auth.login_failed' ORDER BY id`);
  assert.deepEqual(rows.split('\n'), ['alice@example.com {"reason":"bad_password"}',
    'nobody@example.com {"reason":"unknown_user"}']);
  assert.equal(await stack.psql(`SELECT count(*) FROM audit_log WHERE details::text LIKE '%not-the-password%'`), '0');
  // Malformed bodies: 400, and they count as nothing.
  assert.equal((await call('POST', 'auth/login', { body: { email: 'a@b.c' } })).status, 400);
  assert.equal((await call('POST', 'auth/login', { body: [1] })).status, 400);
  assert.equal((await call('GET', 'auth/login')).status, 405);
});

stackTest(stack, 'GET /me by session and by personal access token; a project token has no user', async () => {
  const s = U.alice.session;
  const r = await call('GET', 'me', { cookie: s.cookie });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json(), { id: U.alice.id, email: 'alice@example.com', name: 'Alice', isAdmin: false,
    auth: 'session', csrfToken: s.csrf,
    projects: [{ id: Number(stack.projectId), slug: stack.project, name: r.json().projects[0]?.name, role: 'member' }] });
  assert.ok(r.json().projects[0].name);

  const t = await stack.ctl('user', 'token', 'alice@example.com', '--name', 'ci');
  assert.match(t.token, /^sxp_[A-Za-z0-9_-]{43}$/);
  assert.equal(t.expiresAt, null);
  U.alice.pat = t.token;
  const byTok = await call('GET', 'me', { token: t.token });
  assert.equal(byTok.status, 200, byTok.text);
  assert.equal(byTok.json().auth, 'token');
  assert.equal(byTok.json().csrfToken, undefined);
  assert.deepEqual(byTok.json().projects.map((p) => [p.slug, p.role]), [[stack.project, 'member']]);
  const stored = await stack.psql(`SELECT user_id, project_id IS NULL, token_prefix, name FROM access_tokens
    WHERE token_hash = '\\x${sha256hex(t.token)}'`);
  assert.equal(stored, `${U.alice.id}|t|${t.token.slice(0, 12)}|ci`);

  const proj = await call('GET', 'me', { token: stack.token });
  assert.equal(proj.status, 403);
  const none = await call('GET', 'me');
  assert.equal(none.status, 401);
  assert.equal((await call('GET', 'me', { cookie: 'sxs_forged' })).status, 401);
});

stackTest(stack, 'a member sees only their projects; project tokens keep working', async () => {
  const s = U.alice.session;
  for (const what of ['traces', 'logs', 'errors', 'services']) {
    const mine = await call('GET', `projects/${stack.project}/${what}`, { cookie: s.cookie });
    assert.equal(mine.status, 200, `${what}: ${mine.text}`);
    const byId = await call('GET', `projects/${stack.projectId}/${what}`, { token: U.alice.pat });
    assert.equal(byId.status, 200, `${what}: ${byId.text}`);
    const other = await call('GET', `projects/${B.slug}/${what}`, { cookie: s.cookie });
    assert.equal(other.status, 404, `${what} of B: ${other.text}`);
    assert.equal(apiError(other).code, 'not_found');
    assert.equal((await call('GET', `projects/${B.id}/${what}`, { token: U.alice.pat })).status, 404);
    assert.equal((await call('GET', `projects/no-such-project/${what}`, { token: U.alice.pat })).status, 404);
    // Project tokens: their own project only, as before.
    assert.equal((await call('GET', `projects/${stack.project}/${what}`, { token: stack.token })).status, 200);
    assert.equal((await call('GET', `projects/${B.slug}/${what}`, { token: B.token })).status, 200);
    assert.equal((await call('GET', `projects/${stack.project}/${what}`, { token: B.token })).status, 404);
  }
  const issue = await call('GET', `projects/${stack.project}/errors/${issueA}`, { cookie: s.cookie });
  assert.equal(issue.status, 200, issue.text);
  assert.equal((await call('GET', `projects/${B.slug}/errors/${issueA}`, { cookie: s.cookie })).status, 404);
});

stackTest(stack, 'CSRF: a state-changing request by cookie needs X-CSRF-Token and a same-site Origin; bearer is exempt', async () => {
  const s = U.alice.session;
  const p = `projects/${stack.project}/errors/${issueA}`;
  const status = async () => stack.psql(`SELECT status FROM issues WHERE id = ${issueA}`);

  const none = await call('PATCH', p, { cookie: s.cookie, body: { status: 'resolved' } });
  assert.equal(none.status, 403, none.text);
  assert.equal(apiError(none).code, 'csrf');
  const wrong = await call('PATCH', p, { cookie: s.cookie, csrf: s.csrf.slice(0, -1) + 'x', body: { status: 'resolved' } });
  assert.equal(wrong.status, 403);
  assert.equal(apiError(wrong).code, 'csrf');
  assert.equal(await status(), 'unresolved');
  const evil = await call('PATCH', p, { cookie: s.cookie, csrf: s.csrf, origin: 'https://evil.example', body: { status: 'resolved' } });
  assert.equal(evil.status, 403);
  assert.equal(apiError(evil).code, 'csrf');
  assert.equal((await call('PATCH', p, { cookie: s.cookie, csrf: s.csrf, origin: 'null', body: { status: 'resolved' } })).status, 403);
  assert.equal(await status(), 'unresolved');

  const ok = await call('PATCH', p, { cookie: s.cookie, csrf: s.csrf, body: { status: 'resolved' } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(await status(), 'resolved');
  const same = await call('PATCH', p, { cookie: s.cookie, csrf: s.csrf, origin: stack.url.origin, body: { status: 'unresolved' } });
  assert.equal(same.status, 200, same.text);
  assert.equal(await status(), 'unresolved');
  // Bearer tokens (personal and project) need no CSRF token: browsers never send them by themselves.
  assert.equal((await call('PATCH', p, { token: U.alice.pat, body: { status: 'resolved' } })).status, 200);
  assert.equal((await call('PATCH', p, { token: stack.token, body: { status: 'unresolved' } })).status, 200);
  assert.equal(await status(), 'unresolved');
  // Login with a foreign Origin is refused too (login CSRF).
  const x = await login(U.alice.email, U.alice.password, { origin: 'https://evil.example' });
  assert.equal(x.status, 403);
});

stackTest(stack, 'roles: a viewer reads but may not triage (403); a non-member gets 404; an instance admin sees all', async () => {
  const c = await session(U.carol);
  const p = `projects/${stack.project}/errors/${issueA}`;
  assert.equal((await call('GET', p, { cookie: c.cookie })).status, 200);
  const patch = await call('PATCH', p, { cookie: c.cookie, csrf: c.csrf, body: { status: 'resolved' } });
  assert.equal(patch.status, 403, patch.text);
  assert.equal(apiError(patch).code, 'forbidden');
  const merge = await call('POST', `projects/${stack.project}/errors/merge`, { cookie: c.cookie, csrf: c.csrf,
    body: { target: issueA, ids: [issueA] } });
  assert.equal(merge.status, 403);
  assert.equal((await call('PATCH', `projects/${B.slug}/errors/${issueA}`, { cookie: c.cookie, csrf: c.csrf,
    body: { status: 'resolved' } })).status, 404);
  assert.equal(await stack.psql(`SELECT status FROM issues WHERE id = ${issueA}`), 'unresolved');

  // eve has no membership at all: no projects, 404 everywhere.
  const e = await stack.ctl('user', 'token', 'eve@example.com', '--expires-days', '30');
  assert.match(e.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const me = await call('GET', 'me', { token: e.token });
  assert.deepEqual(me.json().projects, []);
  assert.equal((await call('GET', `projects/${stack.project}/traces`, { token: e.token })).status, 404);

  const d = await session(U.dave);
  const dm = await call('GET', 'me', { cookie: d.cookie });
  assert.equal(dm.json().isAdmin, true);
  assert.deepEqual(dm.json().projects.map((x) => [x.slug, x.role]).sort(),
    [[stack.project, 'instance-admin'], [B.slug, 'instance-admin']].sort());
  for (const slug of [stack.project, B.slug]) {
    assert.equal((await call('GET', `projects/${slug}/traces`, { cookie: d.cookie })).status, 200);
    assert.equal((await call('GET', `projects/${slug}/errors`, { cookie: d.cookie })).status, 200);
  }
  assert.equal((await call('PATCH', p, { cookie: d.cookie, csrf: d.csrf, body: { status: 'resolved' } })).status, 200);
  assert.equal((await call('PATCH', p, { cookie: d.cookie, csrf: d.csrf, body: { status: 'unresolved' } })).status, 200);
});

stackTest(stack, 'personal access tokens: create (once), list, use, revoke, expire', async () => {
  const s = U.alice.session;
  // By cookie a create needs the CSRF token.
  assert.equal((await call('POST', 'me/tokens', { cookie: s.cookie, body: { name: 'laptop' } })).status, 403);
  const c = await call('POST', 'me/tokens', { cookie: s.cookie, csrf: s.csrf, body: { name: 'laptop', expiresInDays: 7 } });
  assert.equal(c.status, 201, c.text);
  const made = c.json();
  assert.match(made.token, /^sxp_[A-Za-z0-9_-]{43}$/);
  assert.equal(made.info.name, 'laptop');
  assert.equal(made.info.prefix, made.token.slice(0, 12));
  const days = Number(await stack.psql(`SELECT round(extract(epoch FROM expires_at - created_at) / 86400)
    FROM access_tokens WHERE id = ${made.info.id}`));
  assert.equal(days, 7);
  assert.equal((await call('POST', 'me/tokens', { token: U.alice.pat, body: { name: '' } })).status, 400);
  assert.equal((await call('POST', 'me/tokens', { token: U.alice.pat, body: { name: 'x', expiresInDays: 0 } })).status, 400);
  assert.equal((await call('POST', 'me/tokens', { token: stack.token, body: { name: 'x' } })).status, 403);

  const list = await call('GET', 'me/tokens', { token: made.token });
  assert.equal(list.status, 200, list.text);
  const mine = list.json().tokens;
  assert.deepEqual(mine.map((t) => t.name), ['ci', 'laptop']); // ctl's token first, then this one
  assert.ok(mine.every((t) => !('token' in t)));
  assert.notEqual(mine[1].lastUsedAt, null); // just used to list

  // Another user's token is not theirs to revoke.
  const other = await session(U.carol);
  assert.equal((await call('DELETE', `me/tokens/${made.info.id}`, { cookie: other.cookie, csrf: other.csrf })).status, 404);
  const del = await call('DELETE', `me/tokens/${made.info.id}`, { cookie: s.cookie, csrf: s.csrf });
  assert.equal(del.status, 200, del.text);
  assert.notEqual(del.json().token.revokedAt, null);
  const gone = await call('GET', 'me', { token: made.token });
  assert.equal(gone.status, 401);
  assert.equal((await call('GET', `projects/${stack.project}/traces`, { token: made.token })).status, 401);
  assert.equal(await stack.psql(`SELECT count(*) FROM audit_log WHERE action IN ('token.create', 'token.revoke')
    AND actor = 'alice@example.com'`), '2');

  // Expiry.
  const e = (await call('POST', 'me/tokens', { token: U.alice.pat, body: { name: 'short', expiresInDays: 1 } })).json();
  assert.equal((await call('GET', 'me', { token: e.token })).status, 200);
  await stack.psql(`UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE id = ${e.info.id}`);
  assert.equal((await call('GET', 'me', { token: e.token })).status, 401);
});

stackTest(stack, 'sessions expire; logout revokes the session and clears the cookie', async () => {
  const a = await session(U.alice);
  assert.equal((await call('GET', 'me', { cookie: a.cookie })).status, 200);
  await stack.psql(`UPDATE sessions SET expires_at = now() - interval '1 second'
    WHERE token_hash = '\\x${sha256hex(a.cookie)}'`);
  const exp = await call('GET', 'me', { cookie: a.cookie });
  assert.equal(exp.status, 401);
  assert.equal(apiError(exp).code, 'unauthorized');

  const b = await session(U.alice);
  assert.equal((await call('POST', 'auth/logout', { cookie: b.cookie })).status, 403); // CSRF
  const out = await call('POST', 'auth/logout', { cookie: b.cookie, csrf: b.csrf });
  assert.equal(out.status, 200, out.text);
  const cleared = sessionCookie(out);
  assert.equal(cleared.value, '');
  assert.ok(cleared.attrs.includes('Max-Age=0'), cleared.line);
  assert.equal((await call('GET', 'me', { cookie: b.cookie })).status, 401);
  assert.equal((await call('GET', `projects/${stack.project}/traces`, { cookie: b.cookie })).status, 401);
  assert.equal(await stack.psql(`SELECT revoked_at IS NOT NULL FROM sessions WHERE token_hash = '\\x${sha256hex(b.cookie)}'`), 't');
  assert.equal((await call('POST', 'auth/logout', { token: U.alice.pat })).status, 400);
  // The first session still works.
  assert.equal((await call('GET', 'me', { cookie: U.alice.session.cookie })).status, 200);
});

stackTest(stack, 'user passwd: a new password, the old one refused, every session ended', async () => {
  const r = await ctlStdin('a-brand-new-password\n', 'user', 'passwd', 'alice@example.com', '--password-stdin');
  assert.equal(r.password, null);
  assert.equal(r.sessionsRevoked, 1); // U.alice.session (the others were expired or logged out)
  assert.equal((await call('GET', 'me', { cookie: U.alice.session.cookie })).status, 401);
  assert.equal((await login(U.alice.email, U.alice.password)).status, 401);
  U.alice.password = 'a-brand-new-password';
  await session(U.alice);
  // Personal tokens are not sessions: they keep working.
  assert.equal((await call('GET', 'me', { token: U.alice.pat })).status, 200);
  const g = await stack.ctl('user', 'passwd', 'carol@example.com');
  assert.match(g.password, /^[A-Za-z0-9_-]{24}$/);
  U.carol.password = g.password;
  await session(U.carol);
  assert.equal(await auditCount('user.passwd', 'alice@example.com'), 1);
});

stackTest(stack, 'throttling: the 6th failed login for one email gets 429 with Retry-After, even with the right password', async () => {
  for (let i = 0; i < 5; i++) {
    const r = await login(U.eve.email, `wrong-password-${i}`);
    assert.equal(r.status, 401, `attempt ${i + 1}: ${r.text}`);
  }
  const sixth = await login(U.eve.email, 'wrong-password-5');
  assert.equal(sixth.status, 429, sixth.text);
  const retry = Number(sixth.headers['retry-after']);
  assert.ok(retry > 850 && retry <= 900, `Retry-After ${sixth.headers['retry-after']}`);
  assert.equal(apiError(sixth).code, 'too_many_requests');
  const right = await login(U.eve.email, U.eve.password);
  assert.equal(right.status, 429);
  // Other emails from this address still log in.
  await session(U.dave);
  // When the window ends (here: the counter deleted), eve logs in again.
  const keys = await stack.redis('--scan', '--pattern', 'sx:login:email:*');
  const eveKey = `sx:login:email:${sha256hex(U.eve.email)}`;
  assert.ok(keys.split('\n').includes(eveKey), keys);
  assert.equal(await stack.redis('GET', eveKey), '5');
  await stack.redis('DEL', eveKey);
  await session(U.eve);
});

stackTest(stack, 'throttling per address: login_max_failures_ip (20) failures from one address, then 429 for any email', async () => {
  const before = Number(await stack.redis('GET', 'sx:login:ip:127.0.0.1'));
  assert.ok(before >= 8 && before < 20, `failures so far ${before}`);
  for (let i = before; i < 20; i++) {
    const r = await login(`stranger${i}@example.com`, 'whatever-password');
    assert.equal(r.status, 401, `failure ${i + 1}: ${r.text}`);
  }
  const r = await login(U.dave.email, U.dave.password);
  assert.equal(r.status, 429);
  assert.ok(Number(r.headers['retry-after']) > 0);
  await stack.redis('DEL', 'sx:login:ip:127.0.0.1');
  await session(U.dave);
});
