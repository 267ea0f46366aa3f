-- 021_metrics_5m.sql: metric_points_5m, the 1-minute rows added up by five minutes, so a day's query at the default 5-minute step reads a fifth of the rows.
--
-- Same columns and meaning as metric_points_1m/1h (008), one row per series
-- and 5 minutes (bucket_start_ns a multiple of 300e9), written by
-- sextant-rollup from the same merged minute rows in the same transaction as
-- the 1m and 1h rows. It starts empty: what is older than this migration is
-- not in it (the minutes' histograms cannot be merged back in SQL), so
-- sextant-api reads it only for windows that start at or after
-- metric_resolutions.since_ns of '5m' (the first 5 minutes that start after the
-- migration) and reads metric_points_1m before that.
CREATE TABLE metric_points_5m (LIKE metric_points_1h INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE metric_points_5m ADD PRIMARY KEY (project_id, series_id, bucket_start_ns);
ALTER TABLE metric_points_5m ADD FOREIGN KEY (series_id) REFERENCES metric_series (id) ON DELETE CASCADE;
-- As for metric_points_1m: the plain aggregations are index-only scans.
CREATE INDEX metric_points_5m_cover ON metric_points_5m (project_id, series_id, bucket_start_ns)
    INCLUDE (count, sum, min, max, last);
CREATE INDEX metric_points_5m_time ON metric_points_5m (project_id, bucket_start_ns);

CREATE TABLE metric_resolutions (
    resolution  text PRIMARY KEY,
    since_ns    bigint NOT NULL
);
INSERT INTO metric_resolutions
VALUES ('5m', ((extract(epoch FROM now())::bigint / 300) + 1) * 300 * 1000000000);

ALTER TABLE metric_points_5m ENABLE ROW LEVEL SECURITY;
CREATE POLICY metric_points_5m_by_project ON metric_points_5m FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON metric_points_5m, metric_resolutions TO sextant_reader;
GRANT SELECT, INSERT, UPDATE ON metric_points_5m TO sextant_rollup_role;
