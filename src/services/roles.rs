//! The four roles: their permissions are defined here, in code, and written into `roles`
//! at every start, so a deployment always enforces the permissions of the code it runs.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use futures_util::future::BoxFuture;
use tracing::info;

use super::ServiceResult;
use crate::db::models::{Role, RoleId};
use crate::db::schema::roles;
use crate::db::{Database, LivePool};
use crate::lifecycle::Initializer;

/// A built-in role as the code defines it.
#[derive(Debug, Clone, Copy)]
pub struct RoleDefinition {
    /// Id and code name.
    pub id: &'static str,
    /// Human-readable name.
    pub name: &'static str,
    /// What the role is for.
    pub description: &'static str,
    /// Granted permissions.
    pub permissions: &'static [&'static str],
}

/// The built-in roles (upstream `ROLE_DEFINITIONS`).
pub const ROLE_DEFINITIONS: [RoleDefinition; 4] = [
    RoleDefinition {
        id: "global_admin",
        name: "Global Administrator",
        description: "Full access to every part of the installation",
        permissions: &[
            "system.admin",
            "roles.manage",
            "settings.view",
            "settings.edit",
            "settings.delete",
            "users.list",
            "users.view",
            "users.create",
            "users.edit",
            "users.delete",
            "teams.create",
            "teams.view",
            "teams.edit",
            "teams.delete",
            "teams.manage",
            "team.members.view",
            "team.members.manage",
            "mcp.servers.read",
            "mcp.servers.create",
            "mcp.servers.edit",
            "mcp.servers.delete",
            "mcp.categories.view",
            "mcp.categories.manage",
            "mcp.installations.view",
            "mcp.installations.create",
            "mcp.installations.edit",
            "mcp.installations.delete",
            "mcp.registry.sync",
            "jobs.view",
            "jobs.monitor",
            "jobs.manage",
            "satellites.view",
            "satellites.manage",
            "profile.view",
            "profile.edit",
            "preferences.view",
            "preferences.edit",
        ],
    },
    RoleDefinition {
        id: "global_user",
        name: "Global User",
        description: "A registered user",
        permissions: &[
            "profile.view",
            "profile.edit",
            "teams.create",
            "teams.view",
            "teams.edit",
            "teams.delete",
            "team.members.view",
            "mcp.servers.read",
            "mcp.categories.view",
            "preferences.view",
            "preferences.edit",
        ],
    },
    RoleDefinition {
        id: "team_admin",
        name: "Team Administrator",
        description: "Manages a team, its members and installations",
        permissions: &[
            "teams.view",
            "teams.edit",
            "teams.delete",
            "teams.manage",
            "team.members.view",
            "team.members.manage",
            "team.usage.view",
            "team.cloud_credentials.view",
            "team.cloud_credentials.create",
            "team.cloud_credentials.edit",
            "team.cloud_credentials.delete",
            "mcp.servers.read",
            "mcp.installations.view",
            "mcp.installations.create",
            "mcp.installations.edit",
            "mcp.installations.delete",
            "mcp.installations.stats.view",
        ],
    },
    RoleDefinition {
        id: "team_user",
        name: "Team User",
        description: "A member of a team with read access",
        permissions: &[
            "teams.view",
            "team.members.view",
            "team.usage.view",
            "team.cloud_credentials.view",
            "mcp.servers.read",
            "mcp.installations.view",
        ],
    },
];

/// Whether the code's definition of `role` grants `permission` (team roles are always read
/// from here; a global administrator's team rights too, as upstream does).
pub fn defined_grant(role: &str, permission: &str) -> bool {
    ROLE_DEFINITIONS
        .iter()
        .find(|d| d.id == role)
        .is_some_and(|d| d.permissions.contains(&permission))
}

/// Every permission the code defines, sorted, once each.
pub fn all_permissions() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = ROLE_DEFINITIONS
        .iter()
        .flat_map(|d| d.permissions.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Reading roles and writing their definitions.
#[derive(Clone)]
pub struct RoleService {
    pub(super) db: Database,
}

impl RoleService {
    /// A service over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Every role, by id.
    pub async fn list_roles(&self) -> ServiceResult<Vec<Role>> {
        let mut conn = self.db.read().await?;
        Ok(roles::table
            .order(roles::id.asc())
            .select(Role::as_select())
            .load(&mut conn)
            .await?)
    }

    /// A role by id.
    pub async fn get_role(&self, id: &RoleId) -> ServiceResult<Option<Role>> {
        let mut conn = self.db.conn().await?;
        Ok(roles::table
            .find(id)
            .select(Role::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// Writes [`ROLE_DEFINITIONS`] into `roles` in one statement (re-creating a deleted
    /// built-in role); returns the number of roles written.
    pub async fn sync_roles(&self) -> ServiceResult<usize> {
        let mut conn = self.db.conn().await?;
        sync_roles(&mut conn).await
    }

    /// Whether `role` grants `permission`.
    pub async fn has_permission(&self, role: &RoleId, permission: &str) -> ServiceResult<bool> {
        Ok(self
            .get_role(role)
            .await?
            .is_some_and(|r| r.permissions().any(|p| p == permission)))
    }
}

async fn sync_roles(conn: &mut diesel_async::AsyncPgConnection) -> ServiceResult<usize> {
    let rows: Vec<_> = ROLE_DEFINITIONS
        .iter()
        .map(|d| {
            (
                roles::id.eq(d.id),
                roles::name.eq(d.name),
                roles::description.eq(Some(d.description)),
                roles::permissions.eq(d.permissions.iter().map(|p| Some(*p)).collect::<Vec<_>>()),
                roles::is_system_role.eq(true),
            )
        })
        .collect();
    Ok(diesel::insert_into(roles::table)
        .values(&rows)
        .on_conflict(roles::id)
        .do_update()
        .set((
            roles::name.eq(excluded(roles::name)),
            roles::description.eq(excluded(roles::description)),
            roles::permissions.eq(excluded(roles::permissions)),
            roles::is_system_role.eq(true),
        ))
        .execute(conn)
        .await?)
}

/// The role sync as a post-migration initializer (runs at setup and at every start).
pub struct RoleSync;

impl Initializer for RoleSync {
    fn name(&self) -> &'static str {
        "role sync"
    }

    fn run<'a>(&'a self, pool: &'a LivePool) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut conn = pool.get().await?;
            let written = sync_roles(&mut conn).await?;
            info!(roles = written, "role permissions synced");
            Ok(())
        })
    }
}
