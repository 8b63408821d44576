CREATE OR REPLACE FUNCTION plugin_api.current_user_id() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('deploystack.user_id', true), '') $$;

DROP POLICY plugin_adds_its_own_rows ON __plugin_migrations;
ALTER TABLE __plugin_migrations DISABLE ROW LEVEL SECURITY;

ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
    END LOOP;
END
$$;
