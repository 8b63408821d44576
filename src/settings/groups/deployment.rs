//! `deployment`: deploying MCP servers from GitHub.

use crate::settings::definition::{setting, SettingType::*, SettingsGroup};

/// The group.
pub const GROUP: SettingsGroup = SettingsGroup {
    id: "deployment",
    name: "Deployment Settings",
    description: "Deployment of MCP servers from GitHub repositories",
    icon: "rocket",
    sort_order: 5,
    settings: &[
        setting(
            "deployment.enabled",
            "Enable deployments",
            Boolean,
            "false",
            "Allow deploying MCP servers from GitHub",
        ),
        setting(
            "deployment.github_app.app_id",
            "Deployment app ID",
            String,
            "",
            "ID of the GitHub App used for deployments",
        ),
        setting(
            "deployment.github_app.app_slug",
            "Deployment app slug",
            String,
            "",
            "URL name of the deployment GitHub App",
        ),
        setting(
            "deployment.github_app.private_key_base64",
            "Deployment app private key",
            String,
            "",
            "Private key of the deployment app, base64-encoded PEM",
        )
        .encrypted(),
        setting(
            "deployment.github_app.webhook_secret",
            "Webhook secret",
            String,
            "",
            "Secret that signs the app's webhooks",
        )
        .encrypted(),
    ],
};
