// projects-admin-only.test.mjs: with the instance setting projects_create_admin_only on,
// only instance admins may create projects; everyone else gets 403 and nothing is created.
// (A stack of its own: the setting is read at start.)

import assert from 'node:assert/strict';
import { useStack, stackTest } from './lib/stack.mjs';

const stack = useStack('projects-admin-only', { extraConf: 'projects_create_admin_only 1' });

function call(method, p, { body, token } = {}) {
  const h = { Accept: 'application/json' };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  return stack.request(method, new URL(p, stack.apiBase), { headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function tokenOf(email, ...flags) {
  await stack.ctl('user', 'create', email, ...flags);
  return (await stack.ctl('user', 'token', email)).token;
}

async function projectCount() {
  return Number(await stack.psql('SELECT count(*) FROM projects'));
}

stackTest(stack, 'a user who is not an instance admin cannot create a project; an instance admin can', async () => {
  const user = await tokenOf('plain@example.com');
  const admin = await tokenOf('boss@example.com', '--admin');
  const before = await projectCount();
  const refused = await call('POST', 'projects', { body: { name: 'Not allowed' }, token: user });
  assert.equal(refused.status, 403, refused.text);
  assert.equal(refused.json().error.code, 'forbidden', refused.text);
  assert.equal(await projectCount(), before, 'nothing created');
  const made = await call('POST', 'projects', { body: { name: 'Allowed', slug: 'allowed-by-admin' }, token: admin });
  assert.equal(made.status, 201, made.text);
  assert.equal(made.json().project.slug, 'allowed-by-admin');
  assert.equal(made.json().role, 'owner');
  assert.equal(await projectCount(), before + 1);
  // The admin owns it; the plain user still sees no projects of their own.
  const mine = await call('GET', 'projects', { token: user });
  assert.equal(mine.status, 200);
  assert.deepEqual(mine.json().projects, []);
});
