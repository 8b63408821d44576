-- The append-heavy tables become range-partitioned by time, one partition per UTC day, so
-- retention drops whole partitions instead of deleting rows. Existing rows are kept: they
-- move into the new tables (rows older than the first daily partition into the default
-- partition). Partitions live in the schema `log_partitions`, out of `public`, so that
-- `diesel print-schema` keeps listing only the parent tables. Primary keys gain the time
-- column (PostgreSQL requires the partition key in every unique constraint).

CREATE SCHEMA log_partitions;

-- Creates the partition of `parent` for the UTC day `day` unless it exists, moving rows of
-- that day out of the default partition first (they arrive there when no partition existed
-- yet). Returns whether it created one.
CREATE FUNCTION partition_ensure(parent text, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    child text := format('%s_p%s', parent, to_char(day, 'YYYYMMDD'));
    key text := substring(pg_get_partkeydef(format('public.%I', parent)::regclass)
                          FROM '^RANGE \((.*)\)$');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(format('log_partitions.%I', child)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE log_partitions.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   child, parent);
    EXECUTE format('WITH moved AS (DELETE FROM log_partitions.%I WHERE %s >= $1 AND %s < $2 RETURNING *) '
                   'INSERT INTO log_partitions.%I SELECT * FROM moved',
                   parent || '_default', key, key, child)
        USING lo, hi;
    -- Bounds written out in UTC, whatever the session's TimeZone and DateStyle.
    EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION log_partitions.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, child,
                   to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                   to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    RETURN true;
END
$$;

-- Drops the daily partitions of `parent` that end at or before `cutoff` (UTC midnight),
-- deletes the default partition's rows older than that, and returns how many rows went.
CREATE FUNCTION partition_drop_before(parent text, cutoff date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    rows_in bigint;
    total bigint := 0;
    key text := substring(pg_get_partkeydef(format('public.%I', parent)::regclass)
                          FROM '^RANGE \((.*)\)$');
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = format('public.%I', parent)::regclass
          AND n.nspname = 'log_partitions'
          AND c.relname ~ '_p[0-9]{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') + 1 <= cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT count(*) FROM log_partitions.%I', part.relname) INTO rows_in;
        EXECUTE format('DROP TABLE log_partitions.%I', part.relname);
        total := total + rows_in;
    END LOOP;
    -- Rows older than the cutoff in the default partition (history from before the
    -- partitioning, rows of days that had no partition) go row by row.
    EXECUTE format('DELETE FROM log_partitions.%I WHERE %s < $1', parent || '_default', key)
        USING (cutoff::timestamp AT TIME ZONE 'UTC');
    GET DIAGNOSTICS rows_in = ROW_COUNT;
    RETURN total + rows_in;
END
$$;

-- mcp_request_logs, by created_at.
ALTER TABLE mcp_request_logs RENAME TO mcp_request_logs_unpartitioned;
ALTER TABLE mcp_request_logs_unpartitioned DROP CONSTRAINT mcp_request_logs_pkey;
DROP INDEX mcp_request_logs_installation_created_idx, mcp_request_logs_team_id_idx,
    mcp_request_logs_user_id_idx, mcp_request_logs_created_at_idx;
CREATE TABLE mcp_request_logs (
    id text NOT NULL,
    installation_id text NOT NULL REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id text REFERENCES users (id) ON DELETE SET NULL,
    tool_name text NOT NULL,
    tool_params jsonb,
    tool_response jsonb,
    response_time_ms integer NOT NULL CHECK (response_time_ms >= 0),
    success boolean NOT NULL,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX mcp_request_logs_installation_created_idx ON mcp_request_logs (installation_id, created_at);
CREATE INDEX mcp_request_logs_team_id_idx ON mcp_request_logs (team_id);
CREATE INDEX mcp_request_logs_user_id_idx ON mcp_request_logs (user_id);
CREATE INDEX mcp_request_logs_created_at_idx ON mcp_request_logs (created_at);

-- mcp_server_logs, by created_at.
ALTER TABLE mcp_server_logs RENAME TO mcp_server_logs_unpartitioned;
ALTER TABLE mcp_server_logs_unpartitioned DROP CONSTRAINT mcp_server_logs_pkey;
DROP INDEX mcp_server_logs_installation_created_idx, mcp_server_logs_team_id_idx,
    mcp_server_logs_created_at_idx;
CREATE TABLE mcp_server_logs (
    id text NOT NULL,
    installation_id text NOT NULL REFERENCES mcp_server_installations (id) ON DELETE CASCADE,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    log_type text NOT NULL DEFAULT 'mcp_server_log',
    log_level text NOT NULL,
    message text NOT NULL,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX mcp_server_logs_installation_created_idx ON mcp_server_logs (installation_id, created_at);
CREATE INDEX mcp_server_logs_team_id_idx ON mcp_server_logs (team_id);
CREATE INDEX mcp_server_logs_created_at_idx ON mcp_server_logs (created_at);

-- mcp_client_activity_metrics, by bucket_timestamp (its retention's column).
ALTER TABLE mcp_client_activity_metrics RENAME TO mcp_client_activity_metrics_unpartitioned;
ALTER TABLE mcp_client_activity_metrics_unpartitioned
    DROP CONSTRAINT mcp_client_activity_metrics_pkey,
    DROP CONSTRAINT mcp_activity_metrics_unique_bucket;
DROP INDEX mcp_activity_metrics_user_team_bucket_idx, mcp_activity_metrics_bucket_idx,
    mcp_activity_metrics_team_id_idx, mcp_activity_metrics_satellite_bucket_idx;
CREATE TABLE mcp_client_activity_metrics (
    id text NOT NULL,
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
    PRIMARY KEY (id, bucket_timestamp),
    CONSTRAINT mcp_activity_metrics_unique_bucket
        UNIQUE (user_id, team_id, satellite_id, auth_identifier, bucket_timestamp, bucket_interval)
) PARTITION BY RANGE (bucket_timestamp);
CREATE INDEX mcp_activity_metrics_user_team_bucket_idx
    ON mcp_client_activity_metrics (user_id, team_id, bucket_timestamp, bucket_interval);
CREATE INDEX mcp_activity_metrics_bucket_idx ON mcp_client_activity_metrics (bucket_timestamp);
CREATE INDEX mcp_activity_metrics_team_id_idx ON mcp_client_activity_metrics (team_id);
CREATE INDEX mcp_activity_metrics_satellite_bucket_idx
    ON mcp_client_activity_metrics (satellite_id, bucket_timestamp);

-- satellite_heartbeats, by "timestamp".
ALTER TABLE satellite_heartbeats RENAME TO satellite_heartbeats_unpartitioned;
ALTER TABLE satellite_heartbeats_unpartitioned DROP CONSTRAINT satellite_heartbeats_pkey;
DROP INDEX satellite_heartbeats_satellite_timestamp_idx, satellite_heartbeats_status_idx,
    satellite_heartbeats_timestamp_idx;
CREATE TABLE satellite_heartbeats (
    id text NOT NULL,
    satellite_id text NOT NULL REFERENCES satellites (id) ON DELETE CASCADE,
    status text NOT NULL,
    system_metrics jsonb NOT NULL,
    process_count integer NOT NULL DEFAULT 0 CHECK (process_count >= 0),
    healthy_process_count integer NOT NULL DEFAULT 0 CHECK (healthy_process_count >= 0),
    error_count integer NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    response_time_ms integer,
    uptime_seconds integer,
    version text,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE INDEX satellite_heartbeats_satellite_timestamp_idx ON satellite_heartbeats (satellite_id, "timestamp");
CREATE INDEX satellite_heartbeats_status_idx ON satellite_heartbeats (status);
CREATE INDEX satellite_heartbeats_timestamp_idx ON satellite_heartbeats ("timestamp");

-- satellite_usage_logs, by "timestamp".
ALTER TABLE satellite_usage_logs RENAME TO satellite_usage_logs_unpartitioned;
ALTER TABLE satellite_usage_logs_unpartitioned DROP CONSTRAINT satellite_usage_logs_pkey;
DROP INDEX satellite_usage_logs_satellite_timestamp_idx, satellite_usage_logs_team_timestamp_idx,
    satellite_usage_logs_user_timestamp_idx, satellite_usage_logs_process_id_idx,
    satellite_usage_logs_date_partition_idx, satellite_usage_logs_tool_name_idx;
CREATE TABLE satellite_usage_logs (
    id text NOT NULL,
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
    date_partition date NOT NULL DEFAULT current_date,
    PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE INDEX satellite_usage_logs_satellite_timestamp_idx ON satellite_usage_logs (satellite_id, "timestamp");
CREATE INDEX satellite_usage_logs_team_timestamp_idx ON satellite_usage_logs (team_id, "timestamp");
CREATE INDEX satellite_usage_logs_user_timestamp_idx ON satellite_usage_logs (user_id, "timestamp");
CREATE INDEX satellite_usage_logs_process_id_idx ON satellite_usage_logs (process_id);
CREATE INDEX satellite_usage_logs_date_partition_idx ON satellite_usage_logs (date_partition);
CREATE INDEX satellite_usage_logs_tool_name_idx ON satellite_usage_logs (tool_name);

-- Default partitions, daily partitions from yesterday to a week ahead (UTC days), then the
-- rows. Rows older than yesterday stay in the default partition: history of unknown length
-- would otherwise need a partition per day. Retention (`partition_drop_before`) removes the
-- old ones there row by row.
DO $$
DECLARE
    parent text;
    day date;
BEGIN
    FOREACH parent IN ARRAY ARRAY['mcp_request_logs', 'mcp_server_logs',
                                  'mcp_client_activity_metrics', 'satellite_heartbeats',
                                  'satellite_usage_logs']
    LOOP
        EXECUTE format('CREATE TABLE log_partitions.%I PARTITION OF public.%I DEFAULT',
                       parent || '_default', parent);
        FOR day IN SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1,
                                          (now() AT TIME ZONE 'UTC')::date + 7,
                                          interval '1 day')::date
        LOOP
            PERFORM partition_ensure(parent, day);
        END LOOP;
        EXECUTE format('INSERT INTO public.%I SELECT * FROM public.%I', parent, parent || '_unpartitioned');
        EXECUTE format('DROP TABLE public.%I', parent || '_unpartitioned');
    END LOOP;
END
$$;
