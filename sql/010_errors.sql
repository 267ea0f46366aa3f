-- 010_errors.sql: error tracking: error events (daily partitions), issues, their fingerprints, hourly counts and releases, with row-level security.
--
-- sextant-persist derives error events from what it stores (span events named
-- "exception", log records with exception.* attributes, and log records at
-- ERROR or above when the project's error_logs_as_events is on), groups each
-- into an issue by fingerprint (lib/grouping.h, versioned) and writes, in the
-- same transaction as the entry's ledger row, the events, the issue rows and
-- the hourly counts. Affected users are counted in Redis HyperLogLogs and
-- flushed into issues.user_count.
--
-- issues: one row per issue. short_seq numbers a project's issues from 1
-- (shortId "<SLUG>-<seq>" in the API). status / substatus follow Sentry:
--   unresolved: new (set when the issue is made; shown as ongoing once it is
--               7 days old), ongoing, regressed (a resolved issue saw an event of a newer
--               release, or of any release when none was recorded), escalating
--               (an ignore condition ran out);
--   resolved:   resolved, resolved_in_next_release (resolved_in_release holds
--               the latest release seen when it was resolved: an event of
--               another, newer release reopens it);
--   ignored:    ignored_forever, ignored_until_count (ignore_until_count is
--               the event_count at which it comes back), ignored_until_time
--               (ignore_until_ns).
-- merged_into: the issue this one was merged into (its fingerprints now
-- point there; merged issues are hidden from lists).
--
-- issue_fingerprints: which issue a fingerprint belongs to; a merge moves
-- fingerprints, so later events of a merged issue land in the target.
--
-- issue_counts_hourly: events per issue and hour (hour_ns = unix ns rounded
-- down to the hour); daily counts are sums of these.
--
-- releases: the first time each release (service.version) was seen, which
-- orders releases for regression ("newer" = first seen later).
ALTER TABLE projects
    ADD COLUMN error_logs_as_events boolean NOT NULL DEFAULT true,
    ADD COLUMN inapp_include text[] NOT NULL DEFAULT '{}',
    ADD COLUMN inapp_exclude text[] NOT NULL DEFAULT '{}';

CREATE TABLE issues (
    id                   bigserial PRIMARY KEY,
    project_id           integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    short_seq            integer NOT NULL,
    grouping_version     text NOT NULL,
    grouping_rule        text NOT NULL CHECK (grouping_rule IN ('fingerprint', 'in_app_frames', 'message')),
    title                text NOT NULL,
    type                 text NOT NULL DEFAULT '',
    message              text NOT NULL DEFAULT '',
    culprit              text NOT NULL DEFAULT '',
    level                text NOT NULL DEFAULT 'error',
    service              text NOT NULL DEFAULT '',
    status               text NOT NULL DEFAULT 'unresolved' CHECK (status IN ('unresolved', 'resolved', 'ignored')),
    substatus            text NOT NULL DEFAULT 'new' CHECK (substatus IN (
                             'new', 'ongoing', 'regressed', 'escalating',
                             'resolved', 'resolved_in_next_release',
                             'ignored_forever', 'ignored_until_count', 'ignored_until_time')),
    first_seen_ns        bigint NOT NULL,
    last_seen_ns         bigint NOT NULL,
    event_count          bigint NOT NULL DEFAULT 0,
    user_count           bigint NOT NULL DEFAULT 0,
    first_release        text,
    last_release         text,
    resolved_at          timestamptz,
    resolved_in_release  text,
    ignore_until_count   bigint,
    ignore_until_ns      bigint,
    merged_into          bigint REFERENCES issues (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, short_seq)
);
CREATE INDEX issues_last_seen ON issues (project_id, last_seen_ns DESC, id DESC) WHERE merged_into IS NULL;
CREATE INDEX issues_first_seen ON issues (project_id, first_seen_ns DESC, id DESC) WHERE merged_into IS NULL;

-- The next short_seq of each project (row-locked by the writer that takes one).
CREATE TABLE issue_seq (
    project_id  integer PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    last_seq    integer NOT NULL DEFAULT 0
);

CREATE TABLE issue_fingerprints (
    project_id        integer NOT NULL,
    fingerprint       bytea NOT NULL CHECK (length(fingerprint) = 16),
    issue_id          bigint NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    grouping_version  text NOT NULL,
    PRIMARY KEY (project_id, fingerprint)
);
CREATE INDEX issue_fingerprints_issue ON issue_fingerprints (issue_id);

CREATE TABLE error_events (
    project_id    integer NOT NULL,
    time_ns       bigint NOT NULL,
    event_id      bytea NOT NULL CHECK (length(event_id) = 16),
    issue_id      bigint NOT NULL,
    fingerprint   bytea NOT NULL,
    source        text NOT NULL CHECK (source IN ('span', 'log')),
    level         text NOT NULL DEFAULT 'error',
    service       text NOT NULL DEFAULT '',
    release       text,
    environment   text,
    trace_id      bytea CHECK (trace_id IS NULL OR length(trace_id) = 16),
    span_id       bytea CHECK (span_id IS NULL OR length(span_id) = 8),
    type          text NOT NULL DEFAULT '',
    message       text NOT NULL DEFAULT '',
    stacktrace    text,
    lang          text NOT NULL DEFAULT 'unknown',
    frames        json NOT NULL DEFAULT '[]',
    handled       boolean,
    user_id       text,
    route         text,
    url           text,
    user_agent    text,
    attributes    json NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (time_ns);
CREATE INDEX error_events_issue ON error_events (project_id, issue_id, time_ns DESC);
CREATE INDEX error_events_recent ON error_events (project_id, time_ns DESC);

CREATE FUNCTION sextant_ensure_error_event_partition(ts bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    day_start bigint := (ts / 86400000000000) * 86400000000000;
    part text;
BEGIN
    IF ts < 0 THEN
        day_start := ((ts - 86399999999999) / 86400000000000) * 86400000000000;
    END IF;
    part := 'error_events_' || to_char(to_timestamp(day_start / 1e9) AT TIME ZONE 'UTC', 'YYYYMMDD');
    IF to_regclass(part) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF error_events FOR VALUES FROM (%s) TO (%s)',
                           part, day_start, day_start + 86400000000000);
        EXCEPTION WHEN duplicate_table THEN
            NULL; -- another instance made it first
        END;
    END IF;
    RETURN part;
END $$;

CREATE TABLE issue_counts_hourly (
    project_id  integer NOT NULL,
    issue_id    bigint NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    hour_ns     bigint NOT NULL,
    events      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, issue_id, hour_ns)
);
CREATE INDEX issue_counts_hourly_time ON issue_counts_hourly (project_id, hour_ns);

CREATE TABLE releases (
    project_id     integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version        text NOT NULL,
    first_seen_ns  bigint NOT NULL,
    PRIMARY KEY (project_id, version)
);

-- Second wall, as for every tenant table.
ALTER TABLE issues ENABLE ROW LEVEL SECURITY;
ALTER TABLE issue_fingerprints ENABLE ROW LEVEL SECURITY;
ALTER TABLE error_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE issue_counts_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE releases ENABLE ROW LEVEL SECURITY;
CREATE POLICY issues_by_project ON issues FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY issue_fingerprints_by_project ON issue_fingerprints FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY error_events_by_project ON error_events FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY issue_counts_hourly_by_project ON issue_counts_hourly FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY releases_by_project ON releases FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON issues, issue_fingerprints, error_events, issue_counts_hourly, releases TO sextant_reader;
