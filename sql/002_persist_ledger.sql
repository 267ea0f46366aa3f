-- 002_persist_ledger.sql: idempotent span writes by a ledger of applied stream entries.
--
-- sextant-persist writes each batch in one transaction that first inserts one
-- ledger row per stream entry (INSERT ... ON CONFLICT DO NOTHING RETURNING):
-- only the entries it returns are new, and only their spans are copied into
-- `spans` and counted into `traces`. An entry delivered again (a crash after
-- COMMIT and before XACK, XAUTOCLAIM by another instance, two instances at
-- once) finds its row and adds nothing. Two instances inserting the same key
-- at once: the second waits for the first's transaction, then skips the entry
-- (or writes it, when the first rolled back).
--
-- The key is not the Redis entry id but entry_hash: the first 16 bytes of
-- SHA-256 over the entry's project id and packed body, so the same batch
-- added to the stream again (re-XADD by hand, an SDK resending a request
-- whose answer it lost, when ingest normalizes it to the same bytes) is
-- recognized too. entry_id is the id of the entry that applied it (for
-- operators).
--
-- Bound: rows are pruned when older than 7 days (sextant-persist, once an
-- hour). An entry is delivered again only while it is pending (never after
-- its XACK), so the ledger protects any entry left pending for up to 7 days
-- after its COMMIT. Size: about 150 bytes (heap and indexes) per stream entry,
-- i.e. per ingest request and project; a few per mille of the spans it guards.
CREATE TABLE persist_ledger (
    stream      text NOT NULL,
    entry_hash  bytea NOT NULL CHECK (length(entry_hash) = 16),
    entry_id    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, entry_hash)
);
CREATE INDEX persist_ledger_applied ON persist_ledger (applied_at);
