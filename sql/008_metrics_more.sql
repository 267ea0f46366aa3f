-- 008_metrics_more.sql: exponential histograms and summaries in the minute rows, the 1-hour table and raw points (sextant-rollup).
--
-- metric_points_1m gains:
--   last_ns             time of the newest point the row holds: `last` and the
--                       summary quantiles are replaced only by a point at least
--                       as new (entries may arrive out of order)
--   exp_scale, exp_zero, exp_pos_offset, exp_pos, exp_neg_offset, exp_neg
--                       exponential histograms: the delta buckets of the row at
--                       one scale (bucket exp_pos_offset + i holds
--                       (base^(off+i), base^(off+i+1)], base = 2^(2^-scale);
--                       negative values mirrored), at most 160 per side
--                       (lib/rollup_math.h SX_ROLLUP_EXP_MAX): points and merges
--                       that need more are downscaled, never dropped
--   q_quantiles, q_values
--                       summaries: the quantiles of the newest point (count and
--                       sum are deltas like a cumulative sum's)
--
-- metric_points_1h: the same columns, one row per series and hour. sextant-rollup
-- upserts the same per-entry deltas into it in the entry's transaction (adding
-- counts, sums and buckets, LEAST/GREATEST for min/max), so it always equals the
-- sum of the hour's 1-minute rows and stays exactly-once with no extra job.
--
-- metric_points_raw: every data point as rolled up (count/sum are the point's
-- delta: 1 and the value or its delta for numbers, the measurements for
-- histograms and summaries; min/max/last the reported value for numbers, the
-- point's min/max for histograms). Kept metrics_raw_retention_s seconds of point
-- time: sextant-rollup deletes older rows in small batches.
ALTER TABLE metric_points_1m
    ADD COLUMN last_ns bigint,
    ADD COLUMN exp_scale integer,
    ADD COLUMN exp_zero bigint,
    ADD COLUMN exp_pos_offset integer,
    ADD COLUMN exp_pos bigint[],
    ADD COLUMN exp_neg_offset integer,
    ADD COLUMN exp_neg bigint[],
    ADD COLUMN q_quantiles double precision[],
    ADD COLUMN q_values double precision[];

-- The query API reads a metric's series by id and time with only the aggregated
-- columns: this covering index lets that be an index-only scan (24 h x 100 series
-- = 144,000 rows). It costs the 1-minute upserts their HOT updates (the included
-- columns change), measured acceptable against one upsert per series and minute.
CREATE INDEX metric_points_1m_cover ON metric_points_1m (project_id, series_id, bucket_start_ns)
    INCLUDE (count, sum, min, max, last);

CREATE TABLE metric_points_1h (
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
    last_ns          bigint,
    exp_scale        integer,
    exp_zero         bigint,
    exp_pos_offset   integer,
    exp_pos          bigint[],
    exp_neg_offset   integer,
    exp_neg          bigint[],
    q_quantiles      double precision[],
    q_values         double precision[],
    PRIMARY KEY (project_id, series_id, bucket_start_ns)
);
CREATE INDEX metric_points_1h_time ON metric_points_1h (project_id, bucket_start_ns);

CREATE TABLE metric_points_raw (
    project_id  integer NOT NULL,
    series_id   bigint NOT NULL REFERENCES metric_series (id) ON DELETE CASCADE,
    time_ns     bigint NOT NULL,
    count       bigint NOT NULL,
    sum         double precision NOT NULL,
    min         double precision,
    max         double precision,
    last        double precision
);
CREATE INDEX metric_points_raw_series ON metric_points_raw (project_id, series_id, time_ns);
CREATE INDEX metric_points_raw_time ON metric_points_raw (time_ns);

ALTER TABLE metric_points_1h ENABLE ROW LEVEL SECURITY;
ALTER TABLE metric_points_raw ENABLE ROW LEVEL SECURITY;
CREATE POLICY metric_points_1h_by_project ON metric_points_1h FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY metric_points_raw_by_project ON metric_points_raw FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON metric_points_1h, metric_points_raw TO sextant_reader;
