-- 017_dashboards.sql: custom dashboards of a project (panels as jsonb), written by the JSON API under row-level security.
--
-- dashboards: one row per saved dashboard. panels is the JSON array the API
-- validated and normalized (fcgi/api_dashboards.c: at most 50 panels, each
-- {id, title, type, query, layout}); the server stores it and never runs it.
-- version starts at 1 and grows by one with every PUT, which must name the
-- version it read (optimistic locking: 409 version_conflict otherwise).
-- created_by / updated_by are the actor as the audit log names it (the
-- user's email, else "token:<id>"); *_user the user's id while it exists.
--
-- Reads run as sextant_reader (SELECT policy on sextant.project_ids, as for
-- every tenant table); writes (POST, PUT, DELETE .../dashboards) run as
-- sextant_project_writer (sql/015), which the API's login role already
-- holds, limited by policies to the request's project; its audit_log INSERT
-- policy is 015's.
CREATE TABLE dashboards (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id       integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    panels           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(panels) = 'array'),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    updated_by       text NOT NULL,
    created_by_user  integer REFERENCES users (id) ON DELETE SET NULL,
    updated_by_user  integer REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX dashboards_project ON dashboards (project_id, id);

ALTER TABLE dashboards ENABLE ROW LEVEL SECURITY;
CREATE POLICY dashboards_by_project ON dashboards FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON dashboards TO sextant_reader;

GRANT INSERT (project_id, name, description, panels, created_by, updated_by, created_by_user, updated_by_user),
      DELETE ON dashboards TO sextant_project_writer;
GRANT UPDATE (name, description, panels, version, updated_at, updated_by, updated_by_user)
    ON dashboards TO sextant_project_writer;
CREATE POLICY dashboards_insert ON dashboards FOR INSERT TO sextant_project_writer
    WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY dashboards_update ON dashboards FOR UPDATE TO sextant_project_writer
    USING (project_id = ANY (sextant_visible_projects())) WITH CHECK (project_id = ANY (sextant_visible_projects()));
CREATE POLICY dashboards_delete ON dashboards FOR DELETE TO sextant_project_writer
    USING (project_id = ANY (sextant_visible_projects()));
