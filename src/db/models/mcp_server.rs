//! `mcp_servers` (the catalog); only the columns the core services need.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{McpServerId, TeamId, UserId};
use crate::db::schema::mcp_servers;

/// The identifying columns of a catalog server (a subset of its ~70 columns).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = mcp_servers, check_for_backend(diesel::pg::Pg))]
pub struct McpServerSummary {
    /// Id.
    pub id: McpServerId,
    /// Display name.
    pub name: String,
    /// Unique URL name.
    pub slug: String,
    /// Short description.
    pub description: String,
    /// `global` or `team`.
    pub visibility: String,
    /// Owning team of a team-private server.
    pub owner_team_id: Option<TeamId>,
    /// Creator.
    pub created_by: UserId,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A catalog server to create, with the required columns; the rest take their defaults.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = mcp_servers)]
pub struct NewMcpServer {
    /// Id.
    pub id: McpServerId,
    /// Display name.
    pub name: String,
    /// Unique URL name.
    pub slug: String,
    /// Short description.
    pub description: String,
    /// Implementation language.
    pub language: String,
    /// Runtime (node, python, ...).
    pub runtime: String,
    /// `global` or `team`.
    pub visibility: String,
    /// Owning team of a team-private server.
    pub owner_team_id: Option<TeamId>,
    /// Creator.
    pub created_by: UserId,
}
