//! What the database subcommands (`settings`, `jobs`) share: refuse before setup, reach the
//! configured database (or the embedded cluster, started or attached) with a small pool,
//! and release it all at the end.

use crate::app;
use crate::config::{Config, ConnectionTarget, PostgresSource};
use crate::db::{Database, LivePool, PgConnector};
use crate::embedded_pg::RunningPostgres;
use crate::setup::selection_file::{self, SelectionState};

/// Fails with the next step to take when setup has not been performed.
pub fn require_setup(config: &Config) -> anyhow::Result<()> {
    if !matches!(
        selection_file::read(&config.selection_file()),
        SelectionState::Present(_)
    ) {
        anyhow::bail!(
            "database setup has not been performed yet: start the server and complete setup (POST /api/db/setup) first"
        );
    }
    Ok(())
}

/// A pool on the configured database for one short command.
pub struct ToolSession {
    /// The pool handle.
    pub database: Database,
    /// The application's credentials (for work that needs a session of its own).
    pub connector: PgConnector,
    /// With the embedded cluster, its superuser: what may create plugin roles.
    pub role_admin: Option<ConnectionTarget>,
    embedded: Option<RunningPostgres>,
}

impl ToolSession {
    /// Connects as the server would (starting the embedded cluster when no server runs it).
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let (connection, embedded) = app::connection_for_tool(config).await?;
        // One short command: no idle connection is kept, so none is being opened in the
        // background while the embedded cluster stops (that attempt would log a failure).
        let mut pool_settings = config.pool.clone();
        pool_settings.min_idle = 0;
        let role_admin = match (&config.postgres, &embedded) {
            (_, Some(cluster)) => Some(cluster.superuser_connection(&connection.database)),
            (PostgresSource::Embedded, None) => crate::embedded_pg::stored_superuser(
                &config.persistent_data_dir.join("postgres"),
                &connection.database,
            ),
            _ => config.plugins.role_admin.clone(),
        };
        let connector = match PgConnector::new(&connection, &pool_settings) {
            Ok(connector) => connector,
            Err(e) => {
                if let Some(cluster) = embedded {
                    cluster.stop().await?;
                }
                return Err(e.into());
            }
        };
        let database = Database::new();
        database.install(LivePool::new(&connector, &pool_settings));
        Ok(Self {
            database,
            connector,
            role_admin,
            embedded,
        })
    }

    /// Closes the pool and stops a cluster this command started.
    pub async fn close(self) -> anyhow::Result<()> {
        self.database.close();
        if let Some(cluster) = self.embedded {
            cluster.stop().await?;
        }
        Ok(())
    }
}
