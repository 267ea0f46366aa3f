-- 007_red.sql: API performance from spans (sextant-rollup): per-operation rate, errors, duration, and service-to-service edges, one-minute buckets, with row-level security.
--
-- red_1m: one row per (project, service, operation, span kind, minute) of
-- SERVER (kind 2) and CONSUMER (kind 5) spans. operation is http.route, or
-- the span name when the span has none. errors counts spans with status
-- code 2 (error) or an HTTP 5xx answer; s2xx..s5xx count spans by the class
-- of http.response.status_code (or http.status_code); spans without one are
-- in none of them. Durations in milliseconds (end - start); dur_buckets has
-- 14 counts for the fixed upper bounds (ms, inclusive)
--   1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, +inf
-- (SX_RED_BOUNDS in workers/rollup.c and fcgi/api_perf.c).
--
-- edges_1m: calls from parent_service to child_service: a SERVER/CONSUMER
-- span of child_service whose parent span belongs to parent_service (the
-- parent found in the same stream entry, or for a remote parent through a
-- short-lived Redis map of CLIENT/PRODUCER span ids to their service, see
-- workers/rollup.c). errors and dur_buckets as in red_1m, of the child span.
--
-- Rows are upserted, adding to what the minute holds; a stream entry is
-- applied once through persist_ledger (002, stream "spans-red"), in the same
-- transaction as its rows.
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

-- Second wall, as for spans (001), logs (004) and metrics (006).
ALTER TABLE red_1m ENABLE ROW LEVEL SECURITY;
ALTER TABLE edges_1m ENABLE ROW LEVEL SECURITY;
CREATE POLICY red_1m_by_project ON red_1m FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY edges_1m_by_project ON edges_1m FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON red_1m, edges_1m TO sextant_reader;
