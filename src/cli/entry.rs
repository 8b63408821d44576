//! The process entry, shared by the server binary and binaries that add compiled plugins
//! (`examples/notes_server.rs`): loads `.env`, sets up logging and runs the chosen
//! subcommand.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::plugins::Plugin;

/// Longest wait at exit for blocking tasks nobody awaits any more.
const BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the command line with `plugins` compiled in.
pub fn main_with(plugins: Vec<Arc<dyn Plugin>>) -> ExitCode {
    tune_allocator();
    let _ = dotenvy::dotenv();
    if let Err(e) = crate::telemetry::init() {
        // No logger yet: the error goes straight to stderr.
        eprintln!("invalid configuration: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let serving = matches!(command, Command::Serve);
    let outcome = runtime.block_on(crate::cli::commands::run_with(command, plugins));
    // Everything the command waited for is done; a blocking task still running (a DNS lookup
    // of a background reconnect) must not hold the exit back.
    runtime.shutdown_timeout(BLOCKING_GRACE);
    match outcome {
        Ok(()) if serving => {
            tracing::info!("deploystack-backend stopped");
            ExitCode::SUCCESS
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Keeps glibc's heap lean for a small service: two arenas instead of eight per core, and a
/// fixed mmap threshold, so the one large short-lived allocation at start (scrypt's 16 MiB
/// key derivation) is returned to the system instead of raising the threshold and leaving
/// later allocations stranded on the heap. Measured with `cargo bench --bench http`.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it runs before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
