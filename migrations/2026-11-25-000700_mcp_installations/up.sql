-- Installations of catalog servers in teams, and what hangs off them (upstream:
-- mcpServerInstallations, mcpUserConfigurations, mcpServerInstances, mcpToolMetadata,
-- mcpOauthTokens, oauthPendingFlows).

CREATE TABLE mcp_server_installations (
    id text PRIMARY KEY,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    server_id text NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
    created_by text NOT NULL REFERENCES users (id),
    installation_name text NOT NULL,
    installation_type text NOT NULL DEFAULT 'global',
    team_args jsonb,
    team_env jsonb,
    team_headers jsonb,
    team_url_query_params jsonb,
    oauth_state text,
    oauth_code_verifier text,
    oauth_pending boolean NOT NULL DEFAULT false,
    oauth_pending_expires_at timestamptz,
    oauth_client_id text,
    oauth_client_secret text,
    oauth_provider_id text REFERENCES mcp_oauth_providers (id) ON DELETE SET NULL,
    oauth_token_endpoint text,
    oauth_token_endpoint_auth_method text,
    settings jsonb NOT NULL DEFAULT '{}',
    satellite_id text REFERENCES satellites (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX mcp_installations_team_name_idx ON mcp_server_installations (team_id, installation_name);
CREATE INDEX mcp_installations_team_server_idx ON mcp_server_installations (team_id, server_id);
CREATE INDEX mcp_installations_server_id_idx ON mcp_server_installations (server_id);
CREATE INDEX mcp_installations_created_by_idx ON mcp_server_installations (created_by);
CREATE INDEX mcp_installations_oauth_provider_id_idx ON mcp_server_installations (oauth_provider_id);
CREATE INDEX mcp_installations_satellite_id_idx ON mcp_server_installations (satellite_id);
SELECT diesel_manage_updated_at('mcp_server_installations');

CREATE TABLE mcp_user_configurations (
    id text PRIMARY KEY,
    installation_id text NOT NULL REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_args jsonb,
    user_env jsonb,
    user_headers jsonb,
    user_url_query_params jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    CONSTRAINT mcp_user_configs_installation_user_key UNIQUE (installation_id, user_id)
);
CREATE INDEX mcp_user_configs_user_id_idx ON mcp_user_configurations (user_id);
SELECT diesel_manage_updated_at('mcp_user_configurations');

CREATE TABLE mcp_server_instances (
    id text PRIMARY KEY,
    installation_id text NOT NULL REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    instance_path text,
    instance_token text,
    status text NOT NULL DEFAULT 'provisioning',
    status_message text,
    status_updated_at timestamptz,
    last_health_check_at timestamptz,
    last_credential_check_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_server_instances_installation_user_key UNIQUE (installation_id, user_id),
    CONSTRAINT mcp_server_instances_instance_path_key UNIQUE (instance_path)
);
CREATE INDEX mcp_server_instances_user_id_idx ON mcp_server_instances (user_id);
CREATE INDEX mcp_server_instances_status_idx ON mcp_server_instances (status);
SELECT diesel_manage_updated_at('mcp_server_instances');

CREATE TABLE mcp_tool_metadata (
    id text PRIMARY KEY,
    installation_id text NOT NULL REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    tool_name text NOT NULL,
    description text NOT NULL DEFAULT '',
    input_schema jsonb,
    token_count integer NOT NULL DEFAULT 0 CHECK (token_count >= 0),
    is_disabled boolean NOT NULL DEFAULT false,
    discovered_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_tool_metadata_installation_tool_key UNIQUE (installation_id, tool_name)
);
CREATE INDEX mcp_tool_metadata_team_id_idx ON mcp_tool_metadata (team_id);
CREATE INDEX mcp_tool_metadata_installation_disabled_idx ON mcp_tool_metadata (installation_id, is_disabled);
SELECT diesel_manage_updated_at('mcp_tool_metadata');

CREATE TABLE mcp_oauth_tokens (
    id text PRIMARY KEY,
    installation_id text NOT NULL REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    access_token text NOT NULL,
    refresh_token text,
    token_type text NOT NULL DEFAULT 'Bearer',
    expires_at timestamptz,
    scope text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_oauth_tokens_installation_user_team_idx ON mcp_oauth_tokens (installation_id, user_id, team_id);
CREATE INDEX mcp_oauth_tokens_user_id_idx ON mcp_oauth_tokens (user_id);
CREATE INDEX mcp_oauth_tokens_team_id_idx ON mcp_oauth_tokens (team_id);
CREATE INDEX mcp_oauth_tokens_expires_at_idx ON mcp_oauth_tokens (expires_at);
SELECT diesel_manage_updated_at('mcp_oauth_tokens');

CREATE TABLE oauth_pending_flows (
    id text PRIMARY KEY,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    server_id text NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
    created_by text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    installation_id text REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    oauth_state text NOT NULL,
    oauth_code_verifier text NOT NULL,
    oauth_client_id text NOT NULL,
    oauth_client_secret text,
    oauth_provider_id text REFERENCES mcp_oauth_providers (id) ON DELETE SET NULL,
    oauth_token_endpoint text NOT NULL,
    oauth_token_endpoint_auth_method text NOT NULL,
    satellite_id text REFERENCES satellites (id) ON DELETE SET NULL,
    installation_name text NOT NULL,
    installation_type text NOT NULL DEFAULT 'global',
    team_config jsonb,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_pending_flows_oauth_state_idx ON oauth_pending_flows (oauth_state);
CREATE INDEX oauth_pending_flows_expires_at_idx ON oauth_pending_flows (expires_at);
CREATE INDEX oauth_pending_flows_team_server_idx ON oauth_pending_flows (team_id, server_id);
CREATE INDEX oauth_pending_flows_server_id_idx ON oauth_pending_flows (server_id);
CREATE INDEX oauth_pending_flows_created_by_idx ON oauth_pending_flows (created_by);
CREATE INDEX oauth_pending_flows_installation_id_idx ON oauth_pending_flows (installation_id);
CREATE INDEX oauth_pending_flows_oauth_provider_id_idx ON oauth_pending_flows (oauth_provider_id);
CREATE INDEX oauth_pending_flows_satellite_id_idx ON oauth_pending_flows (satellite_id);
