//! MCP server installations in teams.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{ServiceError, ServiceResult};
use crate::db::models::{Installation, InstallationId, NewInstallation, TeamId};
use crate::db::schema::mcp_server_installations as installations;
use crate::db::Database;

/// Installations: create, list, get, delete.
#[derive(Clone)]
pub struct McpInstallationService {
    db: Database,
}

impl McpInstallationService {
    /// A service over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Installs a catalog server in a team; `NotFound` for an unknown team, server or user.
    pub async fn create_installation(&self, new: &NewInstallation) -> ServiceResult<Installation> {
        let mut conn = self.db.conn().await?;
        Ok(diesel::insert_into(installations::table)
            .values(new)
            .returning(Installation::as_returning())
            .get_result(&mut conn)
            .await?)
    }

    /// An installation by id.
    pub async fn get_installation(
        &self,
        id: &InstallationId,
    ) -> ServiceResult<Option<Installation>> {
        let mut conn = self.db.conn().await?;
        Ok(installations::table
            .find(id)
            .select(Installation::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// A team's installations, by name.
    pub async fn list_team_installations(&self, team: &TeamId) -> ServiceResult<Vec<Installation>> {
        let mut conn = self.db.read().await?;
        Ok(installations::table
            .filter(installations::team_id.eq(team))
            .order((
                installations::installation_name.asc(),
                installations::id.asc(),
            ))
            .select(Installation::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Uninstalls (user configurations, instances, tool metadata and tokens go with it);
    /// `false` when no such installation.
    pub async fn delete_installation(&self, id: &InstallationId) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::delete(installations::table.find(id))
            .execute(&mut conn)
            .await
            .map_err(ServiceError::from_delete)?;
        Ok(n > 0)
    }
}
