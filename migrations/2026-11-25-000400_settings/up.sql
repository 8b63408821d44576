-- Global settings and team cloud credentials (upstream: globalSettingGroups, globalSettings,
-- teamCloudCredentials).

CREATE TABLE global_setting_groups (
    id text PRIMARY KEY CHECK (id ~ '^[a-zA-Z0-9._-]{1,255}$'),
    name text NOT NULL,
    description text,
    icon text,
    sort_order integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT diesel_manage_updated_at('global_setting_groups');

CREATE TABLE global_settings (
    key text PRIMARY KEY CHECK (key ~ '^[a-zA-Z0-9._-]{1,255}$'),
    name text,
    -- Ciphertext (`iv:tag:data`, hex) when is_encrypted.
    value text NOT NULL,
    type text NOT NULL DEFAULT 'string' CHECK (type IN ('string', 'number', 'boolean')),
    description text,
    is_encrypted boolean NOT NULL DEFAULT false,
    group_id text REFERENCES global_setting_groups (id),
    sort_order integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX global_settings_group_id_idx ON global_settings (group_id);
SELECT diesel_manage_updated_at('global_settings');

CREATE TABLE team_cloud_credentials (
    id text PRIMARY KEY,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    provider_id text NOT NULL,
    name text NOT NULL,
    comment text,
    -- Encrypted JSON (`iv:tag:data`, hex).
    credentials text NOT NULL,
    created_by text NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX team_cloud_credentials_team_id_idx ON team_cloud_credentials (team_id);
CREATE INDEX team_cloud_credentials_created_by_idx ON team_cloud_credentials (created_by);
SELECT diesel_manage_updated_at('team_cloud_credentials');
