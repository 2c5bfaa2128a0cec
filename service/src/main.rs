//! The service binary: settings from flags and environment, then the API and workers until
//! SIGINT/SIGTERM. `service --help` lists every setting.

use anyhow::Context;
use clap::Parser;
use service::configuration::Settings;
use service::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service::telemetry::init("info,sqlx=warn");
    let settings = Settings::parse();
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
