-- Teams, memberships and per-user preferences (upstream: teams, teamMemberships,
-- userPreferences).

CREATE TABLE teams (
    id text PRIMARY KEY,
    name text NOT NULL,
    slug text NOT NULL,
    description text,
    -- Upstream cascades here, so deleting a user silently deleted every team they owned with
    -- all of its data. Ownership must be transferred (or the team deleted) first.
    owner_id text NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    is_default boolean NOT NULL DEFAULT false,
    non_http_mcp_limit integer NOT NULL DEFAULT 1 CHECK (non_http_mcp_limit >= 0),
    mcp_server_limit integer NOT NULL DEFAULT 5 CHECK (mcp_server_limit >= 0),
    member_limit integer NOT NULL DEFAULT 3 CHECK (member_limit >= 0),
    allow_remote_mcp boolean NOT NULL DEFAULT false,
    allow_github_mcp boolean NOT NULL DEFAULT false,
    allow_private_github_repos boolean NOT NULL DEFAULT false,
    github_mcp_limit integer NOT NULL DEFAULT 1 CHECK (github_mcp_limit >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT teams_slug_key UNIQUE (slug)
);
CREATE INDEX teams_owner_id_idx ON teams (owner_id);
SELECT diesel_manage_updated_at('teams');

CREATE TABLE team_memberships (
    id text PRIMARY KEY,
    team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('team_admin', 'team_user')),
    joined_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT team_memberships_team_user_key UNIQUE (team_id, user_id)
);
CREATE INDEX team_memberships_user_id_idx ON team_memberships (user_id);

CREATE TABLE user_preferences (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    preference_key text NOT NULL,
    preference_value text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_preferences_user_key_key UNIQUE (user_id, preference_key)
);
CREATE INDEX user_preferences_preference_key_idx ON user_preferences (preference_key);
SELECT diesel_manage_updated_at('user_preferences');
