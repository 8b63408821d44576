//! `github-oauth`: sign-in with GitHub.

use crate::settings::definition::{setting, SettingType::*, SettingsGroup};

/// The group.
pub const GROUP: SettingsGroup = SettingsGroup {
    id: "github-oauth",
    name: "GitHub OAuth Configuration",
    description: "OAuth application used for signing in with GitHub",
    icon: "github",
    sort_order: 2,
    settings: &[
        setting(
            "github.oauth.client_id",
            "Client ID",
            String,
            "",
            "Client ID of the GitHub OAuth app",
        ),
        setting(
            "github.oauth.client_secret",
            "Client secret",
            String,
            "",
            "Client secret of the GitHub OAuth app",
        )
        .encrypted(),
        setting(
            "github.oauth.enabled",
            "Enable GitHub sign-in",
            Boolean,
            "false",
            "Allow signing in with GitHub",
        ),
        setting(
            "github.oauth.callback_url",
            "Callback URL",
            String,
            "http://localhost:3000/api/auth/github/callback",
            "Redirect URL registered with GitHub",
        ),
        setting(
            "github.oauth.scope",
            "Scopes",
            String,
            "user:email",
            "OAuth scopes requested from GitHub",
        ),
    ],
};
