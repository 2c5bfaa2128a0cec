//! Tracing setup: one subscriber per process, filtered by `RUST_LOG` (default given by the caller).

use tracing_subscriber::EnvFilter;

/// Installs a formatting subscriber writing to stderr; `RUST_LOG` overrides `default_filter`.
/// A second call (e.g. from another test) is a no-op.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
