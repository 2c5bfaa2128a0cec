//! One worker process of `--processes` (this binary started with the hidden `--worker-of QUEUE`):
//! the crash scenario's workers on the queue runtime, reporting what they measure to the parent
//! on stdout. It lives until the parent kills it, its stdin closes (the parent is gone, however
//! it died), or a stall hangs it (then it makes its late completion attempt and exits).

use std::io::Read as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use queue::namespace::client_name;
use queue::{Queue, QueueId, QueueWaker};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::cli::Args;
use crate::context::WORKER_ROLE;
use crate::ops::Ops;
use crate::scenarios::engine::Engine;
use crate::stats::{Counters, Latencies};

/// Works `queue` (an execution's crash queue, `<namespace>:crash`) with `--workers` workers.
pub async fn run(args: &Args, queue: &str) -> anyhow::Result<()> {
    // The parent holds the write end of our stdin: when it dies, even by SIGKILL, the pipe
    // closes, and an orphan must not go on working a queue nobody watches.
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let id = QueueId::new(queue)?;
    let (namespace, _) = queue
        .split_once(':')
        .context("--worker-of takes a queue id <namespace>:<scenario>")?;
    // Named after the execution's namespace, so a reaper ends these sessions if all of it died.
    let options = PgConnectOptions::from_str(&args.database_url)
        .context("DATABASE_URL / --database-url is not a valid PostgreSQL URL")?
        .application_name(&client_name(WORKER_ROLE, namespace));
    let pool = PgPoolOptions::new()
        .max_connections(args.pool_size)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(options.clone());
    let listener = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    let waker = Arc::new(QueueWaker::start(&listener).await?);
    let queue = Queue::new(pool, id).with_config(super::config());
    let mut engine = Engine::on(
        Ops::new(queue, args.sabotage, None),
        waker,
        args.workers,
        super::job,
    );
    engine.counters = Arc::new(Counters::forwarding());
    engine.claim_latency = Arc::new(Latencies::forwarding("claim"));
    engine.hang_on_stall = true;
    for _ in 0..args.workers {
        engine.spawn_worker();
    }
    // Only a stall stops the engine: the process hangs, its zombie tries to complete, it exits.
    engine.stop_token().cancelled().await;
    engine.wait_zombies().await;
    Ok(())
}
