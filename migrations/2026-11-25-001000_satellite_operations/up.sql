-- What satellites do: commands sent to them, processes they run, heartbeats and usage
-- (upstream: satelliteCommands, satelliteProcesses, satelliteHeartbeats, satelliteUsageLogs).

CREATE TABLE satellite_commands (
    id text PRIMARY KEY,
    satellite_id text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    command_type text NOT NULL,
    priority text NOT NULL DEFAULT 'normal',
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    target_team_id text REFERENCES teams (id),
    correlation_id text,
    retry_count integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    max_retries integer NOT NULL DEFAULT 3 CHECK (max_retries >= 0),
    error_message text,
    result jsonb,
    created_by text REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX satellite_commands_satellite_status_idx ON satellite_commands (satellite_id, status);
CREATE INDEX satellite_commands_priority_status_idx ON satellite_commands (priority, status);
CREATE INDEX satellite_commands_correlation_id_idx ON satellite_commands (correlation_id);
CREATE INDEX satellite_commands_target_team_id_idx ON satellite_commands (target_team_id);
CREATE INDEX satellite_commands_created_by_idx ON satellite_commands (created_by);
SELECT diesel_manage_updated_at('satellite_commands');

CREATE TABLE satellite_processes (
    id text PRIMARY KEY,
    satellite_id text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    installation_id text REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    server_name text NOT NULL,
    process_pid integer,
    local_port integer CHECK (local_port BETWEEN 1 AND 65535),
    status text NOT NULL DEFAULT 'pending',
    health_status text NOT NULL DEFAULT 'unknown',
    performance_metrics jsonb,
    team_id text NOT NULL REFERENCES teams (id),
    error_message text,
    started_at timestamptz,
    stopped_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX satellite_processes_satellite_status_idx ON satellite_processes (satellite_id, status);
CREATE INDEX satellite_processes_team_status_idx ON satellite_processes (team_id, status);
CREATE INDEX satellite_processes_health_status_idx ON satellite_processes (health_status);
CREATE INDEX satellite_processes_installation_id_idx ON satellite_processes (installation_id);
SELECT diesel_manage_updated_at('satellite_processes');

CREATE TABLE satellite_heartbeats (
    id text PRIMARY KEY,
    satellite_id text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    status text NOT NULL,
    system_metrics jsonb NOT NULL,
    process_count integer NOT NULL DEFAULT 0 CHECK (process_count >= 0),
    healthy_process_count integer NOT NULL DEFAULT 0 CHECK (healthy_process_count >= 0),
    error_count integer NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    response_time_ms integer,
    uptime_seconds integer,
    version text,
    "timestamp" timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX satellite_heartbeats_satellite_timestamp_idx ON satellite_heartbeats (satellite_id, "timestamp");
CREATE INDEX satellite_heartbeats_status_idx ON satellite_heartbeats (status);
CREATE INDEX satellite_heartbeats_timestamp_idx ON satellite_heartbeats ("timestamp");

CREATE TABLE satellite_usage_logs (
    id text PRIMARY KEY,
    satellite_id text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    user_id text REFERENCES users (id),
    team_id text NOT NULL REFERENCES teams (id),
    process_id text REFERENCES satellite_processes (id),
    request_method text NOT NULL,
    request_path text NOT NULL,
    tool_name text,
    duration_ms integer,
    status_code integer,
    error_message text,
    request_size_bytes integer,
    response_size_bytes integer,
    user_agent text,
    ip_address text,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    date_partition date NOT NULL DEFAULT current_date
);
CREATE INDEX satellite_usage_logs_satellite_timestamp_idx ON satellite_usage_logs (satellite_id, "timestamp");
CREATE INDEX satellite_usage_logs_team_timestamp_idx ON satellite_usage_logs (team_id, "timestamp");
CREATE INDEX satellite_usage_logs_user_timestamp_idx ON satellite_usage_logs (user_id, "timestamp");
CREATE INDEX satellite_usage_logs_process_id_idx ON satellite_usage_logs (process_id);
CREATE INDEX satellite_usage_logs_date_partition_idx ON satellite_usage_logs (date_partition);
CREATE INDEX satellite_usage_logs_tool_name_idx ON satellite_usage_logs (tool_name);
