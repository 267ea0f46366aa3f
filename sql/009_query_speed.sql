-- 009_query_speed.sql: partial indexes for searches by a rare severity (logs) or status=error (traces).
--
-- GET .../logs?severity=ERROR walks logs_recent newest first and tests each
-- row; that stops after a page when errors are common, but reads the whole
-- time range when they are rare: severity=FATAL over 1,100,000 logs without
-- one was a sequential scan of every partition, 230-290 ms. This partial
-- index holds only ERROR and FATAL rows (severity_number 17..24), by
-- severity and then newest first, so such a search reads only the rows of
-- the severities asked for (a severity=FATAL search with none finds none in
-- the index instead of testing every ERROR row); the planner uses it when
-- the requested minimum is 17 or more (the API sends it as a value, which
-- PostgreSQL plans with, so it can prove the index's condition). Rows below
-- ERROR cost no index entry, so ingest pays only for error logs.
--
-- On an existing database this builds the index on every logs partition
-- inside the migration's transaction: writes to logs wait until it commits.
CREATE INDEX IF NOT EXISTS logs_severe_time ON logs (project_id, severity_number, time_ns DESC) WHERE severity_number >= 17;

-- The trace list with status=error walks traces_recent and tests each
-- trace; when errors are rare among the newest traces it reads all of them
-- (2.4 s with 896,000 newer traces without an error). Error traces only,
-- newest first, in the list's order: persist's summary upserts pay for an
-- entry only when a trace has an error (and a non-HOT update when it first
-- gets one).
CREATE INDEX IF NOT EXISTS traces_error_recent ON traces (project_id, start_time_ns DESC, trace_id DESC)
    WHERE error_count > 0;
