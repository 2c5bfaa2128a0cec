//! `--processes N`: the crash scenario's workers run in N processes of their own (this binary,
//! [`super::child`]), killed with SIGKILL at random moments (so mid-claim, mid-job or
//! mid-commit) and restarted, as a process crash and a supervisor's restart do in production.
//! A process whose job stalls hangs whole; it is replaced and left to make its late completion
//! attempt. What the processes measure comes back as [`Event`] lines on their stdout.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::ValueEnum as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::report::Invariant;
use crate::scenarios::engine::Engine;
use crate::stats::Event;

/// Time between two kills: random within this range.
const KILL_EVERY_MS: std::ops::Range<u64> = 100..300;
/// How long a hung process may take for its late attempt once the runs are done.
const HUNG_GRACE: Duration = Duration::from_secs(15);
/// How long the sessions of killed processes may take to end.
const SESSION_GRACE: Duration = Duration::from_secs(10);

/// The worker processes, until [`Supervisor::finish`].
pub struct Supervisor {
    task: JoinHandle<Summary>,
}

/// What became of the processes.
struct Summary {
    started: u64,
    exited: u64,
}

/// One worker process.
struct Proc {
    id: u64,
    child: Child,
    /// Held open: the process exits when it closes (see [`super::child`]).
    _stdin: Option<ChildStdin>,
}

/// How to start a worker process.
struct Launcher {
    exe: std::path::PathBuf,
    args: Vec<String>,
    database_url: String,
    engine: Engine,
    hung: mpsc::UnboundedSender<u64>,
    readers: Vec<JoinHandle<()>>,
    next_id: u64,
}

impl Supervisor {
    /// Starts `n` worker processes on `engine`'s queue and the task that kills and replaces them
    /// until the engine stops.
    pub fn start(ctx: &Context, engine: &Engine, n: u32) -> anyhow::Result<Self> {
        // The running image itself, not the path it was started from: a rebuild or an upgrade may
        // have replaced the file since.
        let exe = match std::path::Path::new("/proc/self/exe") {
            p if p.exists() => p.to_path_buf(),
            _ => std::env::current_exe().context("cannot find this program to re-run it")?,
        };
        let per_process = ctx.args.workers.div_ceil(n).max(1);
        let sabotage = engine
            .sabotage()
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_else(|| "none".to_owned());
        let (hung_tx, hung_rx) = mpsc::unbounded_channel();
        let launcher = Launcher {
            exe,
            args: vec![
                "--worker-of".to_owned(),
                engine.queue().id().as_str().to_owned(),
                "--workers".to_owned(),
                per_process.to_string(),
                "--pool-size".to_owned(),
                ctx.args.pool_size.to_string(),
                "--sabotage".to_owned(),
                sabotage,
            ],
            database_url: ctx.args.database_url.clone(),
            engine: engine.clone(),
            hung: hung_tx,
            readers: Vec::new(),
            next_id: 0,
        };
        let task = tokio::spawn(supervise(launcher, n as usize, hung_rx));
        Ok(Self { task })
    }

    /// Once the engine stopped: ends every process, waits for the hung ones' late attempts and
    /// for the killed ones' sessions, and checks that nothing was left behind.
    pub async fn finish(self, ctx: &Context) -> Invariant {
        let summary = match self.task.await {
            Ok(summary) => summary,
            Err(err) => {
                return Invariant::check(
                    "killed worker processes left nothing behind",
                    false,
                    format!("the supervisor failed: {err}"),
                )
            }
        };
        // A killed process's session ends when the server notices the closed socket, after the
        // statement it was running: until then that statement may still commit.
        let started = Instant::now();
        let sessions = loop {
            match ctx.worker_sessions().await {
                Ok(0) => break Ok(0),
                Ok(n) if started.elapsed() >= SESSION_GRACE => break Ok(n),
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(err) => break Err(err),
            }
        };
        let waited = started.elapsed().as_millis();
        match sessions {
            Ok(open) => Invariant::check(
                "killed worker processes left nothing behind",
                open == 0 && summary.exited == summary.started,
                format!(
                    "{} of {} worker processes exited; {open} of their sessions still open \
                     {waited} ms after",
                    summary.exited, summary.started
                ),
            ),
            Err(err) => Invariant::check(
                "killed worker processes left nothing behind",
                false,
                format!("cannot count their sessions: {err}"),
            ),
        }
    }
}

/// Keeps `n` processes running, kills one at random moments and replaces it, replaces hung
/// ones; once the engine stops, kills the rest and waits for every process and its events.
async fn supervise(
    mut launcher: Launcher,
    n: usize,
    mut hung_rx: mpsc::UnboundedReceiver<u64>,
) -> Summary {
    let stop = launcher.engine.stop_token();
    let mut live: Vec<Proc> = Vec::new();
    let mut hung: Vec<Proc> = Vec::new();
    let mut summary = Summary {
        started: 0,
        exited: 0,
    };
    // Processes that exited by themselves since the last one that was still running when its
    // turn to be killed came: many in a row mean they cannot work at all.
    let mut failing = 0;
    loop {
        // Keep n running: replaces the killed, the hung and the ones that died on their own.
        live.retain_mut(|p| match p.child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                summary.exited += 1;
                failing += 1;
                launcher.engine.counters.add("worker_process_exited", || {
                    format!("worker process {} exited by itself: {status}", p.id)
                });
                false
            }
            Err(_) => true,
        });
        if failing > 2 * n + 3 {
            // Stop the runs now rather than at --duration; they are reported stuck.
            launcher.engine.stop();
            break;
        }
        while live.len() < n && !stop.is_cancelled() {
            match launcher.spawn() {
                Ok(p) => {
                    summary.started += 1;
                    launcher.engine.counters.add_n("processes_started", 1);
                    live.push(p);
                }
                Err(err) => {
                    launcher
                        .engine
                        .counters
                        .add("spawn_error", || format!("{err:#}"));
                    break;
                }
            }
        }
        let pause = Duration::from_millis(
            KILL_EVERY_MS.start + rand::random::<u64>() % (KILL_EVERY_MS.end - KILL_EVERY_MS.start),
        );
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(id) = hung_rx.recv() => {
                if let Some(at) = live.iter().position(|p| p.id == id) {
                    hung.push(live.swap_remove(at));
                    launcher.engine.counters.add_n("processes_hung", 1);
                }
            }
            _ = tokio::time::sleep(pause) => {
                if !live.is_empty() {
                    let mut victim = live.swap_remove(rand::random::<usize>() % live.len());
                    if matches!(victim.child.try_wait(), Ok(None)) {
                        failing = 0;
                    }
                    // SIGKILL: no shutdown, no released lease, no flushed buffer.
                    if victim.child.start_kill().is_ok() {
                        launcher.engine.counters.add_n("processes_killed", 1);
                    }
                    if victim.child.wait().await.is_ok() {
                        summary.exited += 1;
                    }
                }
            }
        }
    }
    // The runs are done: the live processes have nothing left to do.
    for mut p in live {
        let _ = p.child.start_kill();
        if p.child.wait().await.is_ok() {
            summary.exited += 1;
        }
    }
    // The hung ones exit after their late attempt; they get a grace period, then are killed.
    let deadline = tokio::time::Instant::now() + HUNG_GRACE;
    for mut p in hung {
        let exited = tokio::time::timeout_at(deadline, p.child.wait()).await;
        if !matches!(exited, Ok(Ok(_))) {
            let _ = p.child.start_kill();
            if p.child.wait().await.is_err() {
                continue;
            }
        }
        summary.exited += 1;
    }
    // Every process is gone: its events are all in the pipes; read them to the end (bounded,
    // should a process have escaped: then the check on what was left behind fails).
    let deadline = tokio::time::Instant::now() + SESSION_GRACE;
    for mut reader in launcher.readers.drain(..) {
        if tokio::time::timeout_at(deadline, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
    }
    summary
}

impl Launcher {
    /// Starts one worker process and the task that applies its events.
    fn spawn(&mut self) -> anyhow::Result<Proc> {
        let id = self.next_id;
        self.next_id += 1;
        let mut child = Command::new(&self.exe)
            .args(&self.args)
            // In the environment, not the arguments: `ps` shows arguments, and the URL may hold
            // a password.
            .env("DATABASE_URL", &self.database_url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start worker process {}", self.exe.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("worker process without stdout")?;
        let (engine, hung) = (self.engine.clone(), self.hung.clone());
        self.readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Event>(&line) {
                    Ok(Event::Count { kind, n, example }) => engine.count(&kind, n, example),
                    Ok(Event::Latency { kind, micros }) if kind == "claim" => {
                        engine.claim_latency.record(Duration::from_micros(micros))
                    }
                    Ok(Event::Latency { .. }) => {}
                    Ok(Event::Hung) => {
                        let _ = hung.send(id);
                    }
                    Err(_) => engine.counters.add("worker_process_garbled_line", || {
                        format!("worker process {id} wrote {line:?}")
                    }),
                }
            }
        }));
        Ok(Proc {
            id,
            _stdin: child.stdin.take(),
            child,
        })
    }
}
