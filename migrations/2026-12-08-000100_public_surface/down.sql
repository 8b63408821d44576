DROP INDEX users_username_lower_key;
CREATE INDEX users_username_idx ON users (username);
DROP TABLE first_admin_tokens;
DROP TABLE auth_throttle;
