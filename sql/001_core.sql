-- 001_core.sql: projects, ingest keys, access tokens, spans (daily partitions) and trace summaries.
-- Applied once by `sextantctl migrate`, which records it in schema_migrations.

CREATE TABLE projects (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Ingest keys: only the SHA-256 of the key is stored; key_prefix is shown in listings.
CREATE TABLE ingest_keys (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   integer NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key_hash     bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix   text NOT NULL,
    name         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX ingest_keys_project ON ingest_keys (project_id);

-- Access tokens: read a project through the API. project_id is set for project
-- tokens (sextantctl token create); user tokens come later and leave it NULL.
CREATE TABLE access_tokens (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   integer REFERENCES projects(id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    token_prefix text NOT NULL,
    name         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- Spans: one row per span, range-partitioned by start time (unix ns) into daily
-- partitions named spans_YYYYMMDD, created ahead by sextant_ensure_span_partition.
-- The primary key is the natural key (plus the partition key), so a redelivered
-- batch inserts nothing twice (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE spans (
    project_id       integer NOT NULL,
    trace_id         bytea NOT NULL CHECK (length(trace_id) = 16),
    span_id          bytea NOT NULL CHECK (length(span_id) = 8),
    parent_span_id   bytea CHECK (parent_span_id IS NULL OR length(parent_span_id) = 8),
    start_time_ns    bigint NOT NULL,
    end_time_ns      bigint NOT NULL,
    name             text NOT NULL,
    kind             smallint NOT NULL DEFAULT 0,
    service          text NOT NULL,
    status_code      smallint NOT NULL DEFAULT 0,   -- 0 unset, 1 ok, 2 error
    status_message   text,
    http_method      text,
    http_route       text,
    http_status_code integer,
    trace_state      text,
    scope_name       text,
    scope_version    text,
    attributes       jsonb NOT NULL DEFAULT '{}',
    events           jsonb,
    links            jsonb,
    resource         jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (project_id, trace_id, span_id, start_time_ns)
) PARTITION BY RANGE (start_time_ns);
CREATE INDEX spans_service_time ON spans (project_id, service, start_time_ns DESC);

-- Creates the daily partition holding unix-ns time ts if missing; returns its name.
CREATE FUNCTION sextant_ensure_span_partition(ts bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    day_start bigint := (ts / 86400000000000) * 86400000000000;
    part text;
BEGIN
    IF ts < 0 THEN
        day_start := ((ts - 86399999999999) / 86400000000000) * 86400000000000;
    END IF;
    part := 'spans_' || to_char(to_timestamp(day_start / 1e9) AT TIME ZONE 'UTC', 'YYYYMMDD');
    IF to_regclass(part) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF spans FOR VALUES FROM (%s) TO (%s)',
                           part, day_start, day_start + 86400000000000);
        EXCEPTION WHEN duplicate_table THEN
            NULL; -- another instance made it first
        END;
    END IF;
    RETURN part;
END $$;

-- Trace summaries, maintained by sextant-persist from the spans it inserts.
-- The root is the earliest span without a parent; until one arrives, the
-- earliest span stands in (has_root false) and a real root replaces it later.
CREATE TABLE traces (
    project_id     integer NOT NULL,
    trace_id       bytea NOT NULL CHECK (length(trace_id) = 16),
    start_time_ns  bigint NOT NULL,
    end_time_ns    bigint NOT NULL,
    has_root       boolean NOT NULL DEFAULT false,
    root_start_ns  bigint NOT NULL,
    root_service   text,
    root_name      text,
    span_count     integer NOT NULL DEFAULT 0,
    error_count    integer NOT NULL DEFAULT 0,
    services       text[] NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, trace_id)
);
CREATE INDEX traces_recent ON traces (project_id, start_time_ns DESC, trace_id DESC);

-- Second wall behind the API's own project checks: the API runs its queries as
-- sextant_reader with `SET LOCAL sextant.project_ids = '1,2'`; rows of other
-- projects are invisible even if a query forgot its filter. sextant-persist
-- and sextantctl connect as the owner and are not subject to these policies.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sextant_reader') THEN
        CREATE ROLE sextant_reader NOLOGIN;
    END IF;
END $$;

CREATE FUNCTION sextant_visible_projects() RETURNS integer[]
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(string_to_array(NULLIF(current_setting('sextant.project_ids', true), ''), ',')::integer[],
                    '{}'::integer[])
$$;

ALTER TABLE spans ENABLE ROW LEVEL SECURITY;
ALTER TABLE traces ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY spans_by_project ON spans FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY traces_by_project ON traces FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY projects_by_id ON projects FOR SELECT TO sextant_reader
    USING (id = ANY (sextant_visible_projects()));
GRANT SELECT ON spans, traces, projects TO sextant_reader;
