// user-disable.test.mjs: `sextantctl user disable EMAIL` / `user enable EMAIL` against the
// real stack: a disabled user cannot log in, and their open session and personal access
// token answer 401 from the very next request; enabling brings the token and logins back,
// never the old session. Project tokens and other users are untouched.

import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, apiError, run } from './lib/stack.mjs';

const stack = useStack('user-disable');

const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const U = { email: `dora-${randomBytes(3).toString('hex')}@example.com` };
const V = { email: `vic-${randomBytes(3).toString('hex')}@example.com` };

async function ctlStdin(input, ...args) {
  const bin = path.join(stack.binDir, 'sextantctl');
  const r = await run(bin, ['--config', stack.demo.SEXTANT_CONFIG, ...args], { env: stack.env, input });
  if (r.code !== 0) throw new Error(`sextantctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function call(method, p, { body, cookie, token } = {}) {
  const h = { Accept: 'application/json' };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (cookie) h.Cookie = `sx_session=${cookie}`;
  if (token) h.Authorization = `Bearer ${token}`;
  return stack.request(method, new URL(p, stack.apiBase), { headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function login(u) {
  return call('POST', 'auth/login', { body: { email: u.email, password: PASSWORD } });
}

function cookieOf(res) {
  const line = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith('sx_session='));
  assert.ok(line, `no session cookie: ${JSON.stringify(res.headers['set-cookie'])}`);
  return line.split(';')[0].slice('sx_session='.length);
}

/** Status of /me and of the demo project's traces for each credential. */
async function statuses(creds) {
  const out = {};
  for (const [name, c] of Object.entries(creds)) {
    out[`${name} me`] = (await call('GET', 'me', c)).status;
    out[`${name} traces`] = (await call('GET', `projects/${stack.project}/traces`, c)).status;
  }
  return out;
}

stackTest(stack, 'two members log in and hold a session and a personal token each', async () => {
  for (const u of [U, V]) {
    u.id = (await ctlStdin(`${PASSWORD}\n`, 'user', 'create', u.email, '--password-stdin')).id;
    await stack.ctl('member', 'add', '--project', stack.project, u.email, 'member');
    const r = await login(u);
    assert.equal(r.status, 200, r.text);
    u.cookie = cookieOf(r);
    u.token = (await stack.ctl('user', 'token', u.email)).token;
  }
  assert.deepEqual(await statuses({ session: { cookie: U.cookie }, token: { token: U.token } }),
    { 'session me': 200, 'session traces': 200, 'token me': 200, 'token traces': 200 });
});

stackTest(stack, 'user disable: the next request by session or token is a 401, and login is refused', async () => {
  assert.ok(U.token, 'no user from the first test');
  const d = await stack.ctl('user', 'disable', U.email);
  assert.deepEqual(d, { id: U.id, email: U.email, disabled: true, sessionsRevoked: 1 });
  assert.deepEqual(await statuses({ session: { cookie: U.cookie }, token: { token: U.token } }),
    { 'session me': 401, 'session traces': 401, 'token me': 401, 'token traces': 401 });
  const r = await login(U);
  assert.equal(r.status, 401, r.text);
  assert.equal(apiError(r).code, 'unauthorized');
  const listed = (await stack.ctl('user', 'list')).find((u) => u.email === U.email);
  assert.equal(listed.disabled, true);
  assert.equal(await stack.psql(`SELECT details::text FROM audit_log WHERE action = 'user.disable' AND target = '${U.email}'`),
    '{"sessionsRevoked":1}');
  // Others are untouched: the second user, and the demo project's token.
  assert.deepEqual(await statuses({ session: { cookie: V.cookie }, token: { token: V.token }, project: { token: stack.token } }),
    { 'session me': 200, 'session traces': 200, 'token me': 200, 'token traces': 200, 'project me': 403, 'project traces': 200 });
  // Disabling again changes nothing and revokes nothing more.
  assert.deepEqual(await stack.ctl('user', 'disable', U.email), { id: U.id, email: U.email, disabled: true, sessionsRevoked: 0 });
});

stackTest(stack, 'user enable: the token and logins work again, the old session stays ended', async () => {
  assert.ok(U.token, 'no user from the first test');
  assert.deepEqual(await stack.ctl('user', 'enable', U.email), { id: U.id, email: U.email, disabled: false });
  assert.deepEqual(await statuses({ session: { cookie: U.cookie }, token: { token: U.token } }),
    { 'session me': 401, 'session traces': 401, 'token me': 200, 'token traces': 200 });
  const r = await login(U);
  assert.equal(r.status, 200, r.text);
  assert.equal((await call('GET', 'me', { cookie: cookieOf(r) })).status, 200);
  assert.equal((await stack.ctl('user', 'list')).find((u) => u.email === U.email).disabled, false);
});

stackTest(stack, 'user disable/enable: unknown email and bad usage fail with a message', async () => {
  const unknown = await stack.ctlRaw('user', 'disable', 'nobody@example.com');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /no user 'nobody@example\.com'/);
  const usage = await stack.ctlRaw('user', 'enable');
  assert.equal(usage.code, 2, usage.stderr);
  assert.match(usage.stderr, /usage: user enable EMAIL/);
  const extra = await stack.ctlRaw('user', 'disable', U.email, '--admin');
  assert.equal(extra.code, 2, extra.stderr);
  assert.equal((await stack.ctl('user', 'list')).find((u) => u.email === U.email).disabled, false);
});
