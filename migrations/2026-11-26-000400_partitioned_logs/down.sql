-- Back to plain tables, keeping the rows.
DO $$
DECLARE
    parent text;
BEGIN
    FOREACH parent IN ARRAY ARRAY['mcp_request_logs', 'mcp_server_logs',
                                  'mcp_client_activity_metrics', 'satellite_heartbeats',
                                  'satellite_usage_logs']
    LOOP
        EXECUTE format('ALTER TABLE public.%I RENAME TO %I', parent, parent || '_partitioned');
        EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       parent, parent || '_partitioned');
        EXECUTE format('INSERT INTO public.%I SELECT * FROM public.%I', parent, parent || '_partitioned');
        EXECUTE format('DROP TABLE public.%I CASCADE', parent || '_partitioned');
    END LOOP;
END
$$;

ALTER TABLE mcp_request_logs ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (installation_id) REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX mcp_request_logs_installation_created_idx ON mcp_request_logs (installation_id, created_at);
CREATE INDEX mcp_request_logs_team_id_idx ON mcp_request_logs (team_id);
CREATE INDEX mcp_request_logs_user_id_idx ON mcp_request_logs (user_id);
CREATE INDEX mcp_request_logs_created_at_idx ON mcp_request_logs (created_at);

ALTER TABLE mcp_server_logs ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (installation_id) REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE;
CREATE INDEX mcp_server_logs_installation_created_idx ON mcp_server_logs (installation_id, created_at);
CREATE INDEX mcp_server_logs_team_id_idx ON mcp_server_logs (team_id);
CREATE INDEX mcp_server_logs_created_at_idx ON mcp_server_logs (created_at);

ALTER TABLE mcp_client_activity_metrics ADD PRIMARY KEY (id),
    ADD CONSTRAINT mcp_activity_metrics_unique_bucket
        UNIQUE (user_id, team_id, satellite_id, auth_identifier, bucket_timestamp, bucket_interval),
    ADD FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (satellite_id) REFERENCES satellites (id) ON DELETE CASCADE;
CREATE INDEX mcp_activity_metrics_user_team_bucket_idx
    ON mcp_client_activity_metrics (user_id, team_id, bucket_timestamp, bucket_interval);
CREATE INDEX mcp_activity_metrics_bucket_idx ON mcp_client_activity_metrics (bucket_timestamp);
CREATE INDEX mcp_activity_metrics_team_id_idx ON mcp_client_activity_metrics (team_id);
CREATE INDEX mcp_activity_metrics_satellite_bucket_idx
    ON mcp_client_activity_metrics (satellite_id, bucket_timestamp);

ALTER TABLE satellite_heartbeats ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (satellite_id) REFERENCES satellites (id) ON DELETE CASCADE;
CREATE INDEX satellite_heartbeats_satellite_timestamp_idx ON satellite_heartbeats (satellite_id, "timestamp");
CREATE INDEX satellite_heartbeats_status_idx ON satellite_heartbeats (status);
CREATE INDEX satellite_heartbeats_timestamp_idx ON satellite_heartbeats ("timestamp");

ALTER TABLE satellite_usage_logs ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (satellite_id) REFERENCES satellites (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (user_id) REFERENCES users (id),
    ADD FOREIGN KEY (team_id) REFERENCES teams (id),
    ADD FOREIGN KEY (process_id) REFERENCES satellite_processes (id);
CREATE INDEX satellite_usage_logs_satellite_timestamp_idx ON satellite_usage_logs (satellite_id, "timestamp");
CREATE INDEX satellite_usage_logs_team_timestamp_idx ON satellite_usage_logs (team_id, "timestamp");
CREATE INDEX satellite_usage_logs_user_timestamp_idx ON satellite_usage_logs (user_id, "timestamp");
CREATE INDEX satellite_usage_logs_process_id_idx ON satellite_usage_logs (process_id);
CREATE INDEX satellite_usage_logs_date_partition_idx ON satellite_usage_logs (date_partition);
CREATE INDEX satellite_usage_logs_tool_name_idx ON satellite_usage_logs (tool_name);

DROP FUNCTION partition_drop_before(text, date);
DROP FUNCTION partition_ensure(text, date);
DROP SCHEMA log_partitions;
