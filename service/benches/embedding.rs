//! Embedding throughput with the real model (run `scripts/fetch-assets.sh` first) at batch
//! sizes 16 and 32, for short chunks (~30 tokens) and realistic ones (chunks of this repository's
//! sources, up to the 256-token limit).
//!
//! criterion's `thrpt` line is chunks per second; the recipe's reference on this machine kind is
//! ~128 short chunks per CPU-second (the model runs with one intra-op thread).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use service::index::chunk::{ChunkOutcome, Chunker};
use service::index::{Embedder, EmbedderConfig};

mod common;
use common::thread_cpu_seconds;

/// Short texts like a one-line function (about 30 tokens each).
fn short_texts(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            format!("fn parse_record_{i}(line: &str) -> Option<Record> {{ line.split(',').next().map(Record::new) }}")
        })
        .collect()
}

/// Real chunks of this crate's own sources.
fn realistic_texts(count: usize) -> Vec<String> {
    let chunker = Chunker::default();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/index");
    let mut texts = Vec::new();
    for name in [
        "mod.rs",
        "embed.rs",
        "store.rs",
        "chunk/mod.rs",
        "chunk/split.rs",
    ] {
        let path = format!("{dir}/{name}");
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Ok(ChunkOutcome::Chunks(chunks)) = chunker.chunk(&path, &bytes) {
            texts.extend(chunks.into_iter().map(|c| c.content));
        }
    }
    texts.truncate(count);
    texts
}

fn embedding(c: &mut Criterion) {
    let cases = [
        ("short", short_texts(64)),
        ("realistic", realistic_texts(32)),
    ];
    let mut group = c.benchmark_group("embedding");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for batch_size in [16, 32] {
        let config = EmbedderConfig {
            batch_size,
            ..EmbedderConfig::from_env()
        };
        let embedder = match Embedder::load(&config) {
            Ok(embedder) => embedder,
            Err(error) => {
                eprintln!("skipping embedding benchmark: {error}");
                return;
            }
        };
        for (label, texts) in &cases {
            report_cpu_throughput(&embedder, label, batch_size, texts);
            group.throughput(Throughput::Elements(texts.len() as u64));
            group.bench_with_input(BenchmarkId::new(*label, batch_size), texts, |b, texts| {
                b.iter(|| embedder.embed_blocking(texts).map(|v| v.len()))
            });
        }
    }
    group.finish();
}

/// One pass timed by CPU time (the model runs on the calling thread with one intra-op thread),
/// since wall time on a shared machine undercounts one core.
fn report_cpu_throughput(embedder: &Embedder, label: &str, batch_size: usize, texts: &[String]) {
    let Some(before) = thread_cpu_seconds() else {
        return;
    };
    if embedder.embed_blocking(texts).is_err() {
        return;
    }
    let Some(after) = thread_cpu_seconds() else {
        return;
    };
    let cpu = (after - before).max(0.01);
    println!(
        "{label} batch {batch_size}: {:.0} chunks per CPU-second",
        texts.len() as f64 / cpu
    );
}

criterion_group!(benches, embedding);
criterion_main!(benches);
