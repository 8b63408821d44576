//! `deploystack-backend settings list|get|set`: manage settings (SMTP, OAuth secrets) before
//! any web UI exists, with the same validation and encryption as the service.
//! `rotate-secret` lives in [`super::rotate_secret`].

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::app::tool_cipher;
use crate::cli::report::UsageError;
use crate::cli::session::ToolSession;
use crate::cli::SettingsCommand;
use crate::config::Config;
use crate::db::Database;
use crate::settings::{groups, key_check, GlobalSettings, SettingsCipher};

/// Runs one settings command; an invalid value is an error (non-zero exit) and changes nothing.
pub async fn run(config: &Config, command: SettingsCommand) -> anyhow::Result<()> {
    super::session::require_setup(config)?;
    let access = match command {
        // It needs connections and files of its own.
        SettingsCommand::RotateSecret => return super::rotate_secret::run(config).await,
        SettingsCommand::List { group } => Access::List { group },
        SettingsCommand::Get { key } => Access::Get { key },
        // Asked for before anything starts, so the prompt is not mixed with log lines.
        SettingsCommand::Set { key, value } => Access::Set {
            value: read_value(&key, value)?,
            key,
        },
    };
    let cipher = tool_cipher(config).await?;
    let session = ToolSession::open(config).await?;
    let database = session.database.clone();
    let outcome = async {
        verify_key(&database, &cipher).await?;
        let settings = GlobalSettings::new(database.clone(), cipher);
        execute(&settings, access).await
    }
    .await;
    session.close().await?;
    outcome
}

/// Refuses to read or write settings with a secret that is not the database's (the same
/// check as the server's start).
async fn verify_key(database: &Database, cipher: &SettingsCipher) -> anyhow::Result<()> {
    use diesel_async::AsyncConnection;

    let mut conn = database.conn().await?;
    let outcome = conn
        .transaction::<_, anyhow::Error, _>(async |conn| {
            key_check::verify_or_record(conn, cipher).await
        })
        .await?;
    outcome.map(|_| ()).map_err(Into::into)
}

/// The value to set: from the command line, or from standard input (`-`, or no value at all:
/// then asked for without echo on a terminal), so a secret need not appear in `ps`.
pub(crate) fn read_value(key: &str, value: Option<String>) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    match value.as_deref() {
        Some("-") => read_line(stdin.lock()),
        Some(_) => Ok(value.unwrap_or_default()),
        None if stdin.is_terminal() => {
            rpassword::prompt_password(format!("{key}: ")).context("cannot read the value")
        }
        None => read_line(stdin.lock()),
    }
}

/// One line without its line ending; no input at all is an error rather than an empty value.
pub(super) fn read_line(mut input: impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    let read = input
        .read_line(&mut line)
        .context("cannot read the value from standard input")?;
    anyhow::ensure!(read > 0, "no value on standard input");
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}

/// A command that reads or writes settings through the service.
enum Access {
    List { group: Option<String> },
    Get { key: String },
    Set { key: String, value: String },
}

async fn execute(settings: &GlobalSettings, access: Access) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match access {
        Access::List { group } => {
            let list = settings.list(group.as_deref()).await?;
            if let Some(group) = group.filter(|_| list.is_empty()) {
                let known: Vec<&str> = groups::ALL.iter().map(|g| g.id).collect();
                return Err(UsageError(format!(
                    "unknown settings group {group:?}; known groups: {}",
                    known.join(", ")
                ))
                .into());
            }
            writeln!(out, "{:<45} {:<8} {:<14} value", "key", "type", "group")?;
            for info in list {
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
        Access::Get { key } => {
            let value = settings
                .get_secret(&key)
                .await?
                .ok_or_else(|| UsageError(format!("setting {key:?} not found")))?;
            writeln!(out, "{}", value.expose_secret())?;
        }
        Access::Set { key, value } => {
            settings.set(&key, &value).await?;
            writeln!(out, "{key} updated")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_without_its_ending_and_no_input_is_an_error() {
        assert_eq!(read_line(&b"s3cret\r\nmore"[..]).expect("line"), "s3cret");
        assert_eq!(read_line(&b"last"[..]).expect("line"), "last");
        assert_eq!(read_line(&b"\n"[..]).expect("empty line"), "");
        assert!(read_line(&b""[..]).is_err());
    }
}
