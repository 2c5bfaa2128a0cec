//! `POST /index` latency under load: 200 concurrent clients, 10-file requests, against the real
//! service (PostgreSQL, embedded Qdrant, workers off so only the request path is measured).
//! Target: p99 ≤ 20 ms.
//!
//! Two loads: closed loop (each client sends again as soon as it is answered: saturation, where
//! latency is queueing) and open loop (the clients together send `API_BENCH_RATE` requests per
//! second, default 800, on a fixed schedule; latency counts from the scheduled send time).
//!
//! Run: `cargo bench -p service --bench api` (env `API_BENCH_REQUESTS_PER_CLIENT`, default 10).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use service::configuration::Settings;
use service::startup::Application;

const CLIENTS: usize = 200;
const FILES_PER_REQUEST: usize = 10;

// The service binary's allocators (see `service/src/main.rs`), so this measures what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // SAFETY: first use of tree-sitter in this process.
    unsafe { service::index::chunk::use_mimalloc_for_tree_sitter() };
    service::telemetry::init("warn,sqlx=error", Default::default());
    let per_client: usize = std::env::var("API_BENCH_REQUESTS_PER_CLIENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let qdrant = qdrant_embedded::start(qdrant_embedded::Config::default()).await?;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.worker.concurrency = 0;
    settings.database.max_connections = 20;
    settings.queue.queue_id = format!("bench_api_{unique}");
    settings.qdrant.url = Some(qdrant.url());
    settings.qdrant.collection = format!("bench_api_{unique}");
    let app = Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let body = request_body();
    // Warm-up: connections and prepared statements.
    for _ in 0..20 {
        post(&client, &address, &body).await?;
    }
    // Closed loop: every client sends its next request as soon as the previous one is answered,
    // so the server is saturated and latency is mostly queueing (≈ clients / throughput).
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, address, body) = (client.clone(), address.clone(), body.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                latencies.push(post(&client, &address, &body).await?);
            }
            anyhow::Ok(latencies)
        });
    }
    let latencies = collect(tasks).await?;
    report(
        &format!("closed loop, {CLIENTS} clients back to back"),
        latencies,
        started.elapsed(),
    );

    // Open loop: the same 200 clients together send `rate` requests per second on a fixed
    // schedule; latency counts from the scheduled time, so a stalled server is not excused.
    let rate: f64 = std::env::var("API_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(800.0);
    let interval = Duration::from_secs_f64(CLIENTS as f64 / rate);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..CLIENTS {
        let (client, address, body) = (client.clone(), address.clone(), body.clone());
        let first = started + interval.mul_f64(n as f64 / CLIENTS as f64);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let due = first + interval * i as u32;
                tokio::time::sleep_until(due.into()).await;
                post(&client, &address, &body).await?;
                latencies.push(due.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let latencies = collect(tasks).await?;
    report(
        &format!("open loop, {CLIENTS} clients at {rate:.0} req/s in all"),
        latencies,
        started.elapsed(),
    );

    // Clean up this run's rows.
    queue::namespace::delete_queues(&state.pool, &[state.queue.id().as_str()]).await?;
    shutdown.cancel();
    server.await??;
    qdrant.stop().await;
    Ok(())
}

async fn collect(
    mut tasks: tokio::task::JoinSet<anyhow::Result<Vec<Duration>>>,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        latencies.extend(result??);
    }
    Ok(latencies)
}

fn report(label: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "POST /index ({FILES_PER_REQUEST} files) x {} requests, {label}, in {:.2?}: {:.0} req/s",
        latencies.len(),
        elapsed,
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}  (target p99 <= 20ms: {})",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        if pct(0.99) <= Duration::from_millis(20) {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// The request body, serialised once: the load generator shares the two cores with the server,
/// so it should spend as little as it can.
fn request_body() -> String {
    let files: Vec<Value> = (0..FILES_PER_REQUEST)
        .map(|i| {
            json!({
                "path": format!("src/module_{i}.rs"),
                "content": format!("/// Function {i}.\npub fn function_{i}(x: u64) -> u64 {{\n    x * {i} + 1\n}}\n"),
            })
        })
        .collect();
    json!({ "project": "bench-api", "files": files }).to_string()
}

async fn post(client: &reqwest::Client, address: &str, body: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = client
        .post(format!("{address}/index"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    let status = response.status();
    response.bytes().await?;
    anyhow::ensure!(
        status == reqwest::StatusCode::ACCEPTED,
        "POST /index answered {status}"
    );
    Ok(started.elapsed())
}
