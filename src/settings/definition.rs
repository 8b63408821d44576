//! How settings are declared in code: a group with its settings, each typed, with a default.

/// The type of a setting's value; stored in `global_settings.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    /// Free text.
    String,
    /// A finite number (integer or decimal).
    Number,
    /// `true`/`false` (several spellings accepted on input, see [`parse_bool`]).
    Boolean,
}

impl SettingType {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }

    /// Parses the stored type name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "string" => Some(Self::String),
            "number" => Some(Self::Number),
            "boolean" => Some(Self::Boolean),
            _ => None,
        }
    }

    /// Checks `value` against the type and returns its canonical text (`true`/`false` for
    /// booleans, the number as written for numbers), or why it does not fit.
    pub fn normalize(self, value: &str) -> Result<String, String> {
        match self {
            Self::String => Ok(value.to_owned()),
            Self::Number => match value.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(value.trim().to_owned()),
                _ => Err(format!("{value:?} is not a number")),
            },
            Self::Boolean => parse_bool(value)
                .map(|b| b.to_string())
                .ok_or_else(|| format!("{value:?} is not a boolean (true/false, 1/0, yes/no, on/off, enabled/disabled)")),
        }
    }
}

/// Upstream's boolean spellings: `true/1/yes/on/enabled` and `false/0/no/off/disabled`,
/// case-insensitive.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "enabled" => Some(true),
        "false" | "0" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

/// One setting as the code declares it.
#[derive(Debug, Clone, Copy)]
pub struct SettingDefinition {
    /// Unique key, `^[a-zA-Z0-9._-]{1,255}$`.
    pub key: &'static str,
    /// Human-readable name.
    pub name: &'static str,
    /// Value type.
    pub kind: SettingType,
    /// Default value, as text of `kind`.
    pub default: &'static str,
    /// What it controls.
    pub description: &'static str,
    /// Stored encrypted (secrets).
    pub encrypted: bool,
    /// Must be filled in for the feature to work (an empty value is logged at start).
    pub required: bool,
}

/// A group of settings and its metadata; one per file under `settings/groups/`.
#[derive(Debug, Clone, Copy)]
pub struct SettingsGroup {
    /// Group id, `^[a-zA-Z0-9._-]{1,255}$`.
    pub id: &'static str,
    /// Human-readable name.
    pub name: &'static str,
    /// What the group configures.
    pub description: &'static str,
    /// Icon name for the UI.
    pub icon: &'static str,
    /// Position among groups.
    pub sort_order: i32,
    /// Its settings, in display order (their position is their sort order).
    pub settings: &'static [SettingDefinition],
}

/// Shorthand used by the group files.
pub const fn setting(
    key: &'static str,
    name: &'static str,
    kind: SettingType,
    default: &'static str,
    description: &'static str,
) -> SettingDefinition {
    SettingDefinition {
        key,
        name,
        kind,
        default,
        description,
        encrypted: false,
        required: false,
    }
}

impl SettingDefinition {
    /// The same definition, stored encrypted.
    pub const fn encrypted(mut self) -> Self {
        self.encrypted = true;
        self
    }

    /// The same definition, required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// Whether `key` is a valid setting key or group id.
pub fn is_valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_upstream_spellings() {
        for yes in ["true", "1", "yes", "on", "enabled", "TRUE", " Yes "] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["false", "0", "no", "off", "disabled", "False"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        for bad in ["", "maybe", "2", "y"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_are_checked_against_their_type() {
        assert_eq!(SettingType::Number.normalize(" 587 "), Ok("587".into()));
        assert!(SettingType::Number.normalize("1.5").is_ok());
        assert!(SettingType::Number.normalize("abc").is_err());
        assert!(SettingType::Number.normalize("NaN").is_err());
        assert_eq!(SettingType::Boolean.normalize("on"), Ok("true".into()));
        assert!(SettingType::Boolean.normalize("sure").is_err());
        assert_eq!(SettingType::String.normalize(" x "), Ok(" x ".into()));
    }

    #[test]
    fn keys_follow_the_pattern() {
        assert!(is_valid_key("smtp.from_name"));
        assert!(is_valid_key("user-display.header_show_discord"));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("bad key"));
        assert!(!is_valid_key(&"k".repeat(256)));
    }
}
