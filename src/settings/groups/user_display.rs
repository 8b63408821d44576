//! `user-display`: what the frontend header shows.

use crate::settings::definition::{setting, SettingType::*, SettingsGroup};

/// The group.
pub const GROUP: SettingsGroup = SettingsGroup {
    id: "user-display",
    name: "User Display Settings",
    description: "Elements shown to users in the frontend",
    icon: "eye",
    sort_order: 3,
    settings: &[
        setting(
            "user-display.header_show_discord",
            "Show Discord link",
            Boolean,
            "false",
            "Show the Discord link in the header",
        ),
        setting(
            "user-display.header_show_feedback",
            "Show feedback link",
            Boolean,
            "true",
            "Show the feedback link in the header",
        ),
    ],
};
