-- 006_metrics.sql: metric series and their one-minute rollups (sextant-rollup), with row-level security.
--
-- metric_series: one row per (project, metric name, attribute set). attributes
-- is a flat JSON object: the data point's attributes under their own keys and
-- the resource's under "resource.<key>" (scalars as JSON scalars, arrays and
-- maps as their JSON text). attrs_hash is the first 16 bytes of SHA-256 over
-- that JSON text as sextant-rollup writes it (workers/rollup.c), so a series
-- is found again without comparing documents.
--
-- metric_points_1m: what the points of one series added up to in one minute
-- (bucket_start_ns = unix ns rounded down to the minute). For sums, sum is
-- the total of the deltas (cumulative points are turned into deltas by
-- sextant-rollup against the series' previous cumulative value), count the
-- number of points, last the last reported value. For gauges sum/count/min/
-- max/last are over the reported values. For histograms count/sum/min/max
-- are over the recorded measurements (deltas too), bucket_counts the
-- per-bucket delta counts and bounds the explicit bounds (len(bounds) + 1
-- buckets). Rows are upserted, adding to what the minute already holds; a
-- stream entry is applied once through persist_ledger (002, stream
-- "metrics"), in the same transaction as its points.
--
-- Not partitioned yet: one row per series and minute is small; retention by
-- partition comes with the retention work.
CREATE TABLE metric_series (
    id           bigserial PRIMARY KEY,
    project_id   integer NOT NULL,
    name         text NOT NULL,
    type         text NOT NULL CHECK (type IN ('gauge', 'sum', 'histogram', 'exp_histogram', 'summary')),
    unit         text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    temporality  text NOT NULL DEFAULT 'unspecified' CHECK (temporality IN ('unspecified', 'delta', 'cumulative')),
    monotonic    boolean NOT NULL DEFAULT false,
    attributes   json NOT NULL DEFAULT '{}',
    attrs_hash   bytea NOT NULL CHECK (length(attrs_hash) = 16),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name, attrs_hash)
);

CREATE TABLE metric_points_1m (
    project_id       integer NOT NULL,
    series_id        bigint NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
    bucket_start_ns  bigint NOT NULL,
    count            bigint NOT NULL DEFAULT 0,
    sum              double precision NOT NULL DEFAULT 0,
    min              double precision,
    max              double precision,
    last             double precision,
    bucket_counts    bigint[],
    bounds           double precision[],
    PRIMARY KEY (project_id, series_id, bucket_start_ns)
);
CREATE INDEX metric_points_1m_time ON metric_points_1m (project_id, bucket_start_ns);

-- Second wall, as for spans (001) and logs (004).
ALTER TABLE metric_series ENABLE ROW LEVEL SECURITY;
ALTER TABLE metric_points_1m ENABLE ROW LEVEL SECURITY;
CREATE POLICY metric_series_by_project ON metric_series FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY metric_points_1m_by_project ON metric_points_1m FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON metric_series, metric_points_1m TO sextant_reader;
