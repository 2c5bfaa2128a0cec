//! Real processes to break in fault tests: [`PgServer`], a PostgreSQL server of a test's own
//! that the test may stop, start and restart while the shared server keeps serving every other
//! test.
//!
//! ```no_run
//! # fn demo() -> Result<(), harness::faults::FaultError> {
//! let server = harness::faults::PgServer::start()?; // initdb in a temporary folder, a free port
//! let url = server.url(); // point the service under test here
//! server.stop()?; // every connection drops, new ones are refused
//! server.start_again()?; // same data, same port
//! # Ok(()) }
//! ```
//!
//! The server binaries come from `PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`
//! (Debian's layout). Run as root, the server runs as the `postgres` user (PostgreSQL refuses
//! root).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a private server could not be created, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "no PostgreSQL server binaries (initdb, pg_ctl): set PG_BINDIR to the folder holding them"
    )]
    NoBinaries,
    /// A command could not be run.
    #[error("running {command}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A command failed.
    #[error("{command} failed: {output}")]
    Failed {
        /// The command.
        command: String,
        /// What it printed.
        output: String,
    },
    /// The temporary folder or the port could not be had.
    #[error("preparing the server: {0}")]
    Io(#[from] std::io::Error),
}

/// A private PostgreSQL server (trust authentication, user `postgres`), stopped and removed on
/// drop.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PgServer {
    /// Creates and starts a server (a few seconds).
    pub fn start() -> Result<Self, FaultError> {
        let bin = bindir()?;
        let dir = tempfile::Builder::new().prefix("harness-pg-").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let server = Self { dir, bin, port };
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.dir.path()))?;
        }
        let data = server.data();
        server.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        server.start_again()?;
        Ok(server)
    }

    /// The server's URL (its `postgres` database).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`): every
    /// connection drops and new ones are refused until [`PgServer::start_again`].
    pub fn stop(&self) -> Result<(), FaultError> {
        self.ctl(&["stop", "-m", "immediate", "-w", "-t", "60"])
    }

    /// Starts the stopped server on the same data and port, waiting until it accepts
    /// connections.
    pub fn start_again(&self) -> Result<(), FaultError> {
        self.ctl(&["start", "-w", "-t", "60"])
    }

    /// Restarts the server (every connection drops), waiting until it accepts connections.
    pub fn restart(&self) -> Result<(), FaultError> {
        self.ctl(&["restart", "-m", "fast", "-w", "-t", "60"])
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn ctl(&self, args: &[&str]) -> Result<(), FaultError> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let log = log.to_string_lossy();
        let data = self.data();
        let mut all = vec!["-D", &data, "-l", &log, "-o", &options];
        all.extend_from_slice(args);
        self.pg("pg_ctl", &all)
    }

    fn pg(&self, program: &str, args: &[&str]) -> Result<(), FaultError> {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        run(command.args(args).current_dir(self.dir.path()))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn run(command: &mut Command) -> Result<(), FaultError> {
    let shown = format!("{command:?}");
    let output = command.output().map_err(|source| FaultError::Spawn {
        command: shown.clone(),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(FaultError::Failed {
        command: shown,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
    })
}

/// `PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`.
fn bindir() -> Result<PathBuf, FaultError> {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| FaultError::NoBinaries)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| Path::new(bin).join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(FaultError::NoBinaries)
}
