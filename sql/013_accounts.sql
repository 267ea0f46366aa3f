-- 013_accounts.sql: users, sessions, personal tokens, project members and roles, the audit log, and per-project ingest settings.
--
-- users: email (unique, case-insensitive), name, password_hash (a libsodium
-- crypto_pwhash string: Argon2id, its parameters inside), is_admin (instance
-- admin). disabled_at set: the user can neither log in nor use tokens.
--
-- sessions: dashboard sessions. Only the SHA-256 of the session token (the
-- HttpOnly cookie) is stored, with the CSRF token the dashboard echoes in a
-- header on state-changing requests (random, not secret from the page, bound
-- to the session), expiry, last use and where it came from.
--
-- access_tokens (001) gains user_id: a personal access token (project_id NULL,
-- user_id set) acts as its user, with the user's roles; a project token
-- (project_id set, user_id NULL) reads its project as before.
--
-- project_members: role owner | admin | member | viewer per (project, user).
-- What each role may do is the README's table; instance admins may do
-- everything everywhere.
--
-- audit_log: administrative actions: who (user and/or token, or 'sextantctl'),
-- what (action, target, details), when, from where (ip, user agent), and the
-- project when the action concerns one.
--
-- Project ingest settings (enforced by sextant-ingest and sextant-persist;
-- NULL means no limit):
--   retention_*_days          how long each signal is kept (sextantctl maintain)
--   sampling_rate             0..1: share of traces kept, decided by trace id so
--                             a trace is kept or dropped whole; spans with
--                             errors are always kept, and spans of traces
--                             slower than slow_trace_ms (0: off)
--   rate_*_per_s              token-bucket rate limits per signal (429)
--   quota_*_daily             items per UTC day per signal
--   storage_quota_bytes       storage the project may use
--   attribute_rules           JSON array of rules applied to attributes at
--                             ingest (drop keys, truncate values, redact
--                             patterns); the format is in the README
--   redact_secrets            the built-in redaction of well-known secrets
--                             (passwords, authorization headers, tokens, card
--                             numbers), on by default
CREATE TABLE users (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'),
    name           text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    password_hash  text NOT NULL,
    is_admin       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE sessions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    ip            text,
    user_agent    text
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

ALTER TABLE access_tokens
    ADD COLUMN user_id integer REFERENCES users (id) ON DELETE CASCADE,
    ADD CONSTRAINT access_tokens_owner CHECK (project_id IS NULL OR user_id IS NULL);
CREATE INDEX access_tokens_user ON access_tokens (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE project_members (
    project_id  integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);

CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    project_id     integer REFERENCES projects (id) ON DELETE SET NULL,
    actor_user_id  integer REFERENCES users (id) ON DELETE SET NULL,
    actor_token_id integer REFERENCES access_tokens (id) ON DELETE SET NULL,
    actor          text NOT NULL,
    action         text NOT NULL,
    target         text,
    details        json NOT NULL DEFAULT '{}',
    ip             text,
    user_agent     text
);
CREATE INDEX audit_log_project ON audit_log (project_id, at DESC) WHERE project_id IS NOT NULL;
CREATE INDEX audit_log_at ON audit_log (at DESC);

ALTER TABLE projects
    ADD COLUMN retention_traces_days   integer NOT NULL DEFAULT 14 CHECK (retention_traces_days BETWEEN 1 AND 3650),
    ADD COLUMN retention_logs_days     integer NOT NULL DEFAULT 14 CHECK (retention_logs_days BETWEEN 1 AND 3650),
    ADD COLUMN retention_metrics_days  integer NOT NULL DEFAULT 90 CHECK (retention_metrics_days BETWEEN 1 AND 3650),
    ADD COLUMN sampling_rate           double precision NOT NULL DEFAULT 1 CHECK (sampling_rate >= 0 AND sampling_rate <= 1),
    ADD COLUMN slow_trace_ms           integer NOT NULL DEFAULT 0 CHECK (slow_trace_ms >= 0),
    ADD COLUMN rate_spans_per_s        integer CHECK (rate_spans_per_s > 0),
    ADD COLUMN rate_logs_per_s         integer CHECK (rate_logs_per_s > 0),
    ADD COLUMN rate_metric_points_per_s integer CHECK (rate_metric_points_per_s > 0),
    ADD COLUMN quota_spans_daily       bigint CHECK (quota_spans_daily >= 0),
    ADD COLUMN quota_logs_daily        bigint CHECK (quota_logs_daily >= 0),
    ADD COLUMN quota_metric_points_daily bigint CHECK (quota_metric_points_daily >= 0),
    ADD COLUMN storage_quota_bytes     bigint CHECK (storage_quota_bytes >= 0),
    ADD COLUMN attribute_rules         json NOT NULL DEFAULT '[]',
    ADD COLUMN redact_secrets          boolean NOT NULL DEFAULT true,
    ADD COLUMN settings_version        bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at              timestamptz NOT NULL DEFAULT now();

-- Second wall: the API reads members and the audit log of the request's
-- projects only.
ALTER TABLE project_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY project_members_by_project ON project_members FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
CREATE POLICY audit_log_by_project ON audit_log FOR SELECT TO sextant_reader
    USING (project_id = ANY (sextant_visible_projects()));
GRANT SELECT ON project_members, audit_log TO sextant_reader;
