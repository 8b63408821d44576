//! A plugin's id and the PostgreSQL names derived from it. Ids are
//! `^[a-z][a-z0-9-]{1,40}$`; the schema and the role are both `plugin_<id>` with hyphens
//! mapped to underscores. Ids cannot hold underscores, so the mapping never maps two ids to
//! one name, and the `plugin_` prefix keeps plugin schemas apart from `public`,
//! `information_schema` and the reserved `pg_` names.

use std::fmt;

use super::error::PluginError;

/// Ids whose schema the core uses: `api` would be `plugin_api`, the schema of the views
/// plugins read the core through.
const RESERVED: &[&str] = &["api"];

/// Longest id: `plugin_` plus 41 characters stays well within PostgreSQL's 63-byte names.
const MAX_LEN: usize = 41;

/// A validated plugin id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginId(String);

impl PluginId {
    /// Checks `text` against `^[a-z][a-z0-9-]{1,40}$`.
    pub fn parse(text: &str) -> Result<Self, PluginError> {
        let mut chars = text.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !(first_ok && rest_ok && (2..=MAX_LEN).contains(&text.len())) {
            return Err(PluginError::InvalidId(text.to_owned()));
        }
        if RESERVED.contains(&text) {
            return Err(PluginError::ReservedId(text.to_owned()));
        }
        Ok(Self(text.to_owned()))
    }

    /// The id as declared.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The schema that holds the plugin's tables, and the name of the role that owns it.
    pub fn schema(&self) -> String {
        format!("plugin_{}", self.0.replace('-', "_"))
    }

    /// Where the plugin's HTTP operations live: `/api/plugin/<id>/`.
    pub fn route_prefix(&self) -> String {
        format!("/api/plugin/{}/", self.0)
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_form_only() {
        for good in ["ab", "notes", "my-plugin", "a1-b2", &"a".repeat(41)] {
            assert!(PluginId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "1abc",
            "-abc",
            "My-plugin",
            "my_plugin",
            "my plugin",
            "plugin.x",
            "é-x",
            "api",
            &"a".repeat(42),
        ] {
            assert!(PluginId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn maps_hyphens_into_a_prefixed_identifier() {
        let id = PluginId::parse("my-plugin").expect("valid");
        assert_eq!(id.schema(), "plugin_my_plugin");
        assert_eq!(id.route_prefix(), "/api/plugin/my-plugin/");
        let public = PluginId::parse("public").expect("valid");
        assert_eq!(public.schema(), "plugin_public");
    }
}
