//! `github-app`: the GitHub App used to read repositories.

use crate::settings::definition::{setting, SettingType::*, SettingsGroup};

/// The group.
pub const GROUP: SettingsGroup = SettingsGroup {
    id: "github-app",
    name: "GitHub App Configuration",
    description: "GitHub App used to access repositories",
    icon: "github",
    sort_order: 4,
    settings: &[
        setting(
            "github.app.app_id",
            "App ID",
            String,
            "",
            "ID of the GitHub App",
        ),
        setting(
            "github.app.installation_id",
            "Installation ID",
            String,
            "",
            "Installation of the app",
        ),
        setting(
            "github.app.private_key_base64",
            "Private key",
            String,
            "",
            "Private key of the app, base64-encoded PEM",
        )
        .encrypted(),
        setting(
            "github.app.enabled",
            "Enable GitHub App",
            Boolean,
            "false",
            "Use the GitHub App",
        ),
    ],
};
