//! Runs PostgreSQL programs as the cluster's user and keeps the server process tied to ours.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};

use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};
use tokio::sync::watch;

use super::EmbeddedError;

/// The unprivileged identity the cluster runs as, when this process is root.
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
}

/// Name of the system user a root process runs the cluster as.
pub const UNPRIVILEGED_USER: &str = "postgres";

impl RunAs {
    /// `None` when this process is not root (the cluster then runs as ourselves).
    pub fn for_current_process() -> Result<Option<Self>, EmbeddedError> {
        if !Uid::effective().is_root() {
            return Ok(None);
        }
        match nix::unistd::User::from_name(UNPRIVILEGED_USER) {
            Ok(Some(user)) => Ok(Some(Self {
                uid: user.uid,
                gid: user.gid,
            })),
            _ => Err(EmbeddedError::NoUnprivilegedUser(UNPRIVILEGED_USER.into())),
        }
    }

    /// Gives `path` to the cluster's user.
    pub fn chown(&self, path: &std::path::Path) -> Result<(), EmbeddedError> {
        nix::unistd::chown(path, Some(self.uid), Some(self.gid)).map_err(|e| EmbeddedError::Io {
            context: format!("cannot chown {}", path.display()),
            source: e.into(),
        })
    }
}

/// The only variables of ours PostgreSQL programs get. Everything else (the encryption secret,
/// `POSTGRES_PASSWORD`, tokens of the operator's shell) stays out of the server's environment,
/// which any superuser session can read through `pg_read_file('/proc/self/environ')`.
const PASSED_VARIABLES: [&str; 2] = ["PATH", "TZ"];

/// A command that runs as `run_as` (when set) in its own process group, so a terminal's
/// Ctrl-C reaches only us and we stop PostgreSQL after our own connections are closed.
/// Its environment is cleared down to [`PASSED_VARIABLES`] and a UTF-8 locale.
pub fn command(program: &std::path::Path, run_as: Option<RunAs>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("LC_ALL", "C.UTF-8");
    for name in PASSED_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    cmd.process_group(0).stdin(Stdio::null());
    cmd
}

/// Runs a short-lived program (initdb) to completion, returning its combined output on failure.
pub fn run_to_completion(mut cmd: Command, what: &str) -> Result<(), EmbeddedError> {
    let output = cmd
        .output()
        .map_err(EmbeddedError::io(format!("cannot run {what}")))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    Err(EmbeddedError::Failed(format!(
        "{what} failed ({}): {}",
        output.status,
        essence(&text)
    )))
}

/// What a PostgreSQL tool's output says went wrong: its `error:`/`FATAL:` lines, or else its
/// last 2000 bytes (never the banner it prints before failing).
pub fn essence(text: &str) -> String {
    let errors: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("error:") || l.contains("FATAL:") || l.starts_with("ERROR:"))
        .collect();
    if errors.is_empty() {
        tail(text, 2000).to_owned()
    } else {
        errors.join("; ")
    }
}

/// The last `max` bytes of `text`, starting at a line (or, for one long line, a character)
/// boundary so a message is never shown cut in the middle.
pub fn tail(text: &str, max: usize) -> &str {
    let text = text.trim_end();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if start > 0 {
        if let Some(newline) = text[start..].find('\n') {
            if newline + 1 < text.len() - start {
                start += newline + 1;
            }
        }
    }
    text[start..].trim()
}

/// Spawns a long-running server from a dedicated thread that then waits for it.
///
/// The child gets `PR_SET_PDEATHSIG`: the kernel sends it SIGQUIT when the spawning thread
/// ends. That thread only ends after the child exited or when this whole process dies, so a
/// crashed or killed backend never leaves an orphaned PostgreSQL behind. Returns the pid and
/// a channel that receives the exit status.
pub fn spawn_supervised(
    mut cmd: Command,
) -> Result<(u32, watch::Receiver<Option<ExitStatus>>), EmbeddedError> {
    // SAFETY: the closure runs between fork and exec and only makes the prctl system call,
    // which is async-signal-safe and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGQUIT).map_err(std::io::Error::from)
        });
    }
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (exit_tx, exit_rx) = watch::channel(None);
    std::thread::Builder::new()
        .name("postgres-supervisor".into())
        .spawn(move || match cmd.spawn() {
            Err(e) => {
                let _ = started_tx.send(Err(e));
            }
            Ok(mut child) => {
                let _ = started_tx.send(Ok(child.id()));
                if let Ok(status) = child.wait() {
                    let _ = exit_tx.send(Some(status));
                }
            }
        })
        .map_err(EmbeddedError::io("cannot start the supervisor thread"))?;
    let pid = started_rx
        .recv()
        .map_err(|_| EmbeddedError::Failed("the supervisor thread died".into()))?
        .map_err(EmbeddedError::io("cannot start postgres"))?;
    Ok((pid, exit_rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_starts_at_a_line() {
        let text = "first line\nsecond line\nthird\n";
        assert_eq!(tail(text, 14), "third");
        assert_eq!(tail(text, 100), "first line\nsecond line\nthird");
        assert_eq!(tail("one long line", 4), "line");
    }
}
