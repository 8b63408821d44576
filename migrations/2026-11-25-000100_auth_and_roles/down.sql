DROP TABLE password_reset_tokens;
DROP TABLE email_verification_tokens;
DROP TABLE auth_keys;
DROP TABLE auth_sessions;
DROP TABLE users;
DROP TABLE roles;
