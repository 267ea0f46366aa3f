-- 003_spans_no_pk.sql: spans lose their primary key; a plain index serves trace lookups.
--
-- Redelivered stream entries are now recognized by persist_ledger (002), so
-- spans are copied straight into the table without a uniqueness check: no
-- staging table, no ON CONFLICT, no unique btree to probe per row. The
-- trace-detail query (project_id, trace_id, within the trace's time range)
-- uses spans_trace. A batch accepted twice under different bytes (an SDK
-- resending a request in another shape) can leave exact duplicate rows; the
-- API's trace-detail query drops them (DISTINCT ON (start_time_ns, span_id)).
--
-- On an existing database this builds spans_trace on every partition inside
-- the migration's transaction: writes to spans wait until it commits.
ALTER TABLE spans DROP CONSTRAINT IF EXISTS spans_pkey;
CREATE INDEX IF NOT EXISTS spans_trace ON spans (project_id, trace_id);
