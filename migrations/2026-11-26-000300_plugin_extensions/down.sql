DROP SCHEMA plugin_api CASCADE;
DROP TABLE __plugin_migrations;
-- REVOKE CREATE ON SCHEMA public is not undone: PostgreSQL 15 has it so by default.
