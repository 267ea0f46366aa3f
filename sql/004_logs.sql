-- 004_logs.sql: log records (daily partitions), their full-text search index and row-level security.
--
-- One row per OTLP log record, range-partitioned by time_ns (unix ns) into
-- daily partitions named logs_YYYYMMDD, created ahead by
-- sextant_ensure_log_partition. time_ns is the record's time, else its
-- observed time, else the stream entry's receive time (lib/logrow.h); the
-- record's own observed time is kept as given (0 when absent).
--
-- body holds a string body as it came (byte for byte after UTF-8 repair),
-- or the JSON text of a structured body (kvlist, array, number, bool,
-- bytes as base64) with body_json true; NULL when the record had none.
--
-- Full-text search: `search` is derived from body with the 'simple'
-- configuration (lower-cased words, no stemming, no stop words), so
-- identifiers, numbers and non-English text match as written; the API
-- queries it with websearch_to_tsquery('simple', q) through the GIN index
-- logs_search, reading the view logs_visible (below).
--
-- attributes and resource are json, not jsonb, as spans' are (005): the
-- writer produces compact JSON objects, the API returns them as text and
-- reads single keys with ->> (the last of duplicate keys, as jsonb keeps),
-- and json only validates on COPY where jsonb converts.
--
-- Logs have no natural key: a redelivered stream entry is recognized by
-- persist_ledger (002), which sextant-persist consults in the transaction
-- that copies the entry's rows, so rows are never written twice.
CREATE TABLE logs (
    project_id        integer NOT NULL,
    time_ns           bigint NOT NULL,
    observed_time_ns  bigint NOT NULL DEFAULT 0,
    severity_number   smallint NOT NULL DEFAULT 0 CHECK (severity_number BETWEEN 0 AND 24),
    severity_text     text,
    body              text,
    body_json         boolean NOT NULL DEFAULT false,
    trace_id          bytea CHECK (trace_id IS NULL OR length(trace_id) = 16),
    span_id           bytea CHECK (span_id IS NULL OR length(span_id) = 8),
    flags             integer NOT NULL DEFAULT 0,
    service           text NOT NULL,
    scope_name        text,
    scope_version     text,
    attributes        json NOT NULL DEFAULT '{}',
    resource          json NOT NULL DEFAULT '{}',
    search            tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, COALESCE(body, ''))) STORED
) PARTITION BY RANGE (time_ns);

CREATE INDEX logs_recent ON logs (project_id, time_ns DESC);
CREATE INDEX logs_service_time ON logs (project_id, service, time_ns DESC);
CREATE INDEX logs_trace ON logs (project_id, trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX logs_search ON logs USING gin (search);

-- Creates the daily partition of logs holding unix-ns time ts if missing;
-- returns its name. Same day arithmetic as sextant_ensure_span_partition.
CREATE FUNCTION sextant_ensure_log_partition(ts bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    day_start bigint := (ts / 86400000000000) * 86400000000000;
    part text;
BEGIN
    IF ts < 0 THEN
        day_start := ((ts - 86399999999999) / 86400000000000) * 86400000000000;
    END IF;
    part := 'logs_' || to_char(to_timestamp(day_start / 1e9) AT TIME ZONE 'UTC', 'YYYYMMDD');
    IF to_regclass(part) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF logs FOR VALUES FROM (%s) TO (%s)',
                           part, day_start, day_start + 86400000000000);
        EXCEPTION WHEN duplicate_table THEN
            NULL; -- another instance made it first
        END;
    END IF;
    RETURN part;
END $$;

-- Second wall, as for spans (001): the API reads as sextant_reader with
-- sextant.project_ids set; sextant-persist writes as the owner.
ALTER TABLE logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY logs_by_project ON logs FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON logs TO sextant_reader;

-- What the API reads. Under RLS the planner may not use logs_search: the
-- policy's check must run before any user condition that is not LEAKPROOF,
-- and the text search operator @@ is not, so `search @@ q` would only
-- filter the rows of the (project, time) btree range. This view (owned by
-- the migrating role, so RLS does not apply inside it) applies the same
-- restriction as logs_by_project as an ordinary condition, which lets the
-- planner combine the GIN index with the btree (BitmapAnd). It is not a
-- security_barrier view on purpose (that would bring the restriction
-- back); the API only runs its own parameterized SQL, so no user function
-- can see rows before the filter. row_tid (the row's ctid in its day
-- partition) orders rows of equal time for the API's page cursors.
CREATE VIEW logs_visible AS
    SELECT l.ctid AS row_tid, l.*
    FROM logs l
    WHERE l.project_id = ANY (sextant_visible_projects());
GRANT SELECT ON logs_visible TO sextant_reader;
