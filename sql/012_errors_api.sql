-- 012_errors_api.sql: the one place where the JSON API may write: issue triage (status, ignore, merge) through its own role, under row-level security.
--
-- Read requests stay as they were: BEGIN READ ONLY, SET LOCAL ROLE
-- sextant_reader, SELECT policies only. The few write routes of sextant-api
-- (PATCH .../errors, PATCH .../errors/{id}, POST .../errors/merge) open a
-- read-write transaction as sextant_issue_writer instead, a member of
-- sextant_reader (so it reads what a reader reads, under the same SELECT
-- policies) that may additionally change only:
--   issues               the triage and fold columns below, never project_id, ids or titles;
--   issue_fingerprints   issue_id (a merge moves fingerprints);
--   error_events         issue_id (a merge re-points events);
--   issue_counts_hourly  insert/update/delete (a merge folds counts into the target).
-- Each write is limited by a policy to the request's projects
-- (sextant.project_ids), USING for the rows it may touch and WITH CHECK for
-- what they become, so RLS stays the second wall for writes as for reads.
-- The API's login role needs GRANT sextant_issue_writer TO <api role> (as
-- for sextant_reader); sextant-persist and sextantctl connect as the owner.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sextant_issue_writer') THEN
        CREATE ROLE sextant_issue_writer NOLOGIN;
    END IF;
END $$;
GRANT sextant_reader TO sextant_issue_writer;

GRANT UPDATE (status, substatus, resolved_at, resolved_in_release, ignore_until_count, ignore_until_ns,
              merged_into, event_count, user_count, first_seen_ns, last_seen_ns, first_release, last_release,
              updated_at)
    ON issues TO sextant_issue_writer;
GRANT UPDATE (issue_id) ON issue_fingerprints TO sextant_issue_writer;
GRANT UPDATE (issue_id) ON error_events TO sextant_issue_writer;
GRANT INSERT, UPDATE (events), DELETE ON issue_counts_hourly TO sextant_issue_writer;

CREATE POLICY issues_write ON issues FOR UPDATE TO sextant_issue_writer
    USING (project_id = ANY (sextant_visible_projects()))
    WITH CHECK (project_id = ANY (sextant_visible_projects())
                AND (merged_into IS NULL OR merged_into <> id));
CREATE POLICY issue_fingerprints_write ON issue_fingerprints FOR UPDATE TO sextant_issue_writer
    USING (project_id = ANY (sextant_visible_projects()))
    WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY error_events_write ON error_events FOR UPDATE TO sextant_issue_writer
    USING (project_id = ANY (sextant_visible_projects()))
    WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY issue_counts_hourly_insert ON issue_counts_hourly FOR INSERT TO sextant_issue_writer
    WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY issue_counts_hourly_update ON issue_counts_hourly FOR UPDATE TO sextant_issue_writer
    USING (project_id = ANY (sextant_visible_projects()))
    WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY issue_counts_hourly_delete ON issue_counts_hourly FOR DELETE TO sextant_issue_writer
    USING (project_id = ANY (sextant_visible_projects()));

-- The issue list sorted by events or users (lastSeen and firstSeen have
-- their indexes in 010), and the stats' "unresolved" count.
CREATE INDEX issues_events ON issues (project_id, event_count DESC, id DESC) WHERE merged_into IS NULL;
CREATE INDEX issues_users ON issues (project_id, user_count DESC, id DESC) WHERE merged_into IS NULL;
