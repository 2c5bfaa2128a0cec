//! Write latency of the embedded Qdrant through `qdrant-client`: upserts with `wait=true` of one
//! point and of 64 points (384-d, small payload), from one client and from 8 at once, against a
//! server on a fresh data directory. Prints p50/p95/p99 and the mean per case.
//!
//! Run: `cargo bench --workspace --bench writes` (add `--profile dev` to measure the build that
//! tests and `cargo run -p service` use). `WRITES_BENCH_ROUNDS` scales the number of upserts
//! (default 300 per case and client).

use std::time::{Duration, Instant};

use qdrant_client::qdrant::{
    CreateCollectionBuilder, Distance, PointStruct, UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};
use serde_json::json;

const DIM: u64 = 384;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: u64 = std::env::var("WRITES_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let data_dir = tempfile::tempdir()?;
    let server =
        qdrant_embedded::start(qdrant_embedded::Config::default().with_data_dir(data_dir.path()))
            .await?;
    let client = Qdrant::from_url(&server.url()).build()?;
    println!("case                         p50 ms   p95 ms   p99 ms  mean ms");
    for (batch, clients) in [(1, 1), (64, 1), (64, 8)] {
        let collection = format!("bench_writes_{batch}_{clients}");
        client
            .create_collection(
                CreateCollectionBuilder::new(&collection)
                    .vectors_config(VectorParamsBuilder::new(DIM, Distance::Cosine)),
            )
            .await?;
        // Warm-up, then the measured rounds.
        upsert_rounds(&client, &collection, batch, 0, 1, 20).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..clients {
            let client = client.clone();
            let collection = collection.clone();
            tasks.spawn(async move {
                upsert_rounds(&client, &collection, batch, c, clients, rounds).await
            });
        }
        let mut latencies = Vec::new();
        while let Some(result) = tasks.join_next().await {
            latencies.extend(result??);
        }
        report(
            &format!("upsert {batch:>2} x {clients} client(s)"),
            latencies,
        );
        client.delete_collection(&collection).await?;
    }
    server.stop().await;
    Ok(())
}

/// `rounds` upserts of `batch` points with ids spread over clients, each timed.
async fn upsert_rounds(
    client: &Qdrant,
    collection: &str,
    batch: u64,
    client_index: u64,
    clients: u64,
    rounds: u64,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(rounds as usize);
    for round in 0..rounds {
        let first = (round * clients + client_index) * batch;
        let points = (first..first + batch)
            .map(|id| {
                let vector: Vec<f32> = (0..DIM).map(|d| ((id + d) % 97) as f32 / 97.0).collect();
                let payload = Payload::try_from(json!({
                    "path": format!("src/file_{id}.rs"),
                    "line": id % 400,
                    "project": "bench",
                }))?;
                Ok(PointStruct::new(id, vector, payload))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let started = Instant::now();
        client
            .upsert_points(UpsertPointsBuilder::new(collection, points).wait(true))
            .await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

fn report(case: &str, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies[index.min(latencies.len() - 1)].as_secs_f64() * 1000.0
    };
    let mean = latencies.iter().sum::<Duration>().as_secs_f64() * 1000.0 / latencies.len() as f64;
    println!(
        "{case:<26} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        at(0.50),
        at(0.95),
        at(0.99),
        mean
    );
}
