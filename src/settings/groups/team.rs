//! `team`: defaults and limits of teams.

use crate::settings::definition::{setting, SettingType::*, SettingsGroup};

/// The group.
pub const GROUP: SettingsGroup = SettingsGroup {
    id: "team",
    name: "Team Settings",
    description: "Defaults and limits applied to teams",
    icon: "users",
    sort_order: 2,
    settings: &[
        setting(
            "team.default_member_limit",
            "Default member limit",
            Number,
            "3",
            "Member limit of new teams",
        ),
        setting(
            "team.creation_limit",
            "Team creation limit",
            Number,
            "3",
            "How many teams a user may create",
        ),
        setting(
            "team.default_non_http_mcp_limit",
            "Default non-HTTP MCP limit",
            Number,
            "1",
            "Limit of non-HTTP MCP servers of new teams",
        ),
        setting(
            "team.default_mcp_server_limit",
            "Default MCP server limit",
            Number,
            "5",
            "Limit of MCP servers of new teams",
        ),
        setting(
            "team.github_mcp_limit",
            "GitHub MCP limit",
            Number,
            "1",
            "Limit of GitHub-hosted MCP servers of new teams",
        ),
        setting(
            "team.allow_remote_mcp",
            "Allow remote MCP",
            Boolean,
            "false",
            "New teams may install remote (HTTP) MCP servers",
        ),
        setting(
            "team.allow_github_mcp",
            "Allow GitHub MCP",
            Boolean,
            "true",
            "New teams may install MCP servers from GitHub",
        ),
        setting(
            "team.allow_private_github_repos",
            "Allow private GitHub repositories",
            Boolean,
            "true",
            "New teams may use private GitHub repositories",
        ),
    ],
};
