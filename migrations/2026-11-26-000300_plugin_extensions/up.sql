-- Plugin database extensions: every plugin gets a schema of its own (`plugin_<id>`, hyphens
-- mapped to underscores), owned by a role of its own; its migrations are tracked here.

-- Only the database owner creates objects in `public` (PostgreSQL 15's default, made explicit
-- for databases created from older templates): a plugin role must not be able to put a table
-- there.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Upstream tracked one hash per plugin table in a table of the same name; such a table is kept
-- under another name, untouched.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_schema = 'public' AND table_name = '__plugin_migrations'
                  AND column_name = 'table_name') THEN
        ALTER TABLE public.__plugin_migrations RENAME TO __plugin_migrations_upstream;
    END IF;
END
$$;

-- One row per applied plugin migration; the checksum is the SHA-256 of its SQL text.
CREATE TABLE __plugin_migrations (
    plugin_id text NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plugin_id, version)
);

-- What plugins may read of the core: the user a plugin transaction acts for, and that user's
-- teams. The views run with their owner's rights, so plugin roles need no right on `users`,
-- `teams` or `team_memberships`; each plugin role is granted this schema when it is created.
CREATE SCHEMA plugin_api;
REVOKE ALL ON SCHEMA plugin_api FROM PUBLIC;

CREATE FUNCTION plugin_api.current_user_id() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('deploystack.user_id', true), '') $$;

CREATE VIEW plugin_api.current_user_profile WITH (security_barrier) AS
    SELECT u.id, u.username
      FROM public.users u
     WHERE u.id = plugin_api.current_user_id();

CREATE VIEW plugin_api.current_user_teams WITH (security_barrier) AS
    SELECT t.id AS team_id, t.name, t.slug, m.role
      FROM public.teams t
      JOIN public.team_memberships m ON m.team_id = t.id
     WHERE m.user_id = plugin_api.current_user_id();
