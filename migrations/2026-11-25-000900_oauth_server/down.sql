DROP TABLE oauth_team_consents;
DROP TABLE oauth_refresh_tokens;
DROP TABLE oauth_access_tokens;
DROP TABLE oauth_authorization_codes;
DROP TABLE dynamic_oauth_clients;
DROP TABLE oauth_clients;
