-- 005_spans_json.sql: span attributes, events, links and resource become json (text checked as JSON) instead of jsonb.
--
-- sextant-persist writes these columns already as compact JSON objects and
-- arrays (lib/spanrow.h), and the API only returns them as text or reads one
-- key with ->>, which json supports (with duplicate keys, ->> on json gives
-- the last one, as jsonb keeps it). jsonb's input parsing and conversion was
-- about half of the COPY cost of a span row; json only validates the text:
-- on this machine 100,000 span rows took 0.90 s of backend CPU as json
-- against 1.06-1.32 s as jsonb. The API now returns the stored text as
-- written (no spaces, keys in the order sent) rather than jsonb's
-- normalized form.
--
-- On an existing database this rewrites every spans partition inside the
-- migration's transaction.
ALTER TABLE spans
    ALTER COLUMN attributes DROP DEFAULT,
    ALTER COLUMN resource DROP DEFAULT;
ALTER TABLE spans
    ALTER COLUMN attributes TYPE json USING attributes::json,
    ALTER COLUMN events TYPE json USING events::json,
    ALTER COLUMN links TYPE json USING links::json,
    ALTER COLUMN resource TYPE json USING resource::json;
ALTER TABLE spans
    ALTER COLUMN attributes SET DEFAULT '{}'::json,
    ALTER COLUMN resource SET DEFAULT '{}'::json;
