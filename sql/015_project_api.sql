-- 015_project_api.sql: what the JSON API may change on projects, members, ingest keys and the audit log, through its own role under row-level security.
--
-- The project administration routes of sextant-api (PUT/DELETE
-- /projects/{p}, members, keys) run in a read-write transaction as
-- sextant_project_writer, a member of sextant_reader (it reads what a reader
-- reads, under the same SELECT policies) that may additionally:
--   projects         UPDATE the name and the settings columns, DELETE;
--   project_members  INSERT, UPDATE role, DELETE;
--   ingest_keys      SELECT, INSERT, UPDATE revoked_at;
--   audit_log        INSERT;
-- every one limited by a policy to the request's projects
-- (sextant.project_ids). The API still checks the caller's role first; RLS
-- is the second wall.
--
-- Creating a project cannot be limited to existing ids, so POST /projects
-- calls sextant_create_project(name, slug, owner), a SECURITY DEFINER
-- function owned by the tables' owner: it inserts the project and the
-- owner's membership and nothing else. EXECUTE is granted to sextant_auth
-- (the API's login-phase role, sql/014). GET /api/v1/audit (instance
-- admins) reads audit_log as sextant_auth.
-- Production: GRANT sextant_reader, sextant_issue_writer,
-- sextant_project_writer, sextant_auth TO <api role>.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sextant_project_writer') THEN
        CREATE ROLE sextant_project_writer NOLOGIN;
    END IF;
END $$;
GRANT sextant_reader TO sextant_project_writer;

GRANT UPDATE (name, status, retention_traces_days, retention_logs_days, retention_metrics_days, sampling_rate,
              slow_trace_ms, rate_spans_per_s, rate_logs_per_s, rate_metric_points_per_s, quota_spans_daily,
              quota_logs_daily, quota_metric_points_daily, storage_quota_bytes, attribute_rules, redact_secrets,
              settings_version, updated_at)
    ON projects TO sextant_project_writer;
GRANT DELETE ON projects TO sextant_project_writer;
GRANT INSERT, DELETE ON project_members TO sextant_project_writer;
GRANT UPDATE (role) ON project_members TO sextant_project_writer;
GRANT SELECT, INSERT ON ingest_keys TO sextant_project_writer;
GRANT UPDATE (revoked_at) ON ingest_keys TO sextant_project_writer;
GRANT SELECT ON ingest_keys TO sextant_reader;
GRANT INSERT ON audit_log TO sextant_project_writer;
GRANT SELECT ON users TO sextant_project_writer;  -- members: find a user by email, list names

CREATE POLICY projects_write ON projects FOR UPDATE TO sextant_project_writer
    USING (id = ANY (sextant_visible_projects())) WITH CHECK (id = ANY (sextant_visible_projects()));
CREATE POLICY projects_delete ON projects FOR DELETE TO sextant_project_writer
    USING (id = ANY (sextant_visible_projects()));
CREATE POLICY project_members_insert ON project_members FOR INSERT TO sextant_project_writer
    WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY project_members_update ON project_members FOR UPDATE TO sextant_project_writer
    USING (project_id = ANY (sextant_visible_projects())) WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY project_members_delete ON project_members FOR DELETE TO sextant_project_writer
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY audit_log_project_insert ON audit_log FOR INSERT TO sextant_project_writer
    WITH CHECK (project_id = ANY (sextant_visible_projects()));

-- ingest_keys gets row-level security for the API's roles only. sextant-ingest
-- and sextantctl connect as the owner (RLS does not apply to it); a
-- deployment that gives ingest its own role must add a SELECT policy for it.
ALTER TABLE ingest_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY ingest_keys_by_project ON ingest_keys FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY ingest_keys_insert ON ingest_keys FOR INSERT TO sextant_project_writer
    WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY ingest_keys_update ON ingest_keys FOR UPDATE TO sextant_project_writer
    USING (project_id = ANY (sextant_visible_projects())) WITH CHECK (project_id = ANY (sextant_visible_projects()));

GRANT SELECT ON audit_log TO sextant_auth;
CREATE POLICY audit_log_auth_select ON audit_log FOR SELECT TO sextant_auth USING (true);

-- Creates a project named p_name with slug p_slug (or one made from the
-- name, with -2, -3... when taken) and makes p_owner its owner. Returns the
-- new id, or NULL when an explicit p_slug is taken.
CREATE FUNCTION sextant_create_project(p_name text, p_slug text, p_owner integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    base text;
    s text;
    pid integer;
BEGIN
    IF p_slug IS NOT NULL THEN
        INSERT INTO projects (slug, name) VALUES (p_slug, p_name) ON CONFLICT (slug) DO NOTHING RETURNING id INTO pid;
        IF pid IS NULL THEN RETURN NULL; END IF;
    ELSE
        base := left(trim(both '-' from regexp_replace(lower(p_name), '[^a-z0-9]+', '-', 'g')), 56);
        base := trim(both '-' from base);
        IF base = '' THEN base := 'project'; END IF;
        FOR n IN 1..100 LOOP
            s := CASE WHEN n = 1 THEN base ELSE base || '-' || n END;
            INSERT INTO projects (slug, name) VALUES (s, p_name) ON CONFLICT (slug) DO NOTHING RETURNING id INTO pid;
            EXIT WHEN pid IS NOT NULL;
        END LOOP;
        IF pid IS NULL THEN RETURN NULL; END IF;
    END IF;
    INSERT INTO project_members (project_id, user_id, role) VALUES (pid, p_owner, 'owner');
    RETURN pid;
END $$;
REVOKE ALL ON FUNCTION sextant_create_project(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sextant_create_project(text, text, integer) TO sextant_auth;
