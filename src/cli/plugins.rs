//! `deploystack-backend plugins ...`: which plugins this build and `PLUGINS_PATH` load, how
//! far their migrations are, and applying them without starting the server.

use std::fmt::Write as _;
use std::sync::Arc;

use diesel::sql_types::Text;
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::RunQueryDsl;

use crate::cli::session::{require_setup, ToolSession};
use crate::cli::PluginsCommand;
use crate::config::Config;
use crate::db::{Database, PgConnector};
use crate::plugins::{migrate, Plugin, PluginCatalog, PluginMigrator};

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
            let admin = session
                .role_admin
                .as_ref()
                .map(|target| PgConnector::new(target, &config.pool))
                .transpose()?;
            let migrator =
                PluginMigrator::new(catalog.clone(), admin, config.plugins.allow_convention);
            let mut conn = session.database.conn().await?;
            let applied = migrator.run_on(&mut conn).await?;
            let mut out = String::new();
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

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = Text)]
    owner: String,
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
    for plugin in catalog.plugins() {
        let applied = migrate::recorded(&mut conn, plugin.id.as_str()).await?;
        let schema = plugin.id.schema();
        let owner: Option<Owner> = diesel::sql_query(
            "SELECT r.rolname::text AS owner FROM pg_namespace n \
             JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = $1",
        )
        .bind::<Text, _>(&schema)
        .get_result(&mut conn)
        .await
        .optional()?;
        let isolation = match owner {
            None => "not provisioned",
            Some(o) if o.owner == schema => "roles",
            Some(_) => "convention",
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
    Ok(out)
}
