//! Embedding throughput with the real model (run `scripts/fetch-assets.sh` first) at batch
//! sizes 16 and 32, for the recipe's two cases and real chunks:
//!
//! - `short`: 31-token texts (the recipe's reference: ~128 chunks per CPU-second);
//! - `long`: 245-token windows of this crate's sources (the recipe's "realistic": ~21 per
//!   CPU-second);
//! - `chunks`: this crate's own chunks as the chunker cuts them (mixed lengths, up to 256 tokens).
//!
//! Each case first prints chunks and tokens per CPU-second of the whole process (the tokenizer
//! may use other threads), with the mean token count, so it compares with the recipe at equal
//! length. criterion's `thrpt` line is chunks per wall-clock second.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use service::index::chunk::{ChunkOutcome, Chunker};
use service::index::{Embedder, EmbedderConfig};

mod common;
use common::process_cpu_seconds;
use tokenizers::Tokenizer;

/// The recipe's "realistic" chunk length, in tokens.
const LONG_TOKENS: usize = 245;

/// Sources the long and real cases are cut from.
const SOURCES: [&str; 5] = [
    "mod.rs",
    "embed.rs",
    "store.rs",
    "chunk/mod.rs",
    "chunk/split.rs",
];

fn sources() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/index");
    SOURCES
        .iter()
        .filter_map(|name| {
            let path = format!("{dir}/{name}");
            let text = std::fs::read_to_string(&path).ok()?;
            Some((path, text))
        })
        .collect()
}

/// The model's tokenizer as the embedder runs it, minus its padding and truncation.
fn tokenizer(config: &EmbedderConfig) -> Option<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(config.model_dir.join("tokenizer.json")).ok()?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).ok()?;
    Some(tokenizer)
}

/// Tokens the model sees for `text`, special tokens included, capped at its 256-token limit.
fn tokens(tokenizer: &Tokenizer, text: &str) -> usize {
    tokenizer
        .encode(text, true)
        .map_or(0, |encoding| encoding.len().min(256))
}

/// One-line functions of 31 tokens each, the recipe's short case.
fn short_texts(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("fn parse_record_{i}(line: &str) -> Record {{ Record::parse(&line) }}"))
        .collect()
}

/// Consecutive source lines gathered until they reach `LONG_TOKENS` tokens.
fn long_texts(tokenizer: &Tokenizer, count: usize) -> Vec<String> {
    let mut texts = Vec::new();
    for (_, source) in sources() {
        let mut window = String::new();
        for line in source.lines() {
            window.push_str(line);
            window.push('\n');
            if tokens(tokenizer, &window) >= LONG_TOKENS {
                texts.push(std::mem::take(&mut window));
                if texts.len() == count {
                    return texts;
                }
            }
        }
    }
    texts
}

/// Real chunks of this crate's own sources.
fn chunk_texts(count: usize) -> Vec<String> {
    let chunker = Chunker::default();
    let mut texts = Vec::new();
    for (path, source) in sources() {
        if let Ok(ChunkOutcome::Chunks(chunks)) = chunker.chunk(&path, source.as_bytes()) {
            texts.extend(chunks.into_iter().map(|c| c.content));
        }
    }
    texts.truncate(count);
    texts
}

fn embedding(c: &mut Criterion) {
    let Some(tokenizer) = tokenizer(&EmbedderConfig::from_env()) else {
        eprintln!(
            "skipping embedding benchmark: tokenizer.json missing (run scripts/fetch-assets.sh)"
        );
        return;
    };
    let cases = [
        ("short", short_texts(64)),
        ("long", long_texts(&tokenizer, 32)),
        ("chunks", chunk_texts(32)),
    ];
    let mut group = c.benchmark_group("embedding");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    // `EMBED_BENCH_BATCHES=4,8,16` compares other batch sizes.
    let batch_sizes: Vec<usize> = std::env::var("EMBED_BENCH_BATCHES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16, 32]);
    for batch_size in batch_sizes {
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
            let mean_tokens = texts.iter().map(|t| tokens(&tokenizer, t)).sum::<usize>() as f64
                / texts.len().max(1) as f64;
            report_cpu_throughput(&embedder, label, batch_size, texts, mean_tokens);
            group.throughput(Throughput::Elements(texts.len() as u64));
            group.bench_with_input(BenchmarkId::new(*label, batch_size), texts, |b, texts| {
                b.iter(|| embedder.embed_blocking(texts).map(|v| v.len()))
            });
        }
    }
    group.finish();
}

/// Passes timed by the process's CPU time until it reaches three seconds (the model runs on the
/// calling thread with one intra-op thread; tokenizing may use other threads, counted too).
fn report_cpu_throughput(
    embedder: &Embedder,
    label: &str,
    batch_size: usize,
    texts: &[String],
    mean_tokens: f64,
) {
    let Some(before) = process_cpu_seconds() else {
        return;
    };
    let mut embedded = 0;
    let mut cpu = 0.0;
    while cpu < 3.0 {
        if embedder.embed_blocking(texts).is_err() {
            return;
        }
        embedded += texts.len();
        let Some(now) = process_cpu_seconds() else {
            return;
        };
        cpu = now - before;
    }
    let per_second = embedded as f64 / cpu;
    println!(
        "{label} batch {batch_size}: {per_second:.0} chunks per CPU-second, \
         {:.0} tokens per CPU-second (mean {mean_tokens:.0} tokens per chunk)",
        per_second * mean_tokens
    );
}

criterion_group!(benches, embedding);
criterion_main!(benches);
