-- 016_service_roles.sql: one group role per program with exactly the privileges it uses, so no program needs the tables' owner.
--
-- Until now every program connected as the owner, which bypasses row-level
-- security and hides any missing grant. Each program now logs in as its own
-- role (pg_conninfo per program: ingest_pg_conninfo, api_pg_conninfo,
-- persist_pg_conninfo, rollup_pg_conninfo), a member of one of these NOLOGIN
-- group roles; only `sextantctl` (migrate, maintain, projects, keys, users...)
-- stays the owner. Login roles and their passwords are a deployment matter
-- (README, "Database roles"; scripts/stack.sh makes them for the local stack):
--
--   CREATE ROLE sextant_ingest  LOGIN IN ROLE sextant_ingest_role;
--   CREATE ROLE sextant_api     LOGIN IN ROLE sextant_api_role;
--   CREATE ROLE sextant_persist LOGIN BYPASSRLS IN ROLE sextant_persist_role;
--   CREATE ROLE sextant_rollup  LOGIN BYPASSRLS IN ROLE sextant_rollup_role;
--
-- Why BYPASSRLS for the two writers: they COPY into tables with row-level
-- security (spans, logs; metric_points_raw), and PostgreSQL refuses COPY FROM
-- into such a table for any role that is subject to its policies. They write
-- every project's rows by design; the policies are the API's second wall.
-- BYPASSRLS is an attribute of the login role (attributes are not inherited
-- from groups), and only a superuser can give it.
--
-- sextant_ingest_role: reads an ingest key by its hash and the key's project
--   settings, for every project (a key is looked up before its project is
--   known): SELECT policies USING (true) on ingest_keys and projects, and only
--   the key columns it needs (never names or prefixes).
-- sextant_api_role: the API's four roles of sql/012-015 (it authenticates as
--   sextant_auth, then runs each request as sextant_reader,
--   sextant_issue_writer or sextant_project_writer with SET LOCAL ROLE).
-- sextant_persist_role: spans, logs, trace summaries, error events, issues and
--   their fingerprints, counts, releases and numbering, the ledger; reads the
--   projects' error rules.
-- sextant_rollup_role: metric series and points (1m, 1h, raw), RED, edges and
--   database statements, the ledger.
--
-- Daily partitions (spans, logs, error_events) are made at runtime by
-- sextant-persist. CREATE TABLE ... PARTITION OF needs the parent's owner, and
-- a partition made by the persist role would belong to it (sextantctl maintain,
-- as the owner, drops expired partitions), so the three sextant_ensure_*
-- functions become SECURITY DEFINER, owned by the tables' owner, executable
-- only by the owner and sextant_persist_role. Their only input is a bigint.
-- Partitions carry no grants: no service role can read a partition directly,
-- around the parent's row-level security.
--
-- A later migration that adds a table grants each role what it needs there.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['sextant_ingest_role', 'sextant_api_role', 'sextant_persist_role', 'sextant_rollup_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;

-- sextant-ingest
GRANT SELECT (id, project_id, key_hash, revoked_at) ON ingest_keys TO sextant_ingest_role;
GRANT SELECT ON projects TO sextant_ingest_role;
CREATE POLICY ingest_keys_ingest ON ingest_keys FOR SELECT TO sextant_ingest_role USING (true);
CREATE POLICY projects_ingest ON projects FOR SELECT TO sextant_ingest_role USING (true);

-- sextant-api
GRANT sextant_reader, sextant_issue_writer, sextant_project_writer, sextant_auth TO sextant_api_role;

-- sextant-persist
GRANT SELECT, INSERT, DELETE ON persist_ledger TO sextant_persist_role;
GRANT INSERT ON spans, logs, error_events TO sextant_persist_role;
GRANT SELECT, INSERT, UPDATE ON traces TO sextant_persist_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON issues TO sextant_persist_role;
GRANT USAGE ON SEQUENCE issues_id_seq TO sextant_persist_role;
GRANT SELECT, INSERT, UPDATE ON issue_seq, issue_counts_hourly TO sextant_persist_role;
GRANT SELECT, INSERT ON issue_fingerprints, releases TO sextant_persist_role;
GRANT SELECT ON projects TO sextant_persist_role;

-- sextant-rollup
GRANT SELECT, INSERT ON persist_ledger TO sextant_rollup_role;
GRANT SELECT, INSERT ON metric_series TO sextant_rollup_role;
GRANT USAGE ON SEQUENCE metric_series_id_seq TO sextant_rollup_role;
GRANT SELECT, INSERT, UPDATE ON metric_points_1m, metric_points_1h, red_1m, edges_1m, db_statements_1m
    TO sextant_rollup_role;
GRANT SELECT, INSERT, DELETE ON metric_points_raw TO sextant_rollup_role;

-- Partitions: made with the owner's rights, by the owner and sextant-persist only.
ALTER FUNCTION sextant_ensure_span_partition(bigint) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION sextant_ensure_log_partition(bigint) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION sextant_ensure_error_event_partition(bigint) SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE ALL ON FUNCTION sextant_ensure_span_partition(bigint), sextant_ensure_log_partition(bigint),
    sextant_ensure_error_event_partition(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sextant_ensure_span_partition(bigint), sextant_ensure_log_partition(bigint),
    sextant_ensure_error_event_partition(bigint) TO sextant_persist_role;
