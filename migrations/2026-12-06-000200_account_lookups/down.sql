DROP INDEX users_username_idx;
DROP INDEX users_lower_email_idx;
