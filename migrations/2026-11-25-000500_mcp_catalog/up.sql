-- The MCP server catalog (upstream: mcpCategories, mcpServers, mcpServerVersions,
-- deploymentSettings, deploymentCredentials, mcpOauthProviders).

CREATE TABLE mcp_categories (
    id text PRIMARY KEY,
    name text NOT NULL,
    description text,
    icon text,
    sort_order integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_categories_name_key UNIQUE (name)
);

INSERT INTO mcp_categories (id, name, description, icon, sort_order)
VALUES ('default-category-id', 'Default', 'Default category', 'Tags', 0);

CREATE TABLE mcp_servers (
    id text PRIMARY KEY,
    name text NOT NULL,
    official_name text,
    slug text NOT NULL,
    description text NOT NULL,
    long_description text,
    version text,
    repository_url text,
    repository_source text,
    repository_id text,
    repository_subfolder text,
    git_branch text,
    git_commit_sha text,
    website_url text,
    icon_url text,
    language text NOT NULL,
    runtime text NOT NULL,
    github_account_id text,
    github_readme_base64 text,
    github_stars integer CHECK (github_stars >= 0),
    packages jsonb,
    remotes jsonb,
    resources jsonb,
    prompts jsonb,
    visibility text NOT NULL DEFAULT 'team' CHECK (visibility IN ('global', 'team')),
    owner_team_id text REFERENCES teams (id) ON DELETE CASCADE,
    created_by text NOT NULL REFERENCES users (id),
    author_name text,
    author_contact text,
    organization text,
    license text,
    transport_type text NOT NULL DEFAULT 'stdio' CHECK (transport_type IN ('stdio', 'http', 'sse')),
    dependencies jsonb,
    meta_extensions jsonb,
    category_id text REFERENCES mcp_categories (id),
    tags text[] NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'active',
    featured boolean NOT NULL DEFAULT false,
    auto_install_new_default_team boolean NOT NULL DEFAULT false,
    source text NOT NULL DEFAULT 'manual',
    deployment_source text,
    synced_from_official_registry boolean NOT NULL DEFAULT false,
    official_registry_server_id text,
    official_registry_version_id text,
    official_registry_published_at timestamptz,
    official_registry_updated_at timestamptz,
    requires_oauth boolean NOT NULL DEFAULT false,
    skip_oauth_flow boolean NOT NULL DEFAULT false,
    health_status text NOT NULL DEFAULT 'unknown',
    last_health_check_at timestamptz,
    health_check_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_sync_at timestamptz,
    CONSTRAINT mcp_servers_slug_key UNIQUE (slug)
);
CREATE INDEX mcp_servers_visibility_idx ON mcp_servers (visibility);
CREATE INDEX mcp_servers_category_id_idx ON mcp_servers (category_id);
CREATE INDEX mcp_servers_status_idx ON mcp_servers (status);
CREATE INDEX mcp_servers_owner_team_id_idx ON mcp_servers (owner_team_id);
CREATE INDEX mcp_servers_created_by_idx ON mcp_servers (created_by);
CREATE INDEX mcp_servers_official_name_idx ON mcp_servers (official_name);
CREATE INDEX mcp_servers_source_idx ON mcp_servers (source);
CREATE INDEX mcp_servers_synced_idx ON mcp_servers (synced_from_official_registry);
CREATE INDEX mcp_servers_registry_server_id_idx ON mcp_servers (official_registry_server_id);
CREATE INDEX mcp_servers_repository_url_idx ON mcp_servers (repository_url);
SELECT diesel_manage_updated_at('mcp_servers');

-- The configuration templates and schemas of a server (12 columns of upstream's mcpServers),
-- kept 1:1 beside it so the catalog row stays within diesel's 64-column tables.
CREATE TABLE mcp_server_config_schemas (
    server_id text PRIMARY KEY REFERENCES mcp_servers (id) ON DELETE CASCADE,
    template_args jsonb,
    template_env jsonb,
    template_headers jsonb,
    template_url_query_params jsonb,
    team_args_schema jsonb,
    team_env_schema jsonb,
    team_headers_schema jsonb,
    team_url_query_params_schema jsonb,
    user_args_schema jsonb,
    user_env_schema jsonb,
    user_headers_schema jsonb,
    user_url_query_params_schema jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT diesel_manage_updated_at('mcp_server_config_schemas');

CREATE TABLE mcp_server_versions (
    id text PRIMARY KEY,
    server_id text NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
    version text NOT NULL,
    git_commit text,
    changelog text,
    is_latest boolean NOT NULL DEFAULT false,
    is_stable boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_server_versions_server_id_idx ON mcp_server_versions (server_id);
CREATE INDEX mcp_server_versions_is_latest_idx ON mcp_server_versions (is_latest);

CREATE TABLE deployment_settings (
    id text PRIMARY KEY,
    server_id text NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
    auto_deploy_enabled boolean NOT NULL DEFAULT true,
    webhook_id text,
    webhook_secret text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deployment_settings_server_id_key UNIQUE (server_id)
);
SELECT diesel_manage_updated_at('deployment_settings');

CREATE TABLE deployment_credentials (
    id text PRIMARY KEY,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    source text NOT NULL,
    auth_type text NOT NULL DEFAULT 'oauth',
    access_token_encrypted text,
    refresh_token_encrypted text,
    installation_id text,
    account_login text,
    account_id text,
    scopes text[],
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deployment_credentials_team_source_key UNIQUE (team_id, source)
);
SELECT diesel_manage_updated_at('deployment_credentials');

CREATE TABLE mcp_oauth_providers (
    id text PRIMARY KEY,
    name text NOT NULL,
    slug text NOT NULL,
    icon_url text,
    auth_server_patterns text[] NOT NULL,
    client_id text NOT NULL,
    client_secret text,
    authorization_endpoint text NOT NULL,
    token_endpoint text NOT NULL,
    default_scopes text[],
    pkce_required boolean NOT NULL DEFAULT true,
    token_endpoint_auth_method text NOT NULL DEFAULT 'client_secret_post'
        CHECK (token_endpoint_auth_method IN ('client_secret_post', 'client_secret_basic', 'none')),
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_oauth_providers_slug_key UNIQUE (slug)
);
CREATE INDEX mcp_oauth_providers_enabled_idx ON mcp_oauth_providers (enabled);
SELECT diesel_manage_updated_at('mcp_oauth_providers');
