//! How plugins are kept apart, decided once per process when they are provisioned.

use std::sync::atomic::{AtomicU8, Ordering};

/// How plugins are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationMode {
    /// Each plugin acts as a PostgreSQL role owning only its schema.
    Roles,
    /// The database role may not create roles and the operator accepted isolation by naming
    /// only: plugin queries run with the core's rights, in the plugin's schema.
    Convention,
}

impl IsolationMode {
    /// `roles` or `convention`, as the status and the CLI show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Roles => "roles",
            Self::Convention => "convention",
        }
    }
}

/// The mode in force, decided when the plugins are provisioned (at setup or start); shared
/// by every handle.
#[derive(Debug, Default)]
pub struct ModeCell(AtomicU8);

impl ModeCell {
    /// The mode, once provisioning decided it.
    pub fn get(&self) -> Option<IsolationMode> {
        match AtomicU8::load(&self.0, Ordering::Acquire) {
            1 => Some(IsolationMode::Roles),
            2 => Some(IsolationMode::Convention),
            _ => None,
        }
    }

    pub(crate) fn set(&self, mode: IsolationMode) {
        let value = match mode {
            IsolationMode::Roles => 1,
            IsolationMode::Convention => 2,
        };
        self.0.store(value, Ordering::Release);
    }
}
