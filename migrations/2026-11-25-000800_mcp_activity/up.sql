-- Client activity, its time-bucketed metrics, and request/server logs (upstream:
-- mcpClientActivity, mcpClientActivityMetrics, mcpRequestLogs, mcpServerLogs).

CREATE TABLE mcp_client_activity (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    satellite_id text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    auth_type text NOT NULL,
    oauth_client_id text,
    api_key_id text,
    auth_identifier text NOT NULL,
    client_name text,
    user_agent text,
    ip_address text,
    current_session_id text,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    total_requests integer NOT NULL DEFAULT 0 CHECK (total_requests >= 0),
    total_tool_calls integer NOT NULL DEFAULT 0 CHECK (total_tool_calls >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_activity_unique_user_team_auth_satellite
        UNIQUE (user_id, team_id, auth_identifier, satellite_id)
);
CREATE INDEX mcp_activity_user_team_satellite_idx ON mcp_client_activity (user_id, team_id, satellite_id);
CREATE INDEX mcp_activity_last_activity_idx ON mcp_client_activity (last_activity_at);
CREATE INDEX mcp_activity_team_last_activity_idx ON mcp_client_activity (team_id, last_activity_at);
CREATE INDEX mcp_activity_satellite_id_idx ON mcp_client_activity (satellite_id);
CREATE INDEX mcp_activity_oauth_client_id_idx ON mcp_client_activity (oauth_client_id);
CREATE INDEX mcp_activity_api_key_id_idx ON mcp_client_activity (api_key_id);
CREATE INDEX mcp_activity_auth_type_idx ON mcp_client_activity (auth_type);
CREATE INDEX mcp_activity_auth_identifier_idx ON mcp_client_activity (auth_identifier);
CREATE INDEX mcp_activity_current_session_idx ON mcp_client_activity (current_session_id);
SELECT diesel_manage_updated_at('mcp_client_activity');

CREATE TABLE mcp_client_activity_metrics (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    satellite_id text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    auth_identifier text NOT NULL,
    bucket_timestamp timestamptz NOT NULL,
    bucket_interval text NOT NULL,
    request_count integer NOT NULL DEFAULT 0 CHECK (request_count >= 0),
    tool_call_count integer NOT NULL DEFAULT 0 CHECK (tool_call_count >= 0),
    active_client_count integer NOT NULL DEFAULT 0 CHECK (active_client_count >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_activity_metrics_unique_bucket
        UNIQUE (user_id, team_id, satellite_id, auth_identifier, bucket_timestamp, bucket_interval)
);
CREATE INDEX mcp_activity_metrics_user_team_bucket_idx
    ON mcp_client_activity_metrics (user_id, team_id, bucket_timestamp, bucket_interval);
CREATE INDEX mcp_activity_metrics_bucket_idx ON mcp_client_activity_metrics (bucket_timestamp);
CREATE INDEX mcp_activity_metrics_team_id_idx ON mcp_client_activity_metrics (team_id);
CREATE INDEX mcp_activity_metrics_satellite_bucket_idx ON mcp_client_activity_metrics (satellite_id, bucket_timestamp);

CREATE TABLE mcp_request_logs (
    id text PRIMARY KEY,
    installation_id text NOT NULL REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id text REFERENCES users (id) ON DELETE SET NULL,
    tool_name text NOT NULL,
    tool_params jsonb,
    tool_response jsonb,
    response_time_ms integer NOT NULL CHECK (response_time_ms >= 0),
    success boolean NOT NULL,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_request_logs_installation_created_idx ON mcp_request_logs (installation_id, created_at);
CREATE INDEX mcp_request_logs_team_id_idx ON mcp_request_logs (team_id);
CREATE INDEX mcp_request_logs_user_id_idx ON mcp_request_logs (user_id);
CREATE INDEX mcp_request_logs_created_at_idx ON mcp_request_logs (created_at);

CREATE TABLE mcp_server_logs (
    id text PRIMARY KEY,
    installation_id text NOT NULL REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    log_type text NOT NULL DEFAULT 'mcp_server_log',
    log_level text NOT NULL,
    message text NOT NULL,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_server_logs_installation_created_idx ON mcp_server_logs (installation_id, created_at);
CREATE INDEX mcp_server_logs_team_id_idx ON mcp_server_logs (team_id);
CREATE INDEX mcp_server_logs_created_at_idx ON mcp_server_logs (created_at);
