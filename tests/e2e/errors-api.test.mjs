// errors-api.test.mjs: the error-tracking API (GET/PATCH .../errors, .../errors/{id},
// .../errors/{id}/events, .../errors/stats, POST .../errors/merge) against the real stack.
// Issues and events are seeded with psql INSERTs (seedIssue below, the one place to replace
// once sextant-persist derives them from spans and logs); every expected value is computed from
// the seeded model: list filters and sorts, cursor paging, the detail (latest event, frames,
// tags, hourly and daily counts), events paging, statistics, each status transition with the
// stored columns, bulk changes (all or nothing), merges (counts, hourly rows, events and
// fingerprints moved), bad input, and isolation: another project's token and ids get 404 and
// change nothing, with RLS as the second wall for writes.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useStack, stackTest, apiError } from './lib/stack.mjs';

const stack = useStack('errors-api');

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const NOW_MS = Date.now();
const hex = (n) => randomBytes(n).toString('hex');
const sq = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replaceAll("'", "''")}'`);
const msToNs = (ms) => BigInt(Math.round(ms)) * 1_000_000n;

const A = {};   // the demo project: {id, slug, token, issues: [...]}
const B = {};   // a second project

const UA = {
  chromeWin: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  firefoxLinux: 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
  safariMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
};
const UA_NAMES = { [UA.chromeWin]: ['Chrome 120', 'Windows'], [UA.firefoxLinux]: ['Firefox 121', 'Linux'],
  [UA.safariMac]: ['Safari 17', 'macOS'] };
const FRAMES = [
  { function: 'Module._compile', module: null, file: 'node:internal/modules/cjs/loader', line: 1105, column: 14, inApp: false },
  { function: 'handler', module: null, file: '/app/src/checkout.js', line: 42, column: 7, inApp: true },
];

// ------------------------------------------------------------------ seeding --

/**
 * Seeds one issue with its fingerprints, events and hourly counts in project p (psql as the
 * owner, as sextant-persist writes them). spec: title, type, message, culprit, service, level,
 * status, substatus, events: [{ago (ms before NOW_MS), release, environment, route, ua, user,
 * traceId}]. first/last seen, releases, event and user counts are derived from the events.
 * Returns the model of the issue (id and shortSeq filled in).
 */
async function seedIssue(p, spec) {
  const evs = spec.events.map((e) => ({ ...e, timeNs: msToNs(NOW_MS - e.ago), eventId: hex(16), traceId: e.traceId ?? hex(16) }))
    .sort((x, y) => (x.timeNs < y.timeNs ? -1 : x.timeNs > y.timeNs ? 1 : 0));
  const issue = {
    title: spec.title, type: spec.type ?? 'Error', message: spec.message ?? spec.title, culprit: spec.culprit ?? '',
    service: spec.service ?? '', level: spec.level ?? 'error', status: spec.status ?? 'unresolved',
    substatus: spec.substatus ?? 'new', events: evs, fingerprints: [hex(16), hex(16)],
    firstSeen: evs[0].timeNs, lastSeen: evs[evs.length - 1].timeNs, eventCount: evs.length,
    userCount: new Set(evs.filter((e) => e.user).map((e) => e.user)).size,
    firstRelease: evs.find((e) => e.release)?.release ?? null,
    lastRelease: [...evs].reverse().find((e) => e.release)?.release ?? null,
  };
  const row = await stack.psql(
    `WITH s AS (INSERT INTO issue_seq (project_id, last_seq) VALUES (${p.id}, 1)
       ON CONFLICT (project_id) DO UPDATE SET last_seq = issue_seq.last_seq + 1 RETURNING last_seq)
     INSERT INTO issues (project_id, short_seq, grouping_version, grouping_rule, title, type, message, culprit, level,
       service, status, substatus, first_seen_ns, last_seen_ns, event_count, user_count, first_release, last_release)
     SELECT ${p.id}, s.last_seq, 'v1', 'message', ${sq(issue.title)}, ${sq(issue.type)}, ${sq(issue.message)},
       ${sq(issue.culprit)}, ${sq(issue.level)}, ${sq(issue.service)}, ${sq(issue.status)}, ${sq(issue.substatus)},
       ${issue.firstSeen}, ${issue.lastSeen}, ${issue.eventCount}, ${issue.userCount}, ${sq(issue.firstRelease)},
       ${sq(issue.lastRelease)} FROM s RETURNING id || ' ' || short_seq`);
  const [id, seq] = row.split('\n')[0].split(' '); // psql prints the command tag after the row
  Object.assign(issue, { id, shortSeq: Number(seq), shortId: `${p.slug.toUpperCase()}-${seq}` });
  const hours = new Map();
  for (const e of evs) {
    const h = (e.timeNs / 3_600_000_000_000n) * 3_600_000_000_000n;
    hours.set(h, (hours.get(h) ?? 0) + 1);
  }
  const sql = [
    ...new Set(evs.map((e) => `SELECT sextant_ensure_error_event_partition(${e.timeNs});`)),
    ...issue.fingerprints.map((f) => `INSERT INTO issue_fingerprints VALUES (${p.id}, '\\x${f}', ${id}, 'v1');`),
    ...evs.map((e) => `INSERT INTO error_events (project_id, time_ns, event_id, issue_id, fingerprint, source, level,
       service, release, environment, trace_id, span_id, type, message, stacktrace, lang, frames, handled, user_id,
       route, url, user_agent, attributes) VALUES (${p.id}, ${e.timeNs}, '\\x${e.eventId}', ${id},
       '\\x${issue.fingerprints[0]}', 'span', ${sq(issue.level)}, ${sq(issue.service)}, ${sq(e.release)},
       ${sq(e.environment)}, '\\x${e.traceId}', '\\x${hex(8)}', ${sq(issue.type)}, ${sq(issue.message)},
       ${sq(`${issue.type}: ${issue.message}\n    at handler (/app/src/checkout.js:42:7)`)}, 'js',
       ${sq(JSON.stringify(FRAMES))}, false, ${sq(e.user)}, ${sq(e.route)}, ${sq(e.route ? `https://shop.example${e.route}` : null)},
       ${sq(e.ua)}, '{"k":"v"}');`),
    ...[...hours].map(([h, n]) => `INSERT INTO issue_counts_hourly VALUES (${p.id}, ${id}, ${h}, ${n});`),
  ];
  await stack.psql(`BEGIN; ${sql.join('\n')} COMMIT;`);
  p.issues.push(issue);
  return issue;
}

// --------------------------------------------------------------------- HTTP --

/** One API call with a JSON body; token defaults to project A's. */
function call(method, p, { body, token = A.token, contentType = 'application/json', query } = {}) {
  const u = new URL(p.replace(/^\/+/, ''), stack.apiBase);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) u.searchParams.append(k, String(one));
  }
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (contentType) headers['Content-Type'] = contentType;
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return stack.request(method, u, { headers, body: data });
}

async function ok(res, what) {
  assert.equal(res.status, 200, `${what}: ${res.status} ${res.text.slice(0, 500)}`);
  return res.json();
}

const errorsPath = (p, rest = '') => `projects/${p.slug}/errors${rest}`;
const list = async (query, p = A) => ok(await call('GET', errorsPath(p), { query, token: p.token }), `list ${JSON.stringify(query)}`);

/** Every page of a list (limit per page), checking page sizes. */
async function allPages(query, limit) {
  const out = [];
  let cursor;
  for (let i = 0; i < 100; i++) {
    const body = await list({ ...query, limit, cursor });
    assert.ok(body.issues.length <= limit);
    out.push(...body.issues);
    if (body.nextCursor === null) return out;
    assert.equal(body.issues.length, limit, 'a page with a next page is full');
    cursor = body.nextCursor;
  }
  throw new Error('too many pages');
}

// -------------------------------------------------------------------- model --

const visible = (p) => p.issues.filter((i) => !i.mergedInto);
const SORT_KEY = { lastSeen: (i) => i.lastSeen, firstSeen: (i) => i.firstSeen, events: (i) => BigInt(i.eventCount),
  users: (i) => BigInt(i.userCount) };
function sorted(issues, sort = 'lastSeen') {
  const k = SORT_KEY[sort];
  return [...issues].sort((x, y) => (k(x) !== k(y) ? (k(x) > k(y) ? -1 : 1) : (BigInt(x.id) > BigInt(y.id) ? -1 : 1)));
}
const ids = (arr) => arr.map((i) => i.id);
const displaySub = (i) => (i.substatus === 'new' && Number(i.firstSeen / 1_000_000n) < NOW_MS - 7 * DAY_MS ? 'ongoing' : i.substatus);

function assertIssue(got, want) {
  assert.deepEqual({
    id: got.id, shortId: got.shortId, title: got.title, type: got.type, message: got.message, culprit: got.culprit,
    status: got.status, substatus: got.substatus, firstSeenUnixNano: got.firstSeenUnixNano,
    lastSeenUnixNano: got.lastSeenUnixNano, events: got.events, users: got.users, service: got.service, level: got.level,
    firstRelease: got.firstRelease, lastRelease: got.lastRelease,
  }, {
    id: want.id, shortId: want.shortId, title: want.title, type: want.type, message: want.message, culprit: want.culprit,
    status: want.status, substatus: displaySub(want), firstSeenUnixNano: String(want.firstSeen),
    lastSeenUnixNano: String(want.lastSeen), events: want.eventCount, users: want.userCount, service: want.service,
    level: want.level, firstRelease: want.firstRelease, lastRelease: want.lastRelease,
  });
}

/** The stored triage columns of an issue (psql as the owner). */
async function stored(id) {
  const out = await stack.psql(`SELECT row_to_json(t) FROM (SELECT status, substatus, resolved_in_release,
    ignore_until_count, ignore_until_ns::text, resolved_at IS NOT NULL AS resolved, merged_into, event_count, user_count,
    first_seen_ns::text, last_seen_ns::text, first_release, last_release FROM issues WHERE id = ${id}) t`);
  return JSON.parse(out);
}

// -------------------------------------------------------------------- tests --

const ev = (ago, extra = {}) => ({ ago, environment: 'production', release: '1.0.0', route: '/checkout', ua: UA.chromeWin, ...extra });

stackTest(stack, 'setup: project B with its own token; issues and events seeded in A and B', async () => {
  Object.assign(A, { id: String(stack.projectId), slug: stack.project, token: stack.token, issues: [] });
  const p = await stack.ctl('project', 'create', `errors-b-${hex(3)}`);
  const t = await stack.ctl('token', 'create', '--project', p.slug);
  Object.assign(B, { id: String(p.id), slug: p.slug, token: t.token, issues: [] });

  // The main issue: 7 events over the last 5 hours, three users, two releases, several UAs and routes.
  A.main = await seedIssue(A, {
    title: 'TypeError: Cannot read properties of undefined', type: 'TypeError',
    message: "Cannot read properties of undefined (reading 'id')", culprit: 'handler(/app/src/checkout.js)',
    service: 'checkout', events: [
      ev(5 * HOUR_MS, { user: 'u1' }), ev(4 * HOUR_MS, { user: 'u1', ua: UA.firefoxLinux }),
      ev(3 * HOUR_MS, { user: 'u2', route: '/cart' }), ev(2 * HOUR_MS, { user: 'u2', release: '1.1.0' }),
      ev(90 * 60_000, { user: 'u3', release: '1.1.0', environment: 'staging', ua: UA.safariMac }),
      ev(60 * 60_000, { release: '1.1.0', ua: null }), ev(10 * 60_000, { user: 'u1', release: '1.1.0', route: '/cart' }),
    ],
  });
  // q with LIKE wildcards: only a literal "100%_" matches.
  A.pct = await seedIssue(A, { title: 'ValueError: discount 100%_off invalid', type: 'ValueError', service: 'payments',
    culprit: 'apply_discount', events: [ev(20 * HOUR_MS, { environment: 'staging', release: '2.0.0', user: 'p1' })] });
  A.pctDecoy = await seedIssue(A, { title: 'ValueError: discount 1000 off invalid', type: 'ValueError', service: 'payments',
    events: [ev(21 * HOUR_MS, { environment: 'staging', release: '2.0.0' }), ev(19 * HOUR_MS, { environment: 'staging', release: '2.0.0' })] });
  // Seen only 3-4 days ago; and one first seen 10 days ago (new shown as ongoing).
  A.old = await seedIssue(A, { title: 'OldError in worker', service: 'checkout', status: 'resolved', substatus: 'resolved',
    events: [ev(4 * DAY_MS, { release: '0.9.0' }), ev(3 * DAY_MS, { release: '0.9.0' })] });
  A.ancient = await seedIssue(A, { title: 'AncientError still happening', service: 'worker', events: [
    ev(10 * DAY_MS, { release: null, environment: null, route: null, ua: null }), ev(2 * HOUR_MS, { release: null, environment: null, route: null, ua: null })] });
  A.regressed = await seedIssue(A, { title: 'RegressedError', service: 'checkout', substatus: 'regressed',
    events: [ev(30 * HOUR_MS, { user: 'r1' }), ev(3 * HOUR_MS, { user: 'r2' })] });
  A.ignored = await seedIssue(A, { title: 'IgnoredError', service: 'worker', status: 'ignored', substatus: 'ignored_forever',
    events: [ev(6 * HOUR_MS, { environment: 'staging', release: null })] });
  // Fillers with tied counts and users, for sorts and paging.
  for (let k = 0; k < 9; k++) {
    const n = 1 + (k % 3);
    await seedIssue(A, { title: `Filler ${k}`, service: 'filler', events: Array.from({ length: n }, (_, j) =>
      ev((7 + k) * HOUR_MS + j * 60_000, { user: `f${j % 2}`, release: k < 3 ? null : `3.${k}.0` })) });
  }
  // B: issues with the same short_seq numbers as A's.
  B.one = await seedIssue(B, { title: 'B only error', service: 'checkout', events: [ev(HOUR_MS), ev(30 * 60_000)] });
  B.two = await seedIssue(B, { title: 'B second error', service: 'checkout', events: [ev(2 * HOUR_MS)] });
  assert.equal(A.main.shortSeq, B.one.shortSeq, 'both projects number their issues from 1');
});

stackTest(stack, 'list: every visible issue, newest first, with every field of the model', async () => {
  const body = await list({ limit: 100 });
  assert.equal(body.nextCursor, null);
  assert.deepEqual(ids(body.issues), ids(sorted(visible(A))));
  for (const got of body.issues) assertIssue(got, A.issues.find((i) => i.id === got.id));
  assert.equal(body.issues.find((i) => i.id === A.ancient.id).substatus, 'ongoing', 'new older than 7 days shows as ongoing');
});

stackTest(stack, 'list filters: status, service, environment, release, q (escaped), timeRange, from/to', async () => {
  const check = async (query, pred, what) => {
    const body = await list({ ...query, limit: 100 });
    const want = ids(sorted(visible(A).filter(pred)));
    assert.ok(want.length > 0 || what.includes('none'), `${what}: the model has matches`);
    assert.deepEqual(ids(body.issues), want, what);
  };
  await check({ status: 'unresolved' }, (i) => i.status === 'unresolved', 'status=unresolved');
  await check({ status: 'resolved,ignored' }, (i) => i.status !== 'unresolved', 'status=resolved,ignored');
  await check({ service: 'checkout' }, (i) => i.service === 'checkout', 'service');
  await check({ environment: 'staging' }, (i) => i.events.some((e) => e.environment === 'staging'), 'environment');
  await check({ release: '1.1.0' }, (i) => i.events.some((e) => e.release === '1.1.0'), 'release');
  await check({ q: '100%_' }, (i) => [i.title, i.message, i.culprit].some((s) => s.includes('100%_')), 'q with % and _');
  await check({ q: 'cannot READ' }, (i) => [i.title, i.message, i.culprit].some((s) => s.toLowerCase().includes('cannot read')), 'q case-insensitive');
  await check({ q: 'apply_discount' }, (i) => i.culprit.includes('apply_discount'), 'q on culprit');
  await check({ q: 'no such text anywhere' }, () => false, 'q none');
  const from = NOW_MS - DAY_MS;
  await check({ timeRange: '24h' }, (i) => Number(i.lastSeen / 1_000_000n) >= from - 5000, 'timeRange=24h');
  // from/to: issues active between 3.5 and 2.5 days ago (the old one; the ancient one spans it).
  const f = NOW_MS - 3.5 * DAY_MS;
  const t = NOW_MS - 2.5 * DAY_MS;
  await check({ from: String(Math.round(f)), to: new Date(t).toISOString() },
    (i) => Number(i.lastSeen / 1_000_000n) >= f && Number(i.firstSeen / 1_000_000n) <= t, 'from/to');
  await check({ environment: 'staging', timeRange: '7h' }, (i) => i.events.some((e) => e.environment === 'staging' &&
    Number(e.timeNs / 1_000_000n) >= NOW_MS - 7 * HOUR_MS), 'environment within the window');
});

stackTest(stack, 'each sort, and cursor paging without gaps or duplicates', async () => {
  for (const sort of ['lastSeen', 'firstSeen', 'events', 'users']) {
    const want = ids(sorted(visible(A), sort));
    const one = await list({ sort, limit: 100 });
    assert.deepEqual(ids(one.issues), want, `sort=${sort}`);
    for (const limit of [1, 3, 4]) {
      const paged = await allPages({ sort }, limit);
      assert.deepEqual(ids(paged), want, `sort=${sort} in pages of ${limit}`);
    }
  }
  // With a filter too.
  const paged = await allPages({ sort: 'events', service: 'filler' }, 2);
  assert.deepEqual(ids(paged), ids(sorted(visible(A).filter((i) => i.service === 'filler'), 'events')));
  // A cursor of one sort is refused by another.
  const first = await list({ sort: 'events', limit: 1 });
  const r = await call('GET', errorsPath(A), { query: { sort: 'users', cursor: first.nextCursor } });
  assert.equal(r.status, 400, r.text);
});

/** Top values {value: count} of the events, as the tag breakdown must count them. */
function tagCounts(events, f) {
  const m = {};
  for (const e of events) {
    const v = f(e);
    if (v) m[v] = (m[v] ?? 0) + 1;
  }
  return m;
}

stackTest(stack, 'detail by id and by shortId: latest event, frames, traceId, tags, hourly 24 and daily 30', async () => {
  const m = A.main;
  const byId = await ok(await call('GET', errorsPath(A, `/${m.id}`)), 'detail');
  for (const ref of [m.shortId, m.shortId.toLowerCase()]) {
    const b = await ok(await call('GET', errorsPath(A, `/${ref}`)), `detail ${ref}`);
    assert.equal(b.id, m.id);
  }
  assertIssue(byId, m);
  const last = m.events[m.events.length - 1];
  assert.equal(byId.traceId, last.traceId);
  assert.equal(byId.latestEvent.eventId, last.eventId);
  assert.equal(byId.latestEvent.timeUnixNano, String(last.timeNs));
  assert.equal(byId.latestEvent.release, last.release);
  assert.equal(byId.latestEvent.route, last.route);
  assert.equal(byId.latestEvent.userId, last.user);
  assert.deepEqual(byId.latestEvent.frames, FRAMES);
  assert.deepEqual(byId.latestEvent.frames.map((f) => f.inApp), [false, true]);
  assert.deepEqual(byId.latestEvent.attributes, { k: 'v' });
  const tags = Object.fromEntries(byId.tags.map((t) => [t.key, t]));
  assert.deepEqual(Object.keys(tags), ['service', 'release', 'environment', 'route', 'browser', 'os']);
  const expectTag = (key, f) => {
    const want = tagCounts(m.events, f);
    const got = Object.fromEntries(tags[key].values.map((v) => [v.value, v.count]));
    assert.deepEqual(got, want, `tag ${key}`);
    assert.equal(tags[key].total, Object.values(want).reduce((a, b) => a + b, 0), `tag ${key} total`);
    const counts = tags[key].values.map((v) => v.count);
    assert.deepEqual(counts, [...counts].sort((a, b) => b - a), `tag ${key} most frequent first`);
  };
  expectTag('service', () => m.service);
  expectTag('release', (e) => e.release);
  expectTag('environment', (e) => e.environment);
  expectTag('route', (e) => e.route);
  expectTag('browser', (e) => e.ua && UA_NAMES[e.ua][0]);
  expectTag('os', (e) => e.ua && UA_NAMES[e.ua][1]);
  // Hourly: 24 buckets ending with the current hour; daily: 30 ending with today (UTC).
  assert.equal(byId.hourly.length, 24);
  assert.equal(byId.daily.length, 30);
  const h0 = byId.hourly[0][0];
  assert.ok([Math.floor(NOW_MS / HOUR_MS), Math.floor(Date.now() / HOUR_MS)].map((h) => (h - 23) * HOUR_MS).includes(h0));
  const countIn = (issue, from, len) => issue.events.filter((e) => {
    const t = Number(e.timeNs / 1_000_000n);
    return t >= from && t < from + len;
  }).length;
  byId.hourly.forEach(([t, n], k) => {
    assert.equal(t, h0 + k * HOUR_MS);
    assert.equal(n, countIn(m, t, HOUR_MS), `hour ${k}`);
  });
  assert.equal(byId.hourly.reduce((a, [, n]) => a + n, 0), m.eventCount);
  const anc = await ok(await call('GET', errorsPath(A, `/${A.ancient.id}`)), 'ancient detail');
  const d0 = anc.daily[0][0];
  assert.equal(d0 % DAY_MS, 0);
  anc.daily.forEach(([t, n], k) => {
    assert.equal(t, d0 + k * DAY_MS);
    assert.equal(n, countIn(A.ancient, t, DAY_MS), `day ${k}`);
  });
  assert.equal(anc.daily.reduce((a, [, n]) => a + n, 0), 2, 'the 10-day-old event is in the daily counts');
  assert.equal(anc.hourly.reduce((a, [, n]) => a + n, 0), 1, 'only the recent one in the hourly counts');
  assert.deepEqual(anc.tags.find((t) => t.key === 'browser'), { key: 'browser', total: 0, values: [] });
  assert.equal(anc.substatus, 'ongoing');
});

stackTest(stack, 'events: newest first, paged without gaps or duplicates', async () => {
  const want = [...A.main.events].reverse().map((e) => e.eventId);
  for (const limit of [1, 2, 3, 100]) {
    const got = [];
    let cursor;
    for (let i = 0; i < 50; i++) {
      const b = await ok(await call('GET', errorsPath(A, `/${A.main.shortId}/events`), { query: { limit, cursor } }), 'events');
      got.push(...b.events.map((e) => e.eventId));
      if (b.nextCursor === null) break;
      cursor = b.nextCursor;
    }
    assert.deepEqual(got, want, `pages of ${limit}`);
  }
  const b = await ok(await call('GET', errorsPath(A, `/${A.main.id}/events`)), 'events');
  const e = b.events[0];
  const last = A.main.events[A.main.events.length - 1];
  assert.equal(e.traceId, last.traceId);
  assert.equal(e.userAgent, last.ua);
  assert.equal(e.lang, 'js');
  assert.equal(e.handled, false);
  assert.match(e.stacktrace, /at handler/);
});

stackTest(stack, 'stats: new, regressed and unresolved counts, events per hour, top issues (and by service)', async () => {
  for (const service of [undefined, 'checkout']) {
    const s = await ok(await call('GET', errorsPath(A, '/stats'), { query: { timeRange: '24h', service } }), 'stats');
    const from = Number(BigInt(s.fromUnixNano) / 1_000_000n);
    const to = Number(BigInt(s.toUnixNano) / 1_000_000n);
    assert.ok(Math.abs(to - from - DAY_MS) < 2);
    const pool = visible(A).filter((i) => !service || i.service === service);
    const ms = (ns) => Number(ns / 1_000_000n);
    const seen = pool.filter((i) => ms(i.lastSeen) >= from && ms(i.firstSeen) <= to);
    assert.equal(s.new, seen.filter((i) => ms(i.firstSeen) >= from).length, 'new');
    assert.equal(s.regressed, seen.filter((i) => i.substatus === 'regressed').length, 'regressed');
    assert.equal(s.unresolved, seen.filter((i) => i.status === 'unresolved').length, 'unresolved');
    const h0 = Math.floor(from / HOUR_MS) * HOUR_MS;
    assert.equal(s.eventsPerHour[0][0], h0);
    assert.equal(s.eventsPerHour.length, Math.floor(to / HOUR_MS) - Math.floor(from / HOUR_MS) + 1);
    const inHour = (t) => pool.flatMap((i) => i.events).filter((e) => ms(e.timeNs) >= t && ms(e.timeNs) < t + HOUR_MS).length;
    s.eventsPerHour.forEach(([t, n], k) => {
      assert.equal(t, h0 + k * HOUR_MS);
      assert.equal(n, inHour(t), `hour ${k}`);
    });
    assert.equal(s.events, s.eventsPerHour.reduce((a, [, n]) => a + n, 0));
    const win = (i) => i.events.filter((e) => ms(e.timeNs) >= h0).length;
    const top = pool.filter((i) => win(i) > 0)
      .sort((x, y) => (win(x) !== win(y) ? win(y) - win(x) : (BigInt(x.id) > BigInt(y.id) ? -1 : 1))).slice(0, 5);
    assert.deepEqual(s.topIssues.map((i) => [i.id, i.windowEvents]), top.map((i) => [i.id, win(i)]), `top issues ${service}`);
  }
});

stackTest(stack, 'PATCH: every transition, with the stored columns', async () => {
  const [a, b] = A.issues.filter((i) => i.service === 'filler' && i.lastRelease);
  const noRelease = A.issues.find((i) => i.service === 'filler' && !i.lastRelease);
  const patch = async (issue, body, ref = issue.id) => ok(await call('PATCH', errorsPath(A, `/${ref}`), { body }), JSON.stringify(body));

  let r = await patch(a, { status: 'resolved' });
  assert.equal(r.status, 'resolved');
  assert.equal(r.substatus, 'resolved');
  let s = await stored(a.id);
  assert.deepEqual([s.status, s.substatus, s.resolved_in_release, s.resolved, s.ignore_until_count, s.ignore_until_ns],
    ['resolved', 'resolved', null, true, null, null]);

  r = await patch(a, { status: 'resolved', inNextRelease: true }, a.shortId);
  assert.equal(r.substatus, 'resolved_in_next_release');
  assert.equal(r.resolvedInRelease, a.lastRelease);
  s = await stored(a.id);
  assert.deepEqual([s.status, s.substatus, s.resolved_in_release], ['resolved', 'resolved_in_next_release', a.lastRelease]);

  r = await patch(noRelease, { status: 'resolved', inNextRelease: true });
  s = await stored(noRelease.id);
  assert.deepEqual([r.substatus, s.substatus, s.resolved_in_release], ['resolved', 'resolved', null],
    'no release recorded: resolved plainly');

  r = await patch(a, { status: 'ignored' });
  s = await stored(a.id);
  assert.deepEqual([s.status, s.substatus, s.resolved_in_release, s.resolved, s.ignore_until_count, s.ignore_until_ns],
    ['ignored', 'ignored_forever', null, false, null, null]);

  r = await patch(a, { status: 'ignored', ignoreCount: 25 });
  s = await stored(a.id);
  assert.deepEqual([s.substatus, s.ignore_until_count, s.ignore_until_ns], ['ignored_until_count', a.eventCount + 25, null]);
  assert.equal(r.ignoreUntilCount, a.eventCount + 25);

  const until = NOW_MS + 2 * DAY_MS;
  r = await patch(b, { status: 'ignored', ignoreUntil: new Date(until).toISOString() });
  s = await stored(b.id);
  assert.deepEqual([s.status, s.substatus, s.ignore_until_ns, s.ignore_until_count],
    ['ignored', 'ignored_until_time', String(msToNs(until)), null]);
  assert.equal(r.ignoreUntilUnixNano, String(msToNs(until)));
  await patch(b, { status: 'ignored', ignoreUntil: until + 1000 });
  assert.equal((await stored(b.id)).ignore_until_ns, String(msToNs(until + 1000)), 'unix ms as a number');

  for (const issue of [a, b, noRelease]) {
    r = await patch(issue, { status: 'unresolved' });
    s = await stored(issue.id);
    assert.deepEqual([s.status, s.substatus, s.resolved_in_release, s.resolved, s.ignore_until_count, s.ignore_until_ns],
      ['unresolved', 'ongoing', null, false, null, null]);
    assert.equal(r.substatus, 'ongoing');
    Object.assign(issue, { status: 'unresolved', substatus: 'ongoing' });
  }
  // The list follows the status.
  await patch(a, { status: 'resolved' });
  a.status = 'resolved';
  a.substatus = 'resolved';
  const res = await list({ status: 'resolved', limit: 100 });
  assert.ok(ids(res.issues).includes(a.id));
});

stackTest(stack, 'bulk PATCH by ids and shortIds; a foreign or unknown id is a 404 and changes nothing', async () => {
  const fillers = A.issues.filter((i) => i.service === 'filler');
  const targets = fillers.slice(3, 6);
  const body = { ids: [targets[0].id, Number(targets[1].id), targets[2].shortId.toLowerCase(), targets[0].id], status: 'ignored', ignoreCount: 5 };
  const r = await ok(await call('PATCH', errorsPath(A), { body }), 'bulk');
  assert.deepEqual(r.issues.map((i) => i.id).sort(), ids(targets).sort());
  for (const t of targets) {
    const s = await stored(t.id);
    assert.deepEqual([s.status, s.substatus, s.ignore_until_count], ['ignored', 'ignored_until_count', t.eventCount + 5]);
    Object.assign(t, { status: 'ignored', substatus: 'ignored_until_count' });
  }
  const before = await stack.psql(`SELECT string_agg(id || status || substatus, ',' ORDER BY id) FROM issues`);
  for (const bad of [[targets[0].id, B.one.id], [targets[0].id, `${B.slug.toUpperCase()}-1`], [targets[0].id, '987654321']]) {
    const x = await call('PATCH', errorsPath(A), { body: { ids: bad, status: 'resolved' } });
    assert.equal(x.status, 404, `${bad}: ${x.text}`);
    apiError(x);
  }
  assert.equal(await stack.psql(`SELECT string_agg(id || status || substatus, ',' ORDER BY id) FROM issues`), before);
});

stackTest(stack, 'merge: counts and hourly rows fold, events and fingerprints move, merged issues leave the lists', async () => {
  const m = A.main;
  const others = [A.pct, A.pctDecoy];
  const all = [m, ...others];
  const hourlyBefore = await stack.psql(`SELECT hour_ns || ':' || sum(events) FROM issue_counts_hourly
    WHERE issue_id IN (${ids(all)}) GROUP BY hour_ns ORDER BY hour_ns`);
  const r = await ok(await call('POST', errorsPath(A, '/merge'), { body: { ids: [A.pct.shortId, m.id, Number(A.pctDecoy.id)] } }), 'merge');
  assert.equal(r.issue.id, m.id, 'the issue with the most events is the target');
  assert.deepEqual([...r.merged].sort(), ids(others).sort());
  const s = await stored(m.id);
  const evs = all.flatMap((i) => i.events);
  assert.equal(s.event_count, evs.length);
  assert.equal(s.user_count, Math.max(...all.map((i) => i.userCount)));
  assert.equal(String(s.first_seen_ns), String(all.map((i) => i.firstSeen).reduce((a, b) => (a < b ? a : b))));
  assert.equal(String(s.last_seen_ns), String(all.map((i) => i.lastSeen).reduce((a, b) => (a > b ? a : b))));
  assert.equal(s.last_release, m.lastRelease, 'the last release of the most recently seen issue');
  assert.equal(s.first_release, A.pctDecoy.firstRelease, 'the first release of the earliest seen issue');
  for (const o of others) assert.equal(String((await stored(o.id)).merged_into), m.id);
  assert.equal(await stack.psql(`SELECT hour_ns || ':' || sum(events) FROM issue_counts_hourly
    WHERE issue_id = ${m.id} GROUP BY hour_ns ORDER BY hour_ns`), hourlyBefore, 'hourly counts folded');
  assert.equal(await stack.psql(`SELECT count(*) FROM issue_counts_hourly WHERE issue_id IN (${ids(others)})`), '0');
  assert.equal(await stack.psql(`SELECT count(*) FROM error_events WHERE issue_id = ${m.id}`), String(evs.length));
  assert.equal(await stack.psql(`SELECT count(*) FROM error_events WHERE issue_id IN (${ids(others)})`), '0');
  assert.equal(await stack.psql(`SELECT count(*) FROM issue_fingerprints WHERE issue_id = ${m.id}`), String(2 * all.length));
  // The model follows.
  for (const o of others) o.mergedInto = m.id;
  m.events = [...evs].sort((x, y) => (x.timeNs < y.timeNs ? -1 : 1));
  Object.assign(m, { eventCount: evs.length, userCount: s.user_count, firstSeen: BigInt(s.first_seen_ns), firstRelease: s.first_release });
  const l = await list({ limit: 100 });
  assert.deepEqual(ids(l.issues), ids(sorted(visible(A))), 'merged issues are hidden');
  assertIssue(l.issues.find((i) => i.id === m.id), m);
  // A merged issue's id and shortId answer with the target.
  for (const ref of [A.pct.id, A.pct.shortId]) {
    const d = await ok(await call('GET', errorsPath(A, `/${ref}`)), 'merged detail');
    assert.equal(d.id, m.id);
  }
  const evPage = await ok(await call('GET', errorsPath(A, `/${A.pct.id}/events`), { query: { limit: 100 } }), 'merged events');
  assert.equal(evPage.events.length, evs.length);
  // An explicit target that has fewer events; the id of a merged issue stands for its target.
  const [f1, f2] = A.issues.filter((i) => i.service === 'filler' && i.eventCount === 1);
  const big = A.issues.find((i) => i.service === 'filler' && i.eventCount === 3);
  const r2 = await ok(await call('POST', errorsPath(A, '/merge'), { body: { target: f1.id, ids: [f2.id, big.shortId] } }), 'merge target');
  assert.equal(r2.issue.id, f1.id);
  assert.equal(r2.issue.events, 1 + 1 + 3);
  for (const o of [f2, big]) o.mergedInto = f1.id;
  f1.eventCount = 5;
  // Merging the target into another flattens the chain.
  const r3 = await ok(await call('POST', errorsPath(A, '/merge'), { body: { target: m.id, ids: [f2.id] } }), 'merge chain');
  assert.deepEqual(r3.merged, [f1.id], 'f2 stands for f1');
  assert.equal(await stack.psql(`SELECT count(*) FROM issues WHERE merged_into = ${f1.id}`), '0');
  assert.equal(await stack.psql(`SELECT count(*) FROM issues WHERE id IN (${f1.id},${f2.id},${big.id}) AND merged_into = ${m.id}`), '3');
  f1.mergedInto = m.id;
  f2.mergedInto = m.id;
  big.mergedInto = m.id;
});

stackTest(stack, 'bad input: 400 for parameters and bodies, 404 for unknown ids, 405 with Allow, 415', async () => {
  const bad = async (method, p, opts, want = 400) => {
    const r = await call(method, p, opts);
    assert.equal(r.status, want, `${method} ${p} ${JSON.stringify(opts)}: ${r.status} ${r.text.slice(0, 200)}`);
    apiError(r);
    return r;
  };
  for (const query of [{ status: 'open' }, { status: 'resolved,' }, { sort: 'newest' }, { cursor: 'abc' }, { limit: 0 },
    { limit: 100000 }, { timeRange: 'forever' }, { from: 'yesterday' }, { status: ['resolved', 'ignored'] }]) {
    await bad('GET', errorsPath(A), { query });
  }
  await bad('GET', errorsPath(A, '/stats'), { query: { timeRange: '90d' } });
  await bad('GET', errorsPath(A, `/${A.main.id}/events`), { query: { cursor: 'x' } });
  const one = errorsPath(A, `/${A.ignored.id}`);
  for (const body of ['{', '[]', '"resolved"', '{"status":"done"}', '{}', '{"status":"resolved","extra":1}',
    '{"status":"resolved","ids":[1]}', '{"status":"ignored","ignoreCount":0}', '{"status":"ignored","ignoreCount":"5"}',
    '{"status":"ignored","ignoreCount":1.5}', '{"status":"resolved","ignoreCount":5}', '{"status":"unresolved","inNextRelease":true}',
    '{"status":"resolved","inNextRelease":"yes"}', '{"status":"ignored","ignoreCount":5,"ignoreUntil":"2099-01-01T00:00:00Z"}',
    '{"status":"ignored","ignoreUntil":"2001-01-01T00:00:00Z"}', '{"status":"ignored","ignoreUntil":"soon"}',
    '{"status":"resolved","status":"ignored"}', '']) {
    await bad('PATCH', one, { body });
  }
  await bad('PATCH', one, { body: '{"status":"resolved"}', contentType: 'text/plain' }, 415);
  for (const body of [{ status: 'resolved' }, { status: 'resolved', ids: [] }, { status: 'resolved', ids: 'x' },
    { status: 'resolved', ids: [true] }, { status: 'resolved', ids: ['abc'] }, { status: 'resolved', ids: [-1] },
    { status: 'resolved', ids: Array.from({ length: 1001 }, (_, k) => k + 1) }]) {
    await bad('PATCH', errorsPath(A), { body });
  }
  for (const body of [{ ids: [A.main.id] }, { ids: [A.main.id, A.main.shortId] }, { ids: [A.main.id, A.pct.id] },
    { target: A.main.id, ids: [] }, { ids: [A.main.id, A.ancient.id], extra: 1 }, { target: true, ids: [A.main.id, A.ancient.id] }]) {
    await bad('POST', errorsPath(A, '/merge'), { body });
  }
  // Unknown ids are 404s.
  await bad('GET', errorsPath(A, '/987654321'), {}, 404);
  await bad('GET', errorsPath(A, '/not-an-id'), {}, 404);
  await bad('GET', errorsPath(A, `/${A.slug.toUpperCase()}-99999`), {}, 404);
  await bad('PATCH', errorsPath(A, '/987654321'), { body: { status: 'resolved' } }, 404);
  await bad('POST', errorsPath(A, '/merge'), { body: { ids: [A.ancient.id, '987654321'] } }, 404);
  // Methods.
  for (const [method, p, allow] of [['DELETE', one, 'GET, HEAD, PATCH'], ['POST', errorsPath(A), 'GET, HEAD, PATCH'],
    ['PATCH', errorsPath(A, '/stats'), 'GET, HEAD'], ['GET', errorsPath(A, '/merge'), 'POST'],
    ['PATCH', errorsPath(A, `/${A.ancient.id}/events`), 'GET, HEAD'], ['PUT', errorsPath(A, '/merge'), 'POST']]) {
    const r = await bad(method, p, { body: method === 'GET' ? undefined : '{}' }, 405);
    assert.equal(r.headers.allow, allow, `${method} ${p}`);
  }
  const r = await call('PATCH', `projects/${A.slug}/traces`, { body: '{}' });
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, 'GET, HEAD');
  // Nothing above changed the issue.
  assert.equal((await stored(A.ignored.id)).substatus, 'ignored_forever');
});

stackTest(stack, 'isolation: another project\'s token gets 404 everywhere and changes nothing', async () => {
  const snapshot = () => stack.psql(`SELECT md5(string_agg(row_to_json(i)::text, ',' ORDER BY id)) FROM issues i`);
  const eventsSnap = () => stack.psql(`SELECT md5(string_agg(project_id || ':' || issue_id, ',' ORDER BY event_id)) FROM error_events`);
  const before = [await snapshot(), await eventsSnap()];
  const aIssue = A.ancient;
  // B's token under A's project, by id and slug: every endpoint.
  for (const p of [A.slug, A.id]) {
    const base = `projects/${p}/errors`;
    for (const [method, path, body] of [['GET', base], ['GET', `${base}/${aIssue.id}`], ['GET', `${base}/${aIssue.shortId}`],
      ['GET', `${base}/${aIssue.id}/events`], ['GET', `${base}/stats`],
      ['PATCH', `${base}/${aIssue.id}`, { status: 'resolved' }], ['PATCH', base, { ids: [aIssue.id], status: 'resolved' }],
      ['POST', `${base}/merge`, { ids: [aIssue.id, A.regressed.id] }]]) {
      const r = await call(method, path, { token: B.token, body });
      assert.equal(r.status, 404, `${method} ${path} with B's token: ${r.status} ${r.text.slice(0, 200)}`);
      apiError(r);
    }
  }
  // A's ids under B's own project, with B's token.
  const bb = (rest) => `projects/${B.slug}/errors${rest}`;
  for (const [method, path, body] of [['GET', bb(`/${aIssue.id}`)], ['GET', bb(`/${aIssue.shortId}`)], ['GET', bb(`/${aIssue.id}/events`)],
    ['PATCH', bb(`/${aIssue.id}`), { status: 'resolved' }], ['PATCH', bb(''), { ids: [B.one.id, aIssue.id], status: 'resolved' }],
    ['POST', bb('/merge'), { ids: [B.one.id, aIssue.id] }], ['POST', bb('/merge'), { target: aIssue.id, ids: [B.one.id, B.two.id] }]]) {
    const r = await call(method, path, { token: B.token, body });
    assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.text.slice(0, 200)}`);
  }
  // B sees only its own issues, and its shortIds name its own.
  const bl = await list({ limit: 100 }, B);
  assert.deepEqual(ids(bl.issues), ids(sorted(visible(B))));
  const d = await ok(await call('GET', bb(`/${B.one.shortId}`), { token: B.token }), 'B detail');
  assert.equal(d.id, B.one.id);
  const st = await ok(await call('GET', bb('/stats'), { token: B.token }), 'B stats');
  assert.equal(st.events, B.issues.reduce((a, i) => a + i.eventCount, 0));
  assert.deepEqual([await snapshot(), await eventsSnap()], before, 'nothing of A changed');
  // B can triage its own issues.
  const r = await ok(await call('PATCH', bb(`/${B.two.shortId}`), { token: B.token, body: { status: 'resolved' } }), 'B patch');
  assert.equal(r.status, 'resolved');
});

stackTest(stack, 'RLS is the second wall for writes: the writer role changes nothing outside its projects, the reader nothing at all', async () => {
  const id = A.ancient.id;
  const asRole = (role, projects, stmt) => stack.psql(`BEGIN; SET LOCAL ROLE ${role};
    SELECT set_config('sextant.project_ids', '${projects}', true);
    ${stmt}; COMMIT;`);
  // Updates of another project's rows find nothing to update.
  const out = await asRole('sextant_issue_writer', B.id, `WITH u AS (UPDATE issues SET status = 'resolved' WHERE id = ${id} RETURNING 1) SELECT count(*) FROM u`);
  assert.match(out, /^0$/m);
  const out2 = await asRole('sextant_issue_writer', B.id, `WITH u AS (UPDATE error_events SET issue_id = ${B.one.id} WHERE issue_id = ${id} RETURNING 1) SELECT count(*) FROM u`);
  assert.match(out2, /^0$/m);
  // Moving a row into another project is refused (WITH CHECK), and so are columns outside the grant.
  await assert.rejects(asRole('sextant_issue_writer', `${A.id},${B.id}`, `UPDATE issue_fingerprints SET project_id = ${B.id} WHERE issue_id = ${id}`), /permission denied/);
  await assert.rejects(asRole('sextant_issue_writer', A.id, `UPDATE issues SET title = 'x' WHERE id = ${id}`), /permission denied/);
  await assert.rejects(asRole('sextant_issue_writer', B.id, `INSERT INTO issue_counts_hourly VALUES (${A.id}, ${id}, 0, 1)`), /row-level security/);
  await assert.rejects(asRole('sextant_reader', A.id, `UPDATE issues SET status = 'resolved' WHERE id = ${id}`), /permission denied/);
  assert.equal((await stored(id)).status, 'unresolved');
});
