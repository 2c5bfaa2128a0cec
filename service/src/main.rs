//! The service binary: settings from flags and environment, then the API and workers until
//! SIGINT/SIGTERM. `service --help` lists every setting.

use anyhow::Context;
use clap::Parser;
use service::configuration::Settings;
use service::startup::Application;

// mimalloc for Rust's allocations and tree-sitter's (below): chunking and request handling
// allocate many small objects, and glibc's malloc cost about 8 % of chunking.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // SAFETY: nothing has used tree-sitter yet; the chunker only runs once the app is built.
    unsafe { service::index::chunk::use_mimalloc_for_tree_sitter() };
    let settings = Settings::parse();
    service::telemetry::init(&service::telemetry::default_filter(), settings.log.format);
    let app = Application::build(settings)
        .await
        .context("the service could not start")?;
    let report = app
        .run_until_stopped()
        .await
        .context("the service stopped abnormally")?;
    tracing::info!(
        finished = report.finished,
        released = report.released,
        "bye"
    );
    Ok(())
}
