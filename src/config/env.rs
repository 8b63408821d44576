//! Typed access to environment variables, with errors that name the variable.

use std::collections::HashMap;
use std::str::FromStr;

/// A configuration value that cannot be used; the process stops at start with this message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variable is set but does not parse as the expected type.
    #[error("invalid value for {name}: {reason}")]
    Invalid {
        /// Name of the environment variable.
        name: &'static str,
        /// What was expected (never the value itself: it may be a secret).
        reason: String,
    },
}

/// A snapshot of variables: the process environment, or a map in tests.
#[derive(Clone, Default)]
pub struct EnvSource {
    vars: HashMap<String, String>,
}

/// Names only: the values include passwords and the encryption secret.
impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("EnvSource").field("names", &names).finish()
    }
}

impl EnvSource {
    /// Snapshot of the process environment (after `.env` was loaded).
    pub fn process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// A source holding exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Whether the variable is present at all, even empty.
    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// A non-empty value; empty counts as unset, as it does upstream (`process.env.X || default`).
    pub fn string(&self, name: &str) -> Option<String> {
        self.vars.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// A non-empty value parsed as `T`; a parse failure names the variable and the expected type.
    pub fn parsed<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.string(name) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|e| ConfigError::Invalid {
                    name,
                    reason: format!("expected {} ({e})", std::any::type_name::<T>()),
                }),
        }
    }

    /// A boolean flag: `true`/`false` (also `1`/`0`, `yes`/`no`), anything else is an error.
    pub fn flag(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.string(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: "expected true or false".into(),
                }),
            },
        }
    }
}
