-- 019_sse_role.sql: the group role of sextant-sse's own PostgreSQL login: only what authenticating a stream needs.
--
-- sextant-sse (fcgi/sse.c) reads PostgreSQL only to authenticate a stream
-- (lib/auth.c: tokens, sessions, memberships, the project by slug or id) and
-- to check it again every sse_reauth_s; it reads no telemetry from it. Its
-- login (sse_pg_conninfo, e.g. user=sextant_sse) is a member of this role:
--   CREATE ROLE sextant_sse LOGIN IN ROLE sextant_sse_role;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sextant_sse_role') THEN
        CREATE ROLE sextant_sse_role NOLOGIN;
    END IF;
END $$;

GRANT sextant_auth TO sextant_sse_role;
