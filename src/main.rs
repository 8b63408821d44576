//! Entry point: loads `.env`, sets up logging and runs the chosen subcommand.

use clap::Parser;
use deploystack_backend::cli::{Cli, Command};

/// Longest wait at exit for blocking tasks nobody awaits any more.
const BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> std::process::ExitCode {
    tune_allocator();
    let _ = dotenvy::dotenv();
    if let Err(e) = deploystack_backend::telemetry::init() {
        // No logger yet: the error goes straight to stderr.
        eprintln!("invalid configuration: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let serving = matches!(command, Command::Serve);
    let outcome = runtime.block_on(deploystack_backend::cli::commands::run(command));
    // Everything the command waited for is done; a blocking task still running (a DNS lookup
    // of a background reconnect) must not hold the exit back.
    runtime.shutdown_timeout(BLOCKING_GRACE);
    match outcome {
        Ok(()) if serving => {
            tracing::info!("deploystack-backend stopped");
            std::process::ExitCode::SUCCESS
        }
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
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
