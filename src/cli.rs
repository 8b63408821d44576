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
}
