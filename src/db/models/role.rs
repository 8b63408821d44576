//! `roles`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::RoleId;
use crate::db::schema::roles;

/// A role and the permissions it grants.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = roles, check_for_backend(diesel::pg::Pg))]
pub struct Role {
    /// Id, equal to the role's code name.
    pub id: RoleId,
    /// Human-readable name.
    pub name: String,
    /// What the role is for.
    pub description: Option<String>,
    /// Granted permissions (PostgreSQL arrays may hold NULLs, hence `Option`).
    pub permissions: Vec<Option<String>>,
    /// One of the four built-in roles.
    pub is_system_role: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Role {
    /// The granted permissions.
    pub fn permissions(&self) -> impl Iterator<Item = &str> {
        self.permissions.iter().flatten().map(String::as_str)
    }
}
