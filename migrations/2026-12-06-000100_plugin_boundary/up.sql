-- What PostgreSQL enforces around plugin roles, beside their own login (a plugin's migrations
-- run on a session logged in as the plugin's role; see src/plugins/login.rs).

-- The core's own functions in `public` (the queue's, partition upkeep, diesel's helpers) are
-- the core's to call: PostgreSQL lets every role execute a new function. Their owner, the
-- core's role, keeps the right; functions the core creates later start without it as well.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                              AND d.deptype = 'e')
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
-- plugin_api's function is part of what plugins may use.
GRANT EXECUTE ON FUNCTION plugin_api.current_user_id() TO PUBLIC;

-- A plugin's migrations are recorded from its own session, in the migration's transaction:
-- plugin roles are granted INSERT (when provisioned), and may add rows of their own plugin
-- only. The core owns the table and is not subject to these rules.
ALTER TABLE __plugin_migrations ENABLE ROW LEVEL SECURITY;
CREATE POLICY plugin_adds_its_own_rows ON __plugin_migrations FOR INSERT
    WITH CHECK ('plugin_' || replace(plugin_id, '-', '_') = current_user);

-- The user a plugin transaction acts for is set by the core's handle, on the core's login. A
-- session logged in as a plugin role (its migrations) acts for nobody, whatever it sets: it
-- could otherwise name any user and read that user's profile and teams into its tables.
-- A plugin role is recognised by the mark DeployStack puts on it (src/plugins/provision.rs).
CREATE OR REPLACE FUNCTION plugin_api.current_user_id() RETURNS text
    LANGUAGE sql STABLE
    AS $$
        SELECT CASE
            WHEN pg_catalog.shobj_description(
                     (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = session_user),
                     'pg_authid')
                 = 'DeployStack plugin role: logs in only for its plugin''s migrations'
            THEN NULL
            ELSE nullif(pg_catalog.current_setting('deploystack.user_id', true), '')
        END
    $$;
