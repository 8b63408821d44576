//! Logging setup on stderr, filtered by `RUST_LOG` (default `info`), in the format `LOG_FORMAT`
//! names: unset, empty or `text` for human-readable lines, `json` for one JSON object per
//! line (for log shippers). Any other value is refused, like every other invalid setting,
//! rather than silently logging in a format nobody asked for.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Variable choosing the log format.
pub const LOG_FORMAT_VAR: &str = "LOG_FORMAT";

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (tracing's default format).
    Text,
    /// One JSON object per line, span fields (request id, route, …) included.
    Json,
}

/// `LOG_FORMAT` has a value that names no format.
#[derive(Debug, thiserror::Error)]
#[error("{LOG_FORMAT_VAR} must be `text` or `json` (or unset for `text`), not `{0}`")]
pub struct InvalidLogFormat(pub String);

impl LogFormat {
    /// The format `value` of `LOG_FORMAT` names (`None`: unset).
    pub fn parse(value: Option<&str>) -> Result<Self, InvalidLogFormat> {
        match value.map(str::trim) {
            None | Some("" | "text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(InvalidLogFormat(other.to_owned())),
        }
    }
}

/// The subscriber logging in `format` to `writer`; tests pass their own writer.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().with_ansi(false).finish()),
    }
}

/// Installs the global subscriber once (later calls, in tests, are ignored) and sends panic
/// reports through it, so a JSON log stays JSON and a panic in a request carries its request
/// id. Fails, before logging anything, when `LOG_FORMAT` is invalid.
pub fn init() -> Result<(), InvalidLogFormat> {
    let value = std::env::var(LOG_FORMAT_VAR).ok();
    let format = LogFormat::parse(value.as_deref())?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if subscriber(format, filter, std::io::stderr)
        .try_init()
        .is_ok()
    {
        let fallback = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !tracing::enabled!(tracing::Level::ERROR) {
                return fallback(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(panic = message, location, "panicked");
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_values() {
        assert_eq!(LogFormat::parse(None).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("")).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("text")).ok(), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("json")).ok(), Some(LogFormat::Json));
        let err = LogFormat::parse(Some("xml")).expect_err("refused");
        assert!(err.to_string().contains("LOG_FORMAT"));
        assert!(err.to_string().contains("xml"));
    }
}
