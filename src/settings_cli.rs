//! `deploystack-backend settings list|get|set`: manage settings (SMTP, OAuth secrets) before
//! any web UI exists, with the same validation and encryption as the service.

use std::io::Write;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::app::{self, settings_cipher};
use crate::cli::SettingsCommand;
use crate::config::Config;
use crate::db::{Database, LivePool, PgConnector};
use crate::settings::GlobalSettings;
use crate::setup::selection_file::{self, SelectionState};

/// Runs one settings command; an invalid value is an error (non-zero exit) and changes nothing.
pub async fn run(config: &Config, command: SettingsCommand) -> anyhow::Result<()> {
    if !matches!(
        selection_file::read(&config.selection_file()),
        SelectionState::Present(_)
    ) {
        anyhow::bail!(
            "database setup has not been performed yet: start the server and complete setup (POST /api/db/setup) first"
        );
    }
    let cipher = settings_cipher(config).await?;
    let (connection, embedded) = app::connection_for_tool(config).await?;
    let outcome = async {
        let connector = PgConnector::new(&connection, &config.pool)?;
        let database = Database::new();
        database.install(LivePool::new(&connector, &config.pool));
        let settings = GlobalSettings::new(database, cipher);
        execute(&settings, command).await
    }
    .await;
    if let Some(cluster) = embedded {
        cluster.stop().await?;
    }
    outcome
}

async fn execute(settings: &GlobalSettings, command: SettingsCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        SettingsCommand::List { group } => {
            for info in settings.list(group.as_deref()).await? {
                let value = if info.is_encrypted {
                    "<encrypted>".to_owned()
                } else {
                    settings.get_string(&info.key).await?.unwrap_or_default()
                };
                writeln!(
                    out,
                    "{:<45} {:<8} {:<14} {}",
                    info.key,
                    info.kind,
                    info.group_id.unwrap_or_default(),
                    value
                )?;
            }
        }
        SettingsCommand::Get { key } => {
            let value = settings
                .get_secret(&key)
                .await?
                .with_context(|| format!("setting {key:?} not found"))?;
            writeln!(out, "{}", value.expose_secret())?;
        }
        SettingsCommand::Set { key, value } => {
            settings.set(&key, &value).await?;
            writeln!(out, "{key} updated")?;
        }
    }
    Ok(())
}
