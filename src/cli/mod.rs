//! Command line: `serve` (default), `migrate`, `openapi`, `database-url`, `settings`. The
//! clap types live here; what each subcommand does lives in the submodules.

pub mod commands;
pub mod database_url;
pub mod rotate_secret;
pub mod settings;

use clap::{Parser, Subcommand};

/// DeployStack database backend.
#[derive(Debug, Parser)]
#[command(name = "deploystack-backend", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending migrations to the configured database and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
    /// Print the database URL for the diesel CLI (`export DATABASE_URL=$(...)`); it holds the
    /// password.
    DatabaseUrl,
    /// Read and change global settings (same environment as the server).
    #[command(subcommand)]
    Settings(SettingsCommand),
}

/// `settings` subcommands.
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// List settings (values of encrypted ones are hidden).
    List {
        /// Only this group (e.g. `smtp`).
        #[arg(long)]
        group: Option<String>,
    },
    /// Print one value, decrypted.
    Get {
        /// Setting key, e.g. `smtp.host`.
        key: String,
    },
    /// Validate, encrypt when the setting is secret, and store a value.
    Set {
        /// Setting key, e.g. `smtp.password`.
        key: String,
        /// New value. `-` reads one line from standard input; when omitted, it is asked for
        /// without echo on a terminal, or read from standard input otherwise. Prefer these
        /// for secrets: a value given here shows in `ps` and in the shell history.
        value: Option<String>,
    },
    /// Re-encrypt every encrypted setting with a new encryption secret, read from standard
    /// input (asked twice without echo on a terminal). Restart every server with it after.
    RotateSecret,
}
