//! `qdrant-embedded nextest-setup`: a nextest setup script that gives every test process of a
//! run one shared embedded Qdrant, in any workspace, with nothing to copy:
//!
//! ```toml
//! # .config/nextest.toml
//! experimental = ["setup-scripts"]
//! [scripts.setup.qdrant]
//! command = "qdrant-embedded nextest-setup --strict-tenants"
//! [[profile.default.scripts]]
//! filter = "all()"
//! setup = "qdrant"
//! ```
//!
//! A `QDRANT_URL` already set (a real Qdrant) is passed through. Otherwise the server of an
//! earlier run is reused while it answers, else a new one starts, detached, with its data in
//! `<target dir>/qdrant-embedded-shared/` (`CARGO_TARGET_DIR`, else `target/` of the workspace
//! nextest runs in). The URL reaches the tests as `QDRANT_URL` (through `NEXTEST_ENV`).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The API key that exempts the harness's own upkeep from strict-tenant checks.
pub const HARNESS_EXEMPT_KEY: &str = "harness-upkeep";

/// Options of the setup script.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Start the shared server in strict-tenant mode (recommended for tests): unpinned reads of
    /// tenant-scoped collections are refused.
    #[arg(long)]
    pub strict_tenants: bool,
    /// Where the shared server keeps its port, log and data (default: the target dir).
    #[arg(long, env = "QDRANT_EMBEDDED_SHARED_DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Runs the setup script.
pub fn run(args: &SetupArgs) -> anyhow::Result<()> {
    let env_file = std::env::var_os("NEXTEST_ENV")
        .context("NEXTEST_ENV is not set: run this as a nextest setup script")?;
    let url = match std::env::var("QDRANT_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => shared_server(args)?,
    };
    let mut env = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&env_file)
        .with_context(|| format!("opening {}", Path::new(&env_file).display()))?;
    writeln!(env, "QDRANT_URL={url}")?;
    writeln!(env, "QDRANT_EMBEDDED_EXEMPT_KEY={HARNESS_EXEMPT_KEY}")?;
    Ok(())
}

/// The URL of the shared server, started if no live one is recorded.
fn shared_server(args: &SetupArgs) -> anyhow::Result<String> {
    let state = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("qdrant-embedded-shared"),
    };
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    // Concurrent runs of one workspace wait for each other here, so they share one server.
    let lock = File::create(state.join("lock"))?;
    lock.lock().context("locking the shared server's state")?;
    let port_file = state.join("port");
    if let Some(port) = std::fs::read_to_string(&port_file)
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
    {
        if answers(port) {
            return Ok(format!("http://127.0.0.1:{port}"));
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let data = state.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let log = File::create(state.join("server.log"))?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["--port", &port.to_string(), "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: nextest ends the setup script's group when the script is done.
        .process_group(0);
    if args.strict_tenants {
        command.args([
            "--strict-tenants",
            "--tenant-exempt-key",
            HARNESS_EXEMPT_KEY,
        ]);
    }
    command
        .spawn()
        .context("starting the shared embedded Qdrant")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers(port) {
        if Instant::now() > deadline {
            bail!(
                "the shared embedded Qdrant did not start; see {}",
                state.join("server.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(&port_file, port.to_string())?;
    Ok(format!("http://127.0.0.1:{port}"))
}

/// Whether something accepts connections on the loopback port.
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}
