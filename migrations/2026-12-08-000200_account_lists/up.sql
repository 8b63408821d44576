-- Administration lists page and search in SQL (upstream loaded every row): pages are read
-- in creation order, and a search for text a username, email address or team name holds
-- is answered from trigram indexes, so a first page costs the same at 100,000 accounts as
-- at 100. pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create
-- it. It goes into a schema of its own, so `public` keeps only the core's objects (plugin
-- roles see none of it). Where it cannot be created (another owner, a server without the
-- contrib modules), searches scan the table instead; nothing else depends on it.
CREATE INDEX users_created_idx ON users (created_at, id);
CREATE INDEX teams_created_idx ON teams (created_at, id);

DO $$
BEGIN
    CREATE SCHEMA IF NOT EXISTS text_search;
    CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA text_search;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm is not available (%): account and team searches scan their tables', SQLERRM;
END
$$;

-- Wherever pg_trgm lives (an operator may have installed it before), its operator class.
DO $$
DECLARE
    ops text;
BEGIN
    SELECT format('%I.gin_trgm_ops', n.nspname) INTO ops
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_trgm';
    IF ops IS NOT NULL THEN
        EXECUTE format('CREATE INDEX users_username_trgm_idx ON users USING gin (username %s)', ops);
        EXECUTE format('CREATE INDEX users_email_trgm_idx ON users USING gin (email %s)', ops);
        EXECUTE format('CREATE INDEX teams_name_trgm_idx ON teams USING gin (name %s)', ops);
    END IF;
END
$$;
