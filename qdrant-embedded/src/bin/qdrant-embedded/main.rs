//! `qdrant-embedded`: one embedded Qdrant (gRPC only) for many test processes or for the
//! service's dev default. Stops on Ctrl-C or SIGTERM. `qdrant-embedded nextest-setup` is a
//! nextest setup script that shares one server with a whole test run ([`nextest`]).

mod nextest;

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Qdrant's engine (qdrant-edge) behind Qdrant's gRPC API.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Option<Subcommand>,
    /// gRPC port (Qdrant's default is 6334); 0 picks a free one.
    #[arg(long, env = "QDRANT_EMBEDDED_PORT", default_value_t = 6334)]
    port: u16,
    /// Address to bind; loopback by default.
    #[arg(long, env = "QDRANT_EMBEDDED_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Data directory, reopened on restart. Without it, data lives in a temporary directory
    /// that is removed on exit.
    #[arg(long, env = "QDRANT_EMBEDDED_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// WAL segment size of new collections, and how much of a collection's operation log
    /// accumulates before a checkpoint empties it, in MiB.
    #[arg(long, env = "QDRANT_EMBEDDED_WAL_CAPACITY_MB", default_value_t = qdrant_embedded::DEFAULT_WAL_CAPACITY_MB)]
    wal_capacity_mb: usize,
    /// Strict-tenant mode: refuse reads and deletes by filter of a collection with a tenant
    /// index unless they have a `must` match on its field (for test runs).
    #[arg(long, env = "QDRANT_EMBEDDED_STRICT_TENANTS")]
    strict_tenants: bool,
    /// In strict-tenant mode, requests with this API key are not checked.
    #[arg(
        long,
        env = "QDRANT_EMBEDDED_TENANT_EXEMPT_KEY",
        hide_env_values = true
    )]
    tenant_exempt_key: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Give a nextest run one shared server (as a nextest setup script); see the docs.
    NextestSetup(nextest::SetupArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(format!("info,{}", qdrant_embedded::ENGINE_LOG_DIRECTIVES))
        }))
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let args = Args::parse();
    if let Some(Subcommand::NextestSetup(setup)) = &args.command {
        return nextest::run(setup);
    }
    let config = qdrant_embedded::Config {
        listen: SocketAddr::new(args.host, args.port),
        data_dir: args.data_dir,
        wal_capacity_mb: args.wal_capacity_mb,
        strict_tenants: args.strict_tenants,
        tenant_exempt_key: args.tenant_exempt_key,
    };
    let server = qdrant_embedded::start(config)
        .await
        .context("Failed to start the embedded Qdrant")?;
    tracing::info!(url = %server.url(), "ready");
    shutdown_signal()
        .await
        .context("Failed to wait for a shutdown signal")?;
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
