-- Sign-in finds an account by email address, compared in lower case (upstream stores them
-- lowercased; rows written by other tools may not be), or by username.
CREATE INDEX users_lower_email_idx ON users (lower(email));
CREATE INDEX users_username_idx ON users (username);
