// grants.test.mjs: the programs run as their own PostgreSQL logins, never the
// tables' owner (sql/016_service_roles.sql, scripts/stack.sh make_roles), and
// those logins can do what their program needs and nothing more: the API's
// login sees no project's rows until sextant.project_ids names it, cannot
// write tables it has no business writing, and no service login can read a
// partition directly (around the parent's row-level security). Partitions the
// writers make at runtime belong to the tables' owner.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { useStack, stackTest, eventually, run } from './lib/stack.mjs';
import { randomTraceId, randomSpanId } from './lib/otlp.mjs';

const stack = useStack('grants');

const PROGRAMS = ['ingest', 'api', 'sse', 'persist', 'rollup'];
const DAY_NS = 86_400_000_000_000n;
const OLD_NS = BigInt(Date.now()) * 1_000_000n - 5n * DAY_NS; // a day no partition was made for ahead
const A = {};
const B = {};

/** psql as one program's login (PROGRAM_pg_conninfo of sextant.conf): {code, out, err}. */
async function psqlAs(program, sql) {
  const conninfo = stack.config()[`${program}_pg_conninfo`];
  assert.ok(conninfo, `sextant.conf has no ${program}_pg_conninfo`);
  const r = await run('psql', [conninfo, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-Atc', sql], { env: stack.env });
  return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim() };
}

/** Runs sql as program's login and expects PostgreSQL to refuse it for want of a privilege. */
async function refused(program, sql) {
  const r = await psqlAs(program, sql);
  assert.notEqual(r.code, 0, `${program} may run ${sql}: ${r.out}`);
  assert.match(r.err, /permission denied|must be owner|row-level security/, `${program}: ${sql}: ${r.err}`);
}

/** Rows sql returns as program's login, with sextant.project_ids set to ids first when given. */
async function rowsAs(program, sql, ids) {
  const pre = ids === undefined ? '' : `SET sextant.project_ids = '${ids}'; `;
  const r = await psqlAs(program, `${pre}${sql}`);
  assert.equal(r.code, 0, `${program}: ${sql}: ${r.err}`);
  return r.out;
}

function otlpTrace(serviceName, start) {
  const traceId = randomTraceId().toString('hex');
  const str = (v) => ({ stringValue: v });
  return {
    traceId,
    body: JSON.stringify({
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: str(serviceName) }] },
        scopeSpans: [{
          scope: { name: 'grants-e2e' },
          spans: [{
            traceId, spanId: randomSpanId().toString('hex'), name: 'GET /orders', kind: 2,
            startTimeUnixNano: String(start), endTimeUnixNano: String(start + 5_000_000n),
            attributes: [{ key: 'http.route', value: str('/orders') }],
            status: { code: 2, message: 'boom' },
            events: [{
              name: 'exception', timeUnixNano: String(start + 1_000_000n),
              attributes: [
                { key: 'exception.type', value: str('GrantsError') },
                { key: 'exception.message', value: str(`grants ${serviceName}`) },
              ],
            }],
          }],
        }],
      }],
    }),
  };
}

function otlpLog(serviceName, time) {
  return JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: serviceName } }] },
      scopeLogs: [{ logRecords: [{ timeUnixNano: String(time), severityNumber: 9, body: { stringValue: 'grants log' } }] }],
    }],
  });
}

function otlpMetric(serviceName, time) {
  return JSON.stringify({
    resourceMetrics: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: serviceName } }] },
      scopeMetrics: [{
        metrics: [{ name: 'grants.requests', sum: { aggregationTemporality: 1, isMonotonic: true,
          dataPoints: [{ asInt: '3', startTimeUnixNano: String(time - 1_000_000_000n), timeUnixNano: String(time) }] } }],
      }],
    }],
  });
}

async function ingestJson(path, body, key) {
  const url = new URL(path, stack.url.origin);
  const r = await stack.request('POST', url, { headers: { 'content-type': 'application/json', 'x-api-key': key }, body });
  assert.equal(r.status, 200, `${path}: ${r.status} ${r.text.slice(0, 200)}`);
}

stackTest(stack, 'two projects ingest traces (with an exception), logs and metrics; persist and rollup store them', async () => {
  Object.assign(A, { id: String(stack.projectId), key: stack.ingestKey });
  const p = await stack.ctl('project', 'create', `grants-b-${randomBytes(3).toString('hex')}`);
  Object.assign(B, { id: String(p.id), key: p.ingestKey });
  for (const [x, svc] of [[A, 'grants-a'], [B, 'grants-b']]) {
    const now = BigInt(Date.now()) * 1_000_000n;
    const t = otlpTrace(svc, OLD_NS);
    x.traceId = t.traceId;
    await ingestJson('/v1/traces', t.body, x.key);
    await ingestJson('/v1/traces', otlpTrace(svc, now).body, x.key);
    await ingestJson('/v1/logs', otlpLog(svc, OLD_NS), x.key);
    await ingestJson('/v1/metrics', otlpMetric(svc, now), x.key);
  }
  await eventually(async () => {
    const got = await stack.psql(`SELECT (SELECT count(*) FROM spans WHERE project_id IN (${A.id}, ${B.id}))
      || ' ' || (SELECT count(*) FROM logs WHERE project_id IN (${A.id}, ${B.id}))
      || ' ' || (SELECT count(*) FROM issues WHERE project_id IN (${A.id}, ${B.id}))
      || ' ' || (SELECT count(*) FROM error_events WHERE project_id IN (${A.id}, ${B.id}))
      || ' ' || (SELECT count(*) FROM red_1m WHERE project_id IN (${A.id}, ${B.id}))
      || ' ' || (SELECT count(*) FROM metric_series WHERE project_id IN (${A.id}, ${B.id}))`);
    // 4 spans, 2 logs, an issue per project, 4 error events, RED rows, a series per project.
    const [spans, logs, issues, events, red, series] = got.split(' ').map(Number);
    assert.deepEqual({ spans, logs, issues, events, redSome: red > 0, series },
      { spans: 4, logs: 2, issues: 2, events: 4, redSome: true, series: 2 });
  }, { what: 'persist and rollup writing as their own roles', timeoutMs: 30_000 });
});

stackTest(stack, 'each program is connected as its own login role, none of them a superuser or the owner', async () => {
  // Ingest and the API connect on first use: make sure both have.
  const r = await stack.api(`projects/${stack.project}/traces`);
  assert.equal(r.status, 200, r.text.slice(0, 200));
  const fresh = await stack.ctl('key', 'create', '--project', stack.project);
  await ingestJson('/v1/logs', otlpLog('grants-conn', BigInt(Date.now()) * 1_000_000n), fresh.ingestKey ?? fresh.key);
  // sextant-sse connects when a stream authenticates (and keeps the connection in its pool).
  const u = new URL(`projects/${stack.project}/stream?topics=issues`, stack.apiBase);
  const first = await new Promise((resolve, reject) => {
    const req = https.request(u, { headers: { Authorization: `Bearer ${stack.token}` }, agent: stack.agent }, (res) => {
      res.once('data', (d) => { resolve(`${res.statusCode} ${d}`); req.destroy(); });
    });
    req.on('error', reject);
    req.end();
  });
  assert.match(first, /^200 retry: /, 'the stream opened');
  const owner = await stack.psql(`SELECT tableowner FROM pg_tables WHERE tablename = 'spans'`);
  const rows = await stack.psql(`SELECT DISTINCT split_part(application_name, '@', 1) || ' ' || usename
    FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'sextant-%'
    AND application_name <> 'sextantctl' ORDER BY 1`);
  assert.deepEqual(rows.split('\n'),
    ['sextant-api sextant_api', 'sextant-ingest sextant_ingest', 'sextant-persist sextant_persist', 'sextant-rollup sextant_rollup',
      'sextant-sse sextant_sse'],
    `sessions (table owner ${owner})`);
  // rolname, superuser, bypasses RLS, creates roles, in its group, in the owner
  const attrs = await stack.psql(`SELECT rolname || ' ' || rolsuper || ' ' || rolbypassrls || ' ' || rolcreaterole
    || ' ' || pg_has_role(rolname, rolname || '_role', 'MEMBER') || ' ' || pg_has_role(rolname, '${owner}', 'MEMBER')
    FROM pg_roles WHERE rolname IN ('sextant_ingest', 'sextant_api', 'sextant_persist', 'sextant_rollup', 'sextant_sse') ORDER BY 1`);
  // Only the two COPY writers bypass row-level security (sql/016); nobody is, or is in, the owner.
  assert.deepEqual(attrs.split('\n'), [
    'sextant_api false false false true false', 'sextant_ingest false false false true false',
    'sextant_persist false true false true false', 'sextant_rollup false true false true false',
    'sextant_sse false false false true false',
  ]);
});

stackTest(stack, 'the API login reads no project\'s rows without sextant.project_ids, and only the named project\'s with it', async () => {
  assert.ok(B.id, 'project B was not made');
  const counts = `SELECT (SELECT count(*) FROM spans WHERE project_id = ${A.id}) || ' ' ||
    (SELECT count(*) FROM spans WHERE project_id = ${B.id}) || ' ' || (SELECT count(*) FROM traces) || ' ' ||
    (SELECT count(*) FROM logs) || ' ' || (SELECT count(*) FROM issues) || ' ' || (SELECT count(*) FROM error_events) || ' ' ||
    (SELECT count(*) FROM metric_series) || ' ' || (SELECT count(*) FROM red_1m WHERE project_id = ${B.id}) || ' ' ||
    (SELECT count(*) FROM ingest_keys WHERE project_id = ${B.id})`;
  // As the owner every row is there; as the API's login none, however the query filters.
  const all = (await stack.psql(counts)).split(' ').map(Number);
  assert.ok(all.every((n) => n > 0), `owner sees ${all}`);
  assert.equal(await rowsAs('api', counts), '0 0 0 0 0 0 0 0 0');
  assert.equal(await rowsAs('api', `SET ROLE sextant_reader; ${counts}`), '0 0 0 0 0 0 0 0 0');
  // With project A named: A's rows only, even when the query asks for B's.
  const onlyA = (await rowsAs('api', `SET ROLE sextant_reader; ${counts}`, A.id)).split(' ').map(Number);
  assert.equal(onlyA[0], 2, `A's spans: ${onlyA}`);
  assert.equal(onlyA[1], 0, `B's spans seen with project_ids = A: ${onlyA}`);
  assert.equal(onlyA[7], 0, `B's RED rows seen with project_ids = A: ${onlyA}`);
  assert.equal(onlyA[8], 0, `B's ingest keys seen with project_ids = A: ${onlyA}`);
  assert.equal(await rowsAs('api', `SET ROLE sextant_reader; SELECT count(*) FROM logs_visible WHERE project_id = ${B.id}`, A.id), '0');
  assert.notEqual(await rowsAs('api', `SET ROLE sextant_reader; SELECT count(*) FROM logs_visible WHERE project_id = ${A.id}`, A.id), '0');
  // A day partition holds both projects and has no policy of its own: no service login may read it directly.
  const part = await stack.psql(`SELECT sextant_ensure_span_partition(${OLD_NS})`);
  for (const program of PROGRAMS) await refused(program, `SELECT count(*) FROM ${part}`);
});

stackTest(stack, 'the API login cannot write what it must not, and RLS limits what it may write to the named project', async () => {
  assert.ok(B.id, 'project B was not made');
  for (const sql of [
    'DELETE FROM spans', 'INSERT INTO persist_ledger VALUES (\'x\', \'\\x00000000000000000000000000000000\', \'1-0\')',
    'UPDATE users SET is_admin = true', 'DELETE FROM users', 'TRUNCATE projects', 'DROP TABLE spans',
    'UPDATE issues SET title = \'x\'', 'DELETE FROM issues', 'UPDATE ingest_keys SET key_hash = key_hash',
    `SELECT sextant_ensure_span_partition(${OLD_NS})`, 'UPDATE access_tokens SET user_id = NULL',
    'CREATE TABLE grants_probe (x int)',
  ]) await refused('api', sql);
  // Writes the API may make (sql/015) reach only the projects named in sextant.project_ids.
  assert.equal(await rowsAs('api', `SET ROLE sextant_project_writer; DELETE FROM projects WHERE id = ${B.id} RETURNING id`, A.id), '');
  assert.equal(await rowsAs('api', `SET ROLE sextant_project_writer; UPDATE projects SET name = 'taken' WHERE id = ${B.id} RETURNING id`, A.id), '');
  assert.equal(await rowsAs('api', `SET ROLE sextant_project_writer; UPDATE projects SET name = name WHERE id = ${A.id} RETURNING id`, A.id), A.id);
  await refused('api', `SET ROLE sextant_project_writer; SET sextant.project_ids = '${A.id}'; UPDATE projects SET slug = 'moved' WHERE id = ${A.id}`);
  await refused('api', `SET ROLE sextant_project_writer; SET sextant.project_ids = '${A.id}';
    INSERT INTO ingest_keys (project_id, key_hash, key_prefix) VALUES (${B.id}, decode(repeat('ab', 32), 'hex'), 'x')`);
  assert.equal(await stack.psql(`SELECT name <> 'taken' FROM projects WHERE id = ${B.id}`), 't');
});

stackTest(stack, 'ingest, sse, persist and rollup logins are limited to their own tables', async () => {
  // sse: authentication only (sextant_auth); no telemetry, no writes to projects.
  for (const sql of ['SELECT count(*) FROM spans', 'SELECT count(*) FROM logs', 'SELECT count(*) FROM issues',
    'SELECT count(*) FROM metric_series', 'SELECT count(*) FROM red_1m', 'UPDATE projects SET status = \'suspended\'',
    'DELETE FROM projects', 'SELECT count(*) FROM ingest_keys'])
    await refused('sse', sql);
  // Ingest: the key columns it looks up, never names or other tables.
  assert.equal(await rowsAs('ingest', `SELECT count(*) FROM ingest_keys WHERE project_id = ${B.id}`), '1');
  for (const sql of ['SELECT key_prefix FROM ingest_keys', 'SELECT count(*) FROM spans', 'SELECT count(*) FROM users',
    'SELECT count(*) FROM access_tokens', 'UPDATE ingest_keys SET revoked_at = now()', 'DELETE FROM projects'])
    await refused('ingest', sql);
  for (const sql of ['SELECT password_hash FROM users', 'SELECT count(*) FROM sessions', 'DELETE FROM projects',
    'UPDATE projects SET status = \'suspended\'', 'SELECT count(*) FROM metric_series', 'DELETE FROM spans',
    'SELECT count(*) FROM ingest_keys'])
    await refused('persist', sql);
  for (const sql of ['SELECT count(*) FROM spans', 'SELECT password_hash FROM users', 'SELECT count(*) FROM ingest_keys',
    'DELETE FROM metric_series', `SELECT sextant_ensure_log_partition(${OLD_NS})`])
    await refused('rollup', sql);
});

stackTest(stack, 'partitions persist made at runtime belong to the tables\' owner, so sextantctl maintain can drop them', async () => {
  const owner = await stack.psql(`SELECT tableowner FROM pg_tables WHERE tablename = 'spans'`);
  const day = new Date(Number(OLD_NS / 1_000_000n)).toISOString().slice(0, 10).replaceAll('-', '');
  const rows = await stack.psql(`SELECT tablename || ' ' || tableowner FROM pg_tables
    WHERE tablename IN ('spans_${day}', 'logs_${day}', 'error_events_${day}') ORDER BY 1`);
  assert.deepEqual(rows.split('\n'), [`error_events_${day} ${owner}`, `logs_${day} ${owner}`, `spans_${day} ${owner}`]);
});
