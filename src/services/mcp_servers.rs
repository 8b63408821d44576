//! The catalog entries that installations point at (the full catalog API comes later).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{ServiceError, ServiceResult};
use crate::db::models::{McpServerId, McpServerSummary, NewMcpServer};
use crate::db::schema::mcp_servers;
use crate::db::Database;

/// Catalog servers: create, get, delete.
#[derive(Clone)]
pub struct McpServerService {
    db: Database,
}

impl McpServerService {
    /// A service over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Adds a server to the catalog; a taken slug is a `Conflict`.
    pub async fn create_server(&self, new: &NewMcpServer) -> ServiceResult<McpServerSummary> {
        let mut conn = self.db.conn().await?;
        Ok(diesel::insert_into(mcp_servers::table)
            .values(new)
            .returning(McpServerSummary::as_returning())
            .get_result(&mut conn)
            .await?)
    }

    /// A server by id.
    pub async fn get_server(&self, id: &McpServerId) -> ServiceResult<Option<McpServerSummary>> {
        let mut conn = self.db.conn().await?;
        Ok(mcp_servers::table
            .find(id)
            .select(McpServerSummary::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// Removes a server and its installations; `false` when no such server.
    pub async fn delete_server(&self, id: &McpServerId) -> ServiceResult<bool> {
        let mut conn = self.db.conn().await?;
        let n = diesel::delete(mcp_servers::table.find(id))
            .execute(&mut conn)
            .await
            .map_err(ServiceError::from_delete)?;
        Ok(n > 0)
    }
}
