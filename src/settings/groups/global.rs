//! `global`: installation-wide behaviour.

use crate::settings::definition::{setting, SettingType::*, SettingsGroup};

/// `global.page_url` until an operator sets the frontend's real address.
pub const DEFAULT_PAGE_URL: &str = "http://localhost:5173";

/// The group.
pub const GROUP: SettingsGroup = SettingsGroup {
    id: "global",
    name: "Global Settings",
    description: "Installation-wide behaviour of DeployStack",
    icon: "settings",
    sort_order: 0,
    settings: &[
        setting(
            "global.page_url",
            "Frontend URL",
            String,
            DEFAULT_PAGE_URL,
            "Public URL of the DeployStack frontend",
        )
        .required(),
        setting(
            "global.backend_url",
            "Backend URL",
            String,
            "http://localhost:3000",
            "Public URL of this backend",
        )
        .required(),
        setting(
            "global.enable_login",
            "Enable login",
            Boolean,
            "true",
            "Allow users to sign in",
        ),
        setting(
            "global.enable_email_registration",
            "Enable email registration",
            Boolean,
            "true",
            "Allow new accounts with email and password",
        ),
        setting(
            "global.enable_swagger_docs",
            "Enable API documentation",
            Boolean,
            "true",
            "Serve the Swagger UI at /documentation",
        ),
        setting(
            "global.show_version",
            "Show version",
            Boolean,
            "true",
            "Include the backend version in the banner at /",
        ),
        setting(
            "global.send_welcome_email",
            "Send welcome email",
            Boolean,
            "false",
            "Email new users after registration",
        ),
        setting(
            "global.show_user_walkthrough",
            "Show user walkthrough",
            Boolean,
            "false",
            "Show the onboarding walkthrough to new users",
        ),
        setting(
            "global.team_member_limit",
            "Team member limit",
            Number,
            "3",
            "Default member limit of new teams",
        ),
        setting(
            "global.team_creation_limit",
            "Team creation limit",
            Number,
            "3",
            "How many teams a user may create",
        ),
        setting(
            "global.default_non_http_mcp_limit",
            "Default non-HTTP MCP limit",
            Number,
            "1",
            "Default limit of non-HTTP MCP servers per team",
        ),
        setting(
            "global.default_mcp_server_limit",
            "Default MCP server limit",
            Number,
            "5",
            "Default limit of MCP servers per team",
        ),
    ],
};
