//! `deploystack-backend users create-admin|list`: the first administrator of a headless
//! install (no browser needed), and who has an account.

use std::fmt::Write as _;

use anyhow::Context;
use secrecy::SecretString;

use crate::app::tool_cipher;
use crate::auth::{Accounts, AuthError, Registration};
use crate::cli::report::UsageError;
use crate::cli::session::ToolSession;
use crate::cli::UsersCommand;
use crate::config::Config;
use crate::services::UserService;
use crate::settings::GlobalSettings;

/// Runs one users command.
pub async fn run(config: &Config, command: UsersCommand) -> anyhow::Result<()> {
    super::session::require_setup(config)?;
    // Asked for before anything starts, so the prompt is not mixed with log lines.
    let password = match &command {
        UsersCommand::CreateAdmin { .. } => Some(SecretString::from(super::settings::read_value(
            "password", None,
        )?)),
        UsersCommand::List { .. } => None,
    };
    let cipher = tool_cipher(config).await?;
    let session = ToolSession::open(config).await?;
    let database = session.database.clone();
    let outcome = async {
        match command {
            UsersCommand::CreateAdmin {
                username,
                email,
                first_name,
                last_name,
            } => {
                let settings = GlobalSettings::new(database.clone(), cipher);
                let accounts = Accounts::new(database.clone(), settings, &config.accounts);
                let form = Registration {
                    username,
                    email,
                    password: password.context("no password")?,
                    first_name,
                    last_name,
                };
                let created = accounts.create_admin(form).await.map_err(explain)?;
                Ok(format!(
                    "created the administrator {} ({}), id {}\n",
                    created.user.username, created.user.email, created.user.id
                ))
            }
            UsersCommand::List { limit } => list(&UserService::new(database.clone()), limit).await,
        }
    }
    .await;
    session.close().await?;
    print!("{}", outcome?);
    Ok(())
}

/// An account error as one line naming what to change.
fn explain(e: AuthError) -> anyhow::Error {
    match e {
        AuthError::Invalid(problems) => UsageError(
            problems
                .iter()
                .map(|p| format!("{} {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .into(),
        e @ (AuthError::EmailTaken | AuthError::UsernameTaken) => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}

async fn list(users: &UserService, limit: i64) -> anyhow::Result<String> {
    if !(1..=1000).contains(&limit) {
        return Err(UsageError("--limit must be 1 to 1000".into()).into());
    }
    let mut out = String::new();
    writeln!(
        out,
        "{:<17} {:<24} {:<32} {:<13} created",
        "id", "username", "email", "role"
    )?;
    for user in users.list_users(limit, 0).await? {
        writeln!(
            out,
            "{:<17} {:<24} {:<32} {:<13} {}",
            user.id.as_str(),
            user.username,
            user.email,
            user.role_id.as_ref().map_or("-", |r| r.as_str()),
            user.created_at.format("%Y-%m-%d %H:%M")
        )?;
    }
    Ok(out)
}
