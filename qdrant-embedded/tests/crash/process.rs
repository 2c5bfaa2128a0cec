//! The `qdrant-embedded` binary as a real child process: started on a data directory, waited
//! for until it logs `ready`, then killed with SIGKILL or stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use qdrant_client::Qdrant;

/// How long a start may take before the test gives up (a cold debug binary reopening many
/// collections is slow on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `qdrant-embedded` process. Dropping it kills the process.
pub struct Server {
    child: Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Start the binary on `data_dir` with a free port and wait until it is ready.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_qdrant-embedded"))
            .arg("--port")
            .arg("0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            // A normal start: the binary's own log filter, no colours.
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("failed to spawn qdrant-embedded")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(read_lines(stdout, Arc::clone(&lines), ready_tx.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(read_lines(stderr, Arc::clone(&lines), ready_tx));
        }
        let mut server = Self {
            child,
            url: String::new(),
            lines,
            readers,
        };
        server.url = server.wait_ready(&ready_rx)?;
        Ok(server)
    }

    fn wait_ready(&mut self, lines: &Receiver<String>) -> anyhow::Result<String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(" ready ") => {
                    let url = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("url="))
                        .with_context(|| format!("no url in the ready line: {line}"))?;
                    return Ok(url.to_owned());
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    anyhow::bail!("qdrant-embedded not ready in time:\n{}", self.output())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    anyhow::bail!(
                        "qdrant-embedded exited ({status}) before it was ready:\n{}",
                        self.output()
                    )
                }
            }
        }
    }

    pub fn client(&self) -> anyhow::Result<Qdrant> {
        Ok(Qdrant::from_url(&self.url).build()?)
    }

    /// Everything the process printed so far, stdout and stderr interleaved by arrival.
    pub fn output(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill(mut self) -> anyhow::Result<String> {
        self.child
            .kill()
            .context("failed to kill qdrant-embedded")?;
        self.child.wait()?;
        Ok(self.finish())
    }

    /// SIGTERM, then wait for the graceful shutdown to end.
    pub fn stop(mut self) -> anyhow::Result<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("failed to run kill -TERM")?;
        anyhow::ensure!(status.success(), "kill -TERM failed: {status}");
        let exit = self.child.wait()?;
        let output = self.finish();
        anyhow::ensure!(
            exit.success(),
            "qdrant-embedded exited with {exit}:\n{output}"
        );
        Ok(output)
    }

    /// Join the readers (the pipes are closed once the process is gone) and return the output.
    fn finish(&mut self) -> String {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.output()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.finish();
    }
}

fn read_lines(
    pipe: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    ready: mpsc::Sender<String>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line.clone());
            // The receiver is gone once the server is ready; keep draining the pipe anyway.
            let _ = ready.send(line);
        }
    })
}
