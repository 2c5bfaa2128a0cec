//! Chunking throughput on a real corpus: the `.rs` sources of the crates in the local cargo
//! registry (`~/.cargo/registry/src`, or `$CARGO_HOME/registry/src`), capped at 20 MB.
//!
//! criterion's `thrpt` line is input bytes per second on one core. Files the chunker skips
//! (generated tables, minified, oversized) are left out of the corpus so they do not flatter it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use service::index::chunk::{ChunkOutcome, Chunker};

mod common;
use common::thread_cpu_seconds;

// The service binary's allocators (see `service/src/main.rs`), so this measures what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Corpus size cap in bytes.
const CORPUS_CAP: usize = 20 * 1024 * 1024;

fn registry_src() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    cargo_home.join("registry").join("src")
}

/// Collects `.rs` files depth-first in sorted order until the cap, keeping only chunkable ones.
fn corpus(chunker: &Chunker) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut total = 0;
    let mut stack = vec![registry_src()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries.into_iter().rev() {
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") && total < CORPUS_CAP {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let name = path.display().to_string();
                if let Ok(ChunkOutcome::Chunks(_)) = chunker.chunk(&name, &bytes) {
                    total += bytes.len();
                    files.push((name, bytes));
                }
            }
        }
    }
    files
}

fn chunking(c: &mut Criterion) {
    // SAFETY: first use of tree-sitter in this process.
    unsafe { service::index::chunk::use_mimalloc_for_tree_sitter() };
    let chunker = Chunker::default();
    let files = corpus(&chunker);
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let chunks: usize = files
        .iter()
        .map(|(name, b)| match chunker.chunk(name, b) {
            Ok(ChunkOutcome::Chunks(chunks)) => chunks.len(),
            _ => 0,
        })
        .sum();
    println!(
        "corpus: {} files, {:.1} MB, {chunks} chunks (mean {} bytes)",
        files.len(),
        bytes as f64 / 1e6,
        bytes / chunks.max(1)
    );
    report_cpu_throughput(&chunker, &files, bytes);
    let mut group = c.benchmark_group("chunking");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("registry_rust_sources", |b| {
        b.iter(|| {
            let mut produced = 0;
            for (name, content) in &files {
                if let Ok(ChunkOutcome::Chunks(chunks)) = chunker.chunk(name, content) {
                    produced += chunks.len();
                }
            }
            produced
        })
    });
    // Baseline: tree-sitter parsing alone, to show what the chunker adds on top.
    group.bench_function("registry_rust_sources_parse_only", |b| {
        let mut parser = tree_sitter::Parser::new();
        let grammar: tree_sitter::Language = tree_sitter_rust::LANGUAGE.into();
        if parser.set_language(&grammar).is_err() {
            return;
        }
        b.iter(|| {
            files
                .iter()
                .filter_map(|(_, content)| parser.parse(content, None))
                .count()
        })
    });
    group.finish();
}

/// One pass timed by CPU time, since wall time on a shared machine undercounts one core.
fn report_cpu_throughput(chunker: &Chunker, files: &[(String, Vec<u8>)], bytes: usize) {
    let wall = std::time::Instant::now();
    let Some(cpu_before) = thread_cpu_seconds() else {
        return;
    };
    for (name, content) in files {
        let _ = chunker.chunk(name, content);
    }
    let Some(cpu_after) = thread_cpu_seconds() else {
        return;
    };
    let cpu = (cpu_after - cpu_before).max(0.01);
    println!(
        "one pass: {:.2} s wall, {cpu:.2} CPU-s: {:.1} MB per CPU-second",
        wall.elapsed().as_secs_f64(),
        bytes as f64 / 1e6 / cpu
    );
}

criterion_group!(benches, chunking);
criterion_main!(benches);
