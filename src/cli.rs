//! Command line: `serve` (default), `migrate`, `openapi`.

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
        /// New value.
        value: String,
    },
}
