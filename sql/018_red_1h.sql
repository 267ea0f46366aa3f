-- 018_red_1h.sql: red_1m added up by hour, written by sextant-rollup in the same transaction, so a day of API performance reads 60x fewer rows.
--
-- red_1h has red_1m's columns (007); bucket_start_ns is the hour's start
-- (unix ns, a multiple of 3600e9). Every batch's minute rows are added into
-- their hours by the same upsert transaction that writes them, so a query may
-- take whole hours from red_1h and the minutes around them from red_1m and
-- get exactly what red_1m alone would give (fcgi/api_perf.c,
-- sx_api_red_source). The hours are filled from what red_1m holds now.
CREATE TABLE red_1h (LIKE red_1m INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE red_1h ADD PRIMARY KEY (project_id, service, operation, kind, bucket_start_ns);
CREATE INDEX red_1h_time ON red_1h (project_id, bucket_start_ns);

INSERT INTO red_1h
SELECT m.project_id, m.service, m.operation, m.kind, m.h, m.requests, m.errors, m.s2xx, m.s3xx, m.s4xx, m.s5xx,
       m.dur_sum_ms, m.dur_min_ms, m.dur_max_ms, b.dur_buckets
FROM (SELECT project_id, service, operation, kind, bucket_start_ns - bucket_start_ns % 3600000000000 AS h,
             sum(requests) AS requests, sum(errors) AS errors, sum(s2xx) AS s2xx, sum(s3xx) AS s3xx,
             sum(s4xx) AS s4xx, sum(s5xx) AS s5xx, sum(dur_sum_ms) AS dur_sum_ms, min(dur_min_ms) AS dur_min_ms,
             max(dur_max_ms) AS dur_max_ms
      FROM red_1m GROUP BY 1, 2, 3, 4, 5) m
JOIN (SELECT project_id, service, operation, kind, h, array_agg(v ORDER BY o) AS dur_buckets
      FROM (SELECT r.project_id, r.service, r.operation, r.kind,
                   r.bucket_start_ns - r.bucket_start_ns % 3600000000000 AS h, u.o, sum(u.v) AS v
            FROM red_1m r, unnest(r.dur_buckets) WITH ORDINALITY AS u(v, o)
            GROUP BY 1, 2, 3, 4, 5, 6) per_bucket
      GROUP BY 1, 2, 3, 4, 5) b USING (project_id, service, operation, kind, h);

-- Second wall, as for red_1m (007); the writer and reader grants of 016.
ALTER TABLE red_1h ENABLE ROW LEVEL SECURITY;
CREATE POLICY red_1h_by_project ON red_1h FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON red_1h TO sextant_reader;
GRANT SELECT, INSERT, UPDATE ON red_1h TO sextant_rollup_role;
