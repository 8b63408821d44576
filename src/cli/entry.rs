//! The process entry, shared by the server binary and binaries that add compiled plugins
//! (`examples/notes_server.rs`): loads `.env`, sets up logging and runs the chosen
//! subcommand.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::cli::report::{self, UsageError};
use crate::cli::{Cli, Command};
use crate::plugins::Plugin;

/// Longest wait at exit for blocking tasks nobody awaits any more.
const BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the command line with `plugins` compiled in.
pub fn main_with(plugins: Vec<Arc<dyn Plugin>>) -> ExitCode {
    tune_allocator();
    crate::net::raise_descriptor_limit();
    let _ = dotenvy::dotenv();
    if let Err(e) = crate::telemetry::init() {
        let e = anyhow::Error::new(UsageError(format!("invalid configuration: {e}")));
        report::print(&e);
        return report::exit_code(&e);
    }
    let cli = Cli::parse();
    // tokio's own variable still counts when ours is unset (`worker_threads` overrides it).
    let configured = ["WORKER_THREADS", "TOKIO_WORKER_THREADS"]
        .into_iter()
        .find_map(|name| Some((name, std::env::var(name).ok()?)));
    let workers = match worker_threads(configured.as_ref().map(|(n, v)| (*n, v.as_str()))) {
        Ok(workers) => workers,
        Err(e) => {
            let e = anyhow::Error::new(UsageError(format!("invalid configuration: {e}")));
            report::print(&e);
            return report::exit_code(&e);
        }
    };
    // One worker: everything on this thread, so no task, waker or answer ever crosses
    // threads (a one-worker multi-thread runtime still runs `block_on` and the worker on
    // two threads, and pays for cross-thread wake-ups).
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            report::print(&anyhow::Error::new(e).context("cannot start the async runtime"));
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
            // The server reports in its log (text or JSON lines); a command as commands do.
            if serving {
                tracing::error!("{}", report::line(&e));
            } else {
                report::print(&e);
            }
            report::exit_code(&e)
        }
    }
}

/// Most threads `WORKER_THREADS` may ask for.
const MAX_WORKER_THREADS: usize = 1024;

/// The runtime's worker threads: `WORKER_THREADS` (or tokio's `TOKIO_WORKER_THREADS`), else
/// half the cores (at least one).
///
/// Every request waits on PostgreSQL, and one worker thread serves some 70,000 small HTTP
/// requests a second. More workers than the load keeps busy cost CPU instead of saving it:
/// each sleeps and is woken more often, and tasks hop between them (work stealing), so a
/// statement's answer often wakes a task on another thread. On 2 cores shared with
/// PostgreSQL and the clients, 1 worker took 10 % less CPU per request than 2
/// (`cargo bench --bench http`), and a current-thread runtime (used for 1) 15–20 % less than
/// a multi-thread one with 1 worker. The other half of the cores is left to PostgreSQL (the
/// embedded one runs here) and to blocking work (key derivation, DNS).
/// `configured` is the variable that was set, with its value.
fn worker_threads(configured: Option<(&str, &str)>) -> Result<usize, String> {
    match configured.map(|(name, value)| (name, value.trim())) {
        None | Some((_, "")) => Ok(std::thread::available_parallelism()
            .map(|n| n.get() / 2)
            .unwrap_or(1)
            .max(1)),
        Some((name, text)) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_WORKER_THREADS).contains(&n) => Ok(n),
            _ => Err(format!(
                "{name} must be a whole number from 1 to {MAX_WORKER_THREADS}, not {text:?}"
            )),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_default_to_half_the_cores_and_refuse_nonsense() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(worker_threads(None), Ok((cores / 2).max(1)));
        assert_eq!(
            worker_threads(Some(("WORKER_THREADS", ""))),
            Ok((cores / 2).max(1))
        );
        assert_eq!(worker_threads(Some(("WORKER_THREADS", " 3 "))), Ok(3));
        for bad in ["0", "-1", "two", "1.5", "1025"] {
            let e = worker_threads(Some(("TOKIO_WORKER_THREADS", bad))).expect_err(bad);
            assert!(e.starts_with("TOKIO_WORKER_THREADS must be"), "{e}");
        }
    }
}
