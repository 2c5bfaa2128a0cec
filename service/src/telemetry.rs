//! Tracing setup: one subscriber per process writing to stdout, filtered by `RUST_LOG` (default
//! given by the caller), as text or as JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The service's filter when `RUST_LOG` is unset: `info`, SQL statements only when slow or
/// failing, and without the embedded Qdrant engine's two start-up warnings about settings it
/// gives no way to make (see `qdrant_embedded::ENGINE_LOG_DIRECTIVES`).
pub fn default_filter() -> String {
    format!("info,sqlx=warn,{}", qdrant_embedded::ENGINE_LOG_DIRECTIVES)
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stdout is a terminal and `NO_COLOR` is unset.
    #[default]
    Text,
    /// One JSON object per line, with the current span and the list of enclosing spans (their
    /// fields, e.g. `request_id`), for log collectors.
    Json,
}

/// Installs a formatting subscriber writing to stdout; `RUST_LOG` overrides `default_filter`.
/// A second call (e.g. from another test) is a no-op.
pub fn init(default_filter: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(use_colour()).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// Colour codes only for a person at a terminal: a file, a pipe or a collector gets plain text.
fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
