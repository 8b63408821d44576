//! `deploystack-backend plugins ...`: which plugins this build and `PLUGINS_PATH` load, how
//! far their migrations are, and applying them without starting the server.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::cli::session::{require_setup, ToolSession};
use crate::cli::PluginsCommand;
use crate::config::Config;
use crate::db::{Database, PgConnector};
use crate::plugins::{migrate, provision, Plugin, PluginCatalog, PluginMigrator};

/// Runs one plugins command against the configured database.
pub async fn run(
    config: &Config,
    command: PluginsCommand,
    compiled: Vec<Arc<dyn Plugin>>,
) -> anyhow::Result<()> {
    require_setup(config)?;
    let session = ToolSession::open(config).await?;
    let outcome = execute(config, &session, command, compiled).await;
    session.close().await?;
    print!("{}", outcome?);
    Ok(())
}

async fn execute(
    config: &Config,
    session: &ToolSession,
    command: PluginsCommand,
    compiled: Vec<Arc<dyn Plugin>>,
) -> anyhow::Result<String> {
    let catalog = Arc::new(PluginCatalog::load(
        compiled,
        config.plugins.path.as_deref(),
        &session.database,
        None,
    )?);
    match command {
        PluginsCommand::List => list(&catalog, &session.database).await,
        PluginsCommand::Migrate => {
            // The core's pending migrations first: plugin migrations build on them.
            let conn = session
                .connector
                .without_statement_timeout()
                .connect()
                .await?;
            let (_conn, core) = crate::db::migrations::run_pending(conn).await?;
            let admin = session
                .role_admin
                .as_ref()
                .map(|target| PgConnector::new(target, &config.pool))
                .transpose()?;
            let migrator = PluginMigrator::new(
                catalog.clone(),
                session.connector.clone(),
                admin,
                &config.plugins,
            );
            let applied = migrator.run().await?;
            let mut out = String::new();
            for version in core {
                writeln!(out, "applied core migration {version}")?;
            }
            if applied.is_empty() {
                writeln!(out, "plugin migrations are up to date")?;
            }
            for a in applied {
                writeln!(out, "applied {} {}", a.plugin, a.migration)?;
            }
            Ok(out)
        }
    }
}

/// One line per plugin: id, version, kind, migrations applied of shipped, isolation.
async fn list(catalog: &PluginCatalog, db: &Database) -> anyhow::Result<String> {
    let mut conn = db.conn().await?;
    let mut out = String::new();
    if catalog.is_empty() {
        writeln!(
            out,
            "no plugins (compiled plugins: none registered; PLUGINS_PATH: unset or empty)"
        )?;
        return Ok(out);
    }
    writeln!(
        out,
        "{:<24} {:<10} {:<9} {:<11} isolation",
        "id", "version", "kind", "migrations"
    )?;
    let mut unisolated = Vec::new();
    for plugin in catalog.plugins() {
        let applied = migrate::recorded(&mut conn, plugin.id.as_str()).await?;
        let schema = plugin.id.schema();
        let isolation = match provision::schema_owner(&mut conn, &schema).await? {
            None => "not provisioned",
            Some(owner) if owner == schema => "roles",
            Some(_) => {
                unisolated.push(plugin.id.as_str());
                "convention"
            }
        };
        writeln!(
            out,
            "{:<24} {:<10} {:<9} {:<11} {}",
            plugin.id.as_str(),
            plugin.plugin.version(),
            plugin.plugin.kind().as_str(),
            format!("{}/{}", applied.len(), plugin.migrations.len()),
            isolation
        )?;
    }
    if !unisolated.is_empty() {
        writeln!(
            out,
            "\nWARNING: {} isolated by naming only (convention): their SQL, folder plugins' migrations included, runs with the core's rights and can read or change any core table. Give the database role CREATEROLE (or use the embedded PostgreSQL) so each plugin gets a role of its own.",
            unisolated.join(", ")
        )?;
    }
    Ok(out)
}
