//! Every settings group. Adding a group is adding a file here and one line to [`ALL`].

mod deployment;
mod github_app;
mod github_oauth;
pub mod global;
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::settings::definition::is_valid_key;

    #[test]
    fn keys_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for (group, _, def) in all_settings() {
            assert!(is_valid_key(def.key), "bad key {}", def.key);
            assert!(
                seen.insert(def.key),
                "duplicate key {} (group {})",
                def.key,
                group.id
            );
            assert!(
                !def.name.is_empty() && !def.description.is_empty(),
                "{} lacks text",
                def.key
            );
        }
        let mut groups = HashSet::new();
        for group in ALL {
            assert!(is_valid_key(group.id), "bad group id {}", group.id);
            assert!(groups.insert(group.id), "duplicate group {}", group.id);
            assert!(!group.settings.is_empty(), "empty group {}", group.id);
        }
    }

    #[test]
    fn defaults_match_their_types() {
        for (_, _, def) in all_settings() {
            let normalized = def.kind.normalize(def.default);
            assert!(
                normalized.is_ok(),
                "{}: default {:?} is not a {}",
                def.key,
                def.default,
                def.kind.as_str()
            );
        }
    }

    #[test]
    fn upstream_groups_and_secrets_are_declared() {
        let ids: Vec<_> = ALL.iter().map(|g| g.id).collect();
        assert_eq!(
            ids,
            [
                "global",
                "smtp",
                "github-oauth",
                "team",
                "user-display",
                "github-app",
                "deployment"
            ]
        );
        let secrets: Vec<_> = all_settings()
            .filter(|(_, _, d)| d.encrypted)
            .map(|(_, _, d)| d.key)
            .collect();
        assert_eq!(
            secrets,
            [
                "smtp.password",
                "github.oauth.client_secret",
                "github.app.private_key_base64",
                "deployment.github_app.private_key_base64",
                "deployment.github_app.webhook_secret"
            ]
        );
        assert_eq!(
            find("smtp.port").map(|(g, d)| (g.id, d.default)),
            Some(("smtp", "587"))
        );
    }
}
