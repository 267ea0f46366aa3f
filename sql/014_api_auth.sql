-- 014_api_auth.sql: what sextant-api's login role needs to authenticate users, before it switches to sextant_reader.
--
-- Why a migration (013's tables are unchanged): a user's request is
-- authenticated before its RLS transaction starts, as the API's login role
-- itself. That role is a member of sextant_reader, so the SELECT policies of
-- 013 (project_members and audit_log visible for sextant.project_ids only)
-- would hide the very rows login needs (a user's memberships) and forbid the
-- audit rows it writes. sextant_auth is the role for that phase:
--   SELECT users (password hashes), project_members and projects (every row:
--     the API resolves {project} among the user's memberships itself);
--   sessions: SELECT, INSERT, UPDATE of last_seen_at/revoked_at;
--   access_tokens: INSERT (personal tokens), UPDATE of last_used_at/revoked_at;
--   audit_log: INSERT.
-- Inside the request transaction the role is sextant_reader (or
-- sextant_issue_writer), which is not a member of sextant_auth, so these
-- policies do not apply there. Production: GRANT sextant_auth TO <api role>
-- (README, "Deploying"). The local stack connects as the owner.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sextant_auth') THEN
        CREATE ROLE sextant_auth NOLOGIN;
    END IF;
END $$;

GRANT SELECT ON users, project_members, projects TO sextant_auth;
GRANT SELECT, INSERT ON sessions TO sextant_auth;
GRANT UPDATE (last_seen_at, revoked_at) ON sessions TO sextant_auth;
GRANT SELECT, INSERT ON access_tokens TO sextant_auth;
GRANT UPDATE (last_used_at, revoked_at) ON access_tokens TO sextant_auth;
GRANT INSERT ON audit_log TO sextant_auth;
GRANT UPDATE (password_hash) ON users TO sextant_auth;  -- rehash on login when the parameters changed

CREATE POLICY project_members_auth ON project_members FOR SELECT TO sextant_auth USING (true);
CREATE POLICY projects_auth ON projects FOR SELECT TO sextant_auth USING (true);
CREATE POLICY audit_log_auth_insert ON audit_log FOR INSERT TO sextant_auth WITH CHECK (true);
