//! End-to-end indexing throughput: chunks per second from `POST /index` until every job is
//! completed (and so searchable), against the embedder's own throughput on the same chunks.
//! Target: ≥ 85 % of the embedder alone.
//!
//! Run: `cargo bench -p service --bench pipeline` (env `PIPELINE_BENCH_FILES`, default 60).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use service::configuration::Settings;
use service::index::{ChunkOutcome, Chunker, Embedder};
use service::startup::Application;

// The service binary's allocators (see `service/src/main.rs`), so this measures what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // SAFETY: first use of tree-sitter in this process.
    unsafe { service::index::chunk::use_mimalloc_for_tree_sitter() };
    service::telemetry::init("warn,sqlx=error", Default::default());
    let files_count: usize = std::env::var("PIPELINE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let files: Vec<(String, String)> = (0..files_count).map(source_file).collect();

    // The embedder alone, on the same chunks (the texts the indexer embeds: path, kind, symbol
    // and content), in its configured batches.
    let settings = Settings::default();
    let embedder = Embedder::shared(&settings.embedding.embedder_config())?;
    let chunker = Chunker::default();
    let mut texts = Vec::new();
    for (path, content) in &files {
        if let ChunkOutcome::Chunks(chunks) = chunker.chunk(path, content.as_bytes())? {
            for chunk in chunks {
                texts.push(match &chunk.symbol {
                    Some(symbol) => format!(
                        "{} {} {}\n{}",
                        chunk.path, chunk.kind, symbol, chunk.content
                    ),
                    None => format!("{}\n{}", chunk.path, chunk.content),
                });
            }
        }
    }
    embedder.embed_blocking(&texts[..texts.len().min(8)])?; // warm-up
    let started = Instant::now();
    embedder.embed_blocking(&texts)?;
    let embed_only = texts.len() as f64 / started.elapsed().as_secs_f64();

    // The whole service: enqueue, claim, chunk, embed, upsert, record.
    let qdrant = qdrant_embedded::start(qdrant_embedded::Config::default()).await?;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let mut settings = settings;
    settings.server.port = 0;
    settings.queue.queue_id = format!("bench_pipeline_{unique}");
    settings.queue.poll_interval_ms = 100;
    settings.qdrant.url = Some(qdrant.url());
    settings.qdrant.collection = format!("bench_pipeline_{unique}");
    let app = Application::build(settings).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let started = Instant::now();
    let body = json!({
        "project": "bench-pipeline",
        "files": files.iter().map(|(path, content)| json!({ "path": path, "content": content })).collect::<Vec<_>>(),
    });
    let response = client
        .post(format!("{address}/index"))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == reqwest::StatusCode::ACCEPTED,
        "POST /index answered {}",
        response.status()
    );
    let accepted: Value = response.json().await?;
    let job_id = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let job = loop {
        let job: Value = client
            .get(format!("{address}/jobs/{job_id}"))
            .send()
            .await?
            .json()
            .await?;
        if job["status"] != "pending" && job["status"] != "processing" {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed();
    let chunks = job["chunks_stored"].as_i64().unwrap_or(0);
    let end_to_end = chunks as f64 / elapsed.as_secs_f64();

    println!(
        "{} files, {} chunks (embedder run: {} chunks); job {}",
        files.len(),
        chunks,
        texts.len(),
        job["status"]
    );
    println!("embedder alone: {embed_only:.1} chunks/s");
    println!(
        "end to end:     {end_to_end:.1} chunks/s in {elapsed:.2?} = {:.0} % of the embedder (target >= 85 %)",
        100.0 * end_to_end / embed_only
    );

    queue::namespace::delete_queues(&state.pool, &[state.queue.id().as_str()]).await?;
    shutdown.cancel();
    server.await??;
    qdrant.stop().await;
    Ok(())
}

/// A Rust file of a few documented functions (a few chunks each).
fn source_file(i: usize) -> (String, String) {
    let mut content = format!("//! Module {i}: helpers for records of kind {i}.\n\n");
    for f in 0..4 {
        content.push_str(&format!(
            "/// Computes the checksum of record {i}-{f} by folding its bytes.\n\
             pub fn checksum_{i}_{f}(bytes: &[u8]) -> u64 {{\n    \
             let mut acc = {f}u64;\n    \
             for b in bytes {{\n        acc = acc.wrapping_mul(31).wrapping_add(u64::from(*b));\n    }}\n    \
             acc ^ {i}\n}}\n\n"
        ));
    }
    (format!("src/records/module_{i}.rs"), content)
}
