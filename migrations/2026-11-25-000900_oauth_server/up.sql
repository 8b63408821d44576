-- The OAuth2 authorization server (upstream: oauth_clients, dynamic_oauth_clients,
-- oauth_authorization_codes, oauth_access_tokens, oauth_refresh_tokens, oauth_team_consents).

CREATE TABLE oauth_clients (
    id text PRIMARY KEY,
    client_id text NOT NULL,
    client_secret_hash text,
    client_name text NOT NULL,
    redirect_uris text[] NOT NULL,
    scope text NOT NULL,
    team_id text REFERENCES teams (id),
    created_by_user_id text REFERENCES users (id),
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT oauth_clients_client_id_key UNIQUE (client_id)
);
CREATE INDEX oauth_clients_team_id_idx ON oauth_clients (team_id);
CREATE INDEX oauth_clients_created_by_user_id_idx ON oauth_clients (created_by_user_id);
CREATE INDEX oauth_clients_is_active_idx ON oauth_clients (is_active);
SELECT diesel_manage_updated_at('oauth_clients');

-- Clients registered through RFC 7591 dynamic registration.
CREATE TABLE dynamic_oauth_clients (
    client_id text PRIMARY KEY,
    client_name text NOT NULL,
    redirect_uris text[] NOT NULL,
    grant_types text[] NOT NULL,
    response_types text[] NOT NULL,
    scope text NOT NULL,
    token_endpoint_auth_method text NOT NULL,
    client_id_issued_at timestamptz NOT NULL,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dynamic_oauth_clients_expires_at_idx ON dynamic_oauth_clients (expires_at);
CREATE INDEX dynamic_oauth_clients_created_at_idx ON dynamic_oauth_clients (created_at);
SELECT diesel_manage_updated_at('dynamic_oauth_clients');

CREATE TABLE oauth_authorization_codes (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    redirect_uri text NOT NULL,
    scope text NOT NULL,
    state text NOT NULL,
    code_challenge text NOT NULL,
    code_challenge_method text NOT NULL CHECK (code_challenge_method IN ('S256', 'plain')),
    code text NOT NULL,
    resource text,
    used boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT oauth_authorization_codes_code_key UNIQUE (code)
);
CREATE INDEX oauth_authorization_codes_user_id_idx ON oauth_authorization_codes (user_id);
CREATE INDEX oauth_authorization_codes_team_id_idx ON oauth_authorization_codes (team_id);
CREATE INDEX oauth_authorization_codes_expires_at_idx ON oauth_authorization_codes (expires_at);

CREATE TABLE oauth_access_tokens (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    scope text NOT NULL,
    token_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT oauth_access_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX oauth_access_tokens_user_id_idx ON oauth_access_tokens (user_id);
CREATE INDEX oauth_access_tokens_team_id_idx ON oauth_access_tokens (team_id);
CREATE INDEX oauth_access_tokens_expires_at_idx ON oauth_access_tokens (expires_at);

CREATE TABLE oauth_refresh_tokens (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    scope text NOT NULL,
    token_hash text NOT NULL,
    used boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT oauth_refresh_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX oauth_refresh_tokens_user_id_idx ON oauth_refresh_tokens (user_id);
CREATE INDEX oauth_refresh_tokens_team_id_idx ON oauth_refresh_tokens (team_id);
CREATE INDEX oauth_refresh_tokens_expires_at_idx ON oauth_refresh_tokens (expires_at);

CREATE TABLE oauth_team_consents (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    scope text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    is_active boolean NOT NULL DEFAULT true,
    CONSTRAINT oauth_team_consents_unique_user_team_client UNIQUE (user_id, team_id, client_id)
);
CREATE INDEX oauth_team_consents_team_id_idx ON oauth_team_consents (team_id);
CREATE INDEX oauth_team_consents_client_id_idx ON oauth_team_consents (client_id);
CREATE INDEX oauth_team_consents_is_active_idx ON oauth_team_consents (is_active);
