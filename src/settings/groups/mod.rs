//! Every settings group. Adding a group is adding a file here and one line to [`ALL`].

mod deployment;
mod github_app;
mod github_oauth;
mod global;
mod smtp;
mod team;
mod user_display;

use super::definition::{SettingDefinition, SettingsGroup};

/// The groups, in the order they are initialized.
pub const ALL: &[&SettingsGroup] = &[
    &global::GROUP,
    &smtp::GROUP,
    &github_oauth::GROUP,
    &team::GROUP,
    &user_display::GROUP,
    &github_app::GROUP,
    &deployment::GROUP,
];

/// The definition of `key`, if the code declares it; with its group.
pub fn find(key: &str) -> Option<(&'static SettingsGroup, &'static SettingDefinition)> {
    ALL.iter()
        .find_map(|g| g.settings.iter().find(|s| s.key == key).map(|s| (*g, s)))
}

/// Every definition with its group and its position in the group.
pub fn all_settings(
) -> impl Iterator<Item = (&'static SettingsGroup, usize, &'static SettingDefinition)> {
    ALL.iter()
        .flat_map(|g| g.settings.iter().enumerate().map(move |(i, s)| (*g, i, s)))
}
