//! What each subcommand does.

use std::sync::Arc;

use crate::app;
use crate::cli::Command;
use crate::config::Config;
use crate::db::{migrations, provision, Database, PgConnector};
use crate::plugins::{Plugin, PluginCatalog};

/// Runs one subcommand to completion with this build's compiled plugins.
pub async fn run(command: Command) -> anyhow::Result<()> {
    run_with(command, crate::plugins::registered::compiled()).await
}

/// Runs one subcommand to completion with `plugins` compiled in.
pub async fn run_with(command: Command, plugins: Vec<Arc<dyn Plugin>>) -> anyhow::Result<()> {
    match command {
        Command::Openapi => {
            // Compiled plugins add operations; folder plugins carry none.
            let catalog = PluginCatalog::load(plugins, None, &Database::new(), None)?;
            print!("{}", crate::api::spec_json_for(&catalog)?);
            Ok(())
        }
        Command::Serve => app::run_with(&Config::from_env()?, plugins).await,
        Command::Migrate => migrate(&Config::from_env()?).await,
        Command::DatabaseUrl => {
            println!("{}", super::database_url::for_config(&Config::from_env()?)?);
            Ok(())
        }
        Command::Settings(command) => super::settings::run(&Config::from_env()?, command).await,
        Command::Jobs(command) => super::jobs::run(&Config::from_env()?, command).await,
        Command::Plugins(command) => {
            super::plugins::run(&Config::from_env()?, command, plugins).await
        }
        Command::Users(command) => super::users::run(&Config::from_env()?, command).await,
    }
}

/// Creates the database if needed and applies pending migrations.
async fn migrate(config: &Config) -> anyhow::Result<()> {
    let (connection, embedded) = app::connection_for_tool(config).await?;
    let missing = connection.missing_variables();
    anyhow::ensure!(
        missing.is_empty(),
        "missing environment variables: {}",
        missing.join(", ")
    );
    let connector = PgConnector::new(&connection, &config.pool)?.without_statement_timeout();
    let outcome = async {
        let conn = provision::connect_creating_database(&connector).await?;
        let (_conn, applied) = migrations::run_pending(conn).await?;
        anyhow::Ok(applied)
    }
    .await;
    if let Some(cluster) = embedded {
        cluster.stop().await?;
    }
    let applied = outcome?;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for version in applied {
        println!("applied {version}");
    }
    Ok(())
}
