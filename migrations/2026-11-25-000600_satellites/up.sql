-- Satellites (the MCP runtime hosts) and their registration tokens (upstream: satellites,
-- satelliteRegistrationTokens). Installations reference satellites, so they come first.

CREATE TABLE satellites (
    id text PRIMARY KEY,
    name text NOT NULL,
    satellite_type text NOT NULL CHECK (satellite_type IN ('global', 'team')),
    team_id text REFERENCES teams (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'active',
    capabilities jsonb NOT NULL DEFAULT '[]',
    api_key_hash text NOT NULL,
    last_heartbeat timestamptz,
    system_info jsonb,
    satellite_url text NOT NULL DEFAULT 'http://127.0.0.1:3001',
    region text,
    mcp_status jsonb,
    config jsonb,
    created_by text NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- One name per team, and one name among global satellites (team_id NULL). Two partial
-- indexes rather than UNIQUE NULLS NOT DISTINCT, which needs PostgreSQL 15.
CREATE UNIQUE INDEX satellites_team_name_key ON satellites (team_id, name) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX satellites_global_name_key ON satellites (name) WHERE team_id IS NULL;
CREATE INDEX satellites_team_id_idx ON satellites (team_id);
CREATE INDEX satellites_satellite_type_idx ON satellites (satellite_type);
CREATE INDEX satellites_status_idx ON satellites (status);
CREATE INDEX satellites_last_heartbeat_idx ON satellites (last_heartbeat);
CREATE INDEX satellites_created_by_idx ON satellites (created_by);
SELECT diesel_manage_updated_at('satellites');

CREATE TABLE satellite_registration_tokens (
    id text PRIMARY KEY,
    token_type text NOT NULL CHECK (token_type IN ('global', 'team')),
    team_id text REFERENCES teams (id) ON DELETE CASCADE,
    token_hash text NOT NULL,
    token_prefix text NOT NULL,
    created_by text NOT NULL REFERENCES users (id),
    permissions jsonb NOT NULL,
    used boolean NOT NULL DEFAULT false,
    used_at timestamptz,
    used_by_satellite_id text REFERENCES satellites (id),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT satellite_registration_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX satellite_registration_tokens_team_type_idx ON satellite_registration_tokens (team_id, token_type);
CREATE INDEX satellite_registration_tokens_expires_at_idx ON satellite_registration_tokens (expires_at);
CREATE INDEX satellite_registration_tokens_created_by_idx ON satellite_registration_tokens (created_by);
CREATE INDEX satellite_registration_tokens_used_idx ON satellite_registration_tokens (used, used_at);
CREATE INDEX satellite_registration_tokens_used_by_idx ON satellite_registration_tokens (used_by_satellite_id);
