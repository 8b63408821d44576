//! Entry point: loads `.env`, sets up logging and runs the chosen subcommand.

use clap::Parser;
use deploystack_backend::cli::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    deploystack_backend::telemetry::init();
    let cli = Cli::parse();
    match deploystack_backend::commands::run(cli.command.unwrap_or(Command::Serve)).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
