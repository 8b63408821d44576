DROP INDEX IF EXISTS teams_name_trgm_idx;
DROP INDEX IF EXISTS users_email_trgm_idx;
DROP INDEX IF EXISTS users_username_trgm_idx;
DROP INDEX teams_created_idx;
DROP INDEX users_created_idx;
