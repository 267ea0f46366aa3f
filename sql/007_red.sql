-- 007_red.sql: API performance from spans (sextant-rollup, workers/rollup_red.c): rate, errors and duration per operation, service-to-service edges and database statements, one-minute buckets, with row-level security.
--
-- red_1m: one row per (project, service, operation, span kind, minute of the
-- span's start) of SERVER (kind 2) and CONSUMER (kind 5) spans. operation is
-- http.route, else the span name. errors counts spans with status code 2
-- (error) or an HTTP 5xx answer; s2xx..s5xx count spans by the class of
-- http.response.status_code (or the older http.status_code); spans without
-- one are in none of them. Durations in milliseconds (end - start);
-- dur_buckets holds one count per bucket of the fixed upper bounds (ms,
-- inclusive), the last bucket unbounded (lib/red.h, SX_RED_BOUNDS):
--   0.5 1 2.5 5 7.5 10 15 25 35 50 75 100 150 200 250 350 500 750
--   1000 1500 2500 3500 5000 7500 10000 15000 30000 60000 +inf
--
-- edges_1m: calls from parent_service to child_service: a span of
-- child_service whose parent span belongs to parent_service (found in the
-- same batch of stream entries, or through short-lived Redis keys for a
-- parent or child that came in another batch, see workers/rollup_red.c).
-- errors and dur_buckets are those of the child span.
--
-- db_statements_1m: CLIENT spans with db.system / db.system.name, per
-- (service, db system, normalized statement, minute). statement is
-- db.query.text / db.statement normalized by lib/sqlnorm.c (literals -> ?),
-- else db.operation(.name) and the collection/table, else the span name;
-- stmt_hash the first 8 bytes of SHA-256 of the normalized text, as a
-- bigint. db_name is db.namespace / db.name of the first span seen.
--
-- Rows are upserted, adding to what the minute holds; a batch of stream
-- entries is applied once through persist_ledger (002, stream "spans-red"),
-- in the same transaction as its rows.
CREATE TABLE red_1m (
    project_id       integer NOT NULL,
    service          text NOT NULL,
    operation        text NOT NULL,
    kind             smallint NOT NULL,
    bucket_start_ns  bigint NOT NULL,
    requests         bigint NOT NULL DEFAULT 0,
    errors           bigint NOT NULL DEFAULT 0,
    s2xx             bigint NOT NULL DEFAULT 0,
    s3xx             bigint NOT NULL DEFAULT 0,
    s4xx             bigint NOT NULL DEFAULT 0,
    s5xx             bigint NOT NULL DEFAULT 0,
    dur_sum_ms       double precision NOT NULL DEFAULT 0,
    dur_min_ms       double precision,
    dur_max_ms       double precision,
    dur_buckets      bigint[] NOT NULL,
    PRIMARY KEY (project_id, service, operation, kind, bucket_start_ns)
);
CREATE INDEX red_1m_time ON red_1m (project_id, bucket_start_ns);

CREATE TABLE edges_1m (
    project_id       integer NOT NULL,
    parent_service   text NOT NULL,
    child_service    text NOT NULL,
    bucket_start_ns  bigint NOT NULL,
    calls            bigint NOT NULL DEFAULT 0,
    errors           bigint NOT NULL DEFAULT 0,
    dur_buckets      bigint[] NOT NULL,
    PRIMARY KEY (project_id, parent_service, child_service, bucket_start_ns)
);
CREATE INDEX edges_1m_time ON edges_1m (project_id, bucket_start_ns);

CREATE TABLE db_statements_1m (
    project_id       integer NOT NULL,
    service          text NOT NULL,
    db_system        text NOT NULL,
    stmt_hash        bigint NOT NULL,
    bucket_start_ns  bigint NOT NULL,
    statement        text NOT NULL,
    db_name          text,
    calls            bigint NOT NULL DEFAULT 0,
    errors           bigint NOT NULL DEFAULT 0,
    dur_sum_ms       double precision NOT NULL DEFAULT 0,
    dur_max_ms       double precision,
    dur_buckets      bigint[] NOT NULL,
    PRIMARY KEY (project_id, service, db_system, stmt_hash, bucket_start_ns)
);
CREATE INDEX db_statements_1m_time ON db_statements_1m (project_id, bucket_start_ns);

-- Second wall, as for spans (001), logs (004) and metrics (006).
ALTER TABLE red_1m ENABLE ROW LEVEL SECURITY;
ALTER TABLE edges_1m ENABLE ROW LEVEL SECURITY;
ALTER TABLE db_statements_1m ENABLE ROW LEVEL SECURITY;
CREATE POLICY red_1m_by_project ON red_1m FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY edges_1m_by_project ON edges_1m FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY db_statements_1m_by_project ON db_statements_1m FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON red_1m, edges_1m, db_statements_1m TO sextant_reader;
