//! How a command that failed says so: `error: <what went wrong>` on standard error, like
//! other command-line tools (no timestamp, no log target; `error` in red only on a terminal
//! and without `NO_COLOR`), and its exit code: 2 when the command was used wrongly (a bad
//! argument or value, invalid configuration), 1 when it failed while doing its work.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use crate::config::ConfigError;
use crate::settings::SettingsError;

/// A command used wrongly: a value or argument the command cannot take. Exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for `e`: 2 for usage errors, 1 for failures.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    if is_usage(e) {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// Whether `e` (or what caused it) is the caller's doing rather than a failure.
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause.is::<ConfigError>()
            || matches!(
                cause.downcast_ref::<SettingsError>(),
                Some(
                    SettingsError::InvalidKey(_)
                        | SettingsError::InvalidValue { .. }
                        | SettingsError::NotFound(_)
                        | SettingsError::Declared { .. }
                )
            )
    })
}

/// Writes `error: <e>` (with its causes) to standard error.
pub fn print(e: &anyhow::Error) {
    let stderr = std::io::stderr();
    let colour = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let label = if colour {
        "\u{1b}[1;31merror\u{1b}[0m"
    } else {
        "error"
    };
    let _ = writeln!(stderr.lock(), "{label}: {}", line(e));
}

/// `e` and its causes on one line, each cause once.
pub fn line(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_failures_1() {
        let usage = anyhow::Error::new(SettingsError::InvalidValue {
            key: "smtp.port".into(),
            reason: "\"many\" is not a number".into(),
        });
        assert!(is_usage(&usage));
        assert_eq!(
            line(&usage),
            "invalid value for smtp.port: \"many\" is not a number"
        );
        let wrapped = anyhow::Error::new(UsageError("--limit must be 1 to 1000".into()))
            .context("cannot list");
        assert!(is_usage(&wrapped));
        assert!(!is_usage(&anyhow::anyhow!("connection refused")));
        let nested = anyhow::anyhow!("connection refused").context("cannot reach PostgreSQL");
        assert_eq!(line(&nested), "cannot reach PostgreSQL: connection refused");
    }
}
