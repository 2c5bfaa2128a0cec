//! The chunker over fixtures in every supported language and over this repository's sources.

use std::path::{Path, PathBuf};

use service::index::chunk::{
    content_hash, Chunk, ChunkKind, ChunkOutcome, Chunker, ChunkerConfig, SkipReason,
};

use crate::support::{fixtures_dir, TestResult};

/// Slack over the budget: a tiny leftover such as a closing `}` joins the chunk before it.
const TINY_SLACK: usize = 32;

/// Every file of the repository worth chunking (sources, scripts, docs), plus the fixtures.
fn corpus() -> anyhow::Result<Vec<PathBuf>> {
    let root = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))?;
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_dir() {
                if !matches!(
                    name.as_str(),
                    "target" | ".git" | ".assets" | ".data" | "node_modules"
                ) {
                    stack.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Checks the tiling invariant and every chunk field against the file.
fn assert_tiles(path: &str, text: &str, chunks: &[Chunk], budget: usize) {
    let mut cursor = 0;
    for chunk in chunks {
        let range = chunk.byte_range.clone();
        assert!(
            range.start >= cursor,
            "{path}: chunk {range:?} overlaps the previous one"
        );
        assert!(range.start < range.end, "{path}: empty chunk at {range:?}");
        let gap = &text[cursor..range.start];
        assert!(
            gap.trim().is_empty(),
            "{path}: non-whitespace gap {gap:?} before {range:?}"
        );
        assert_eq!(
            chunk.content,
            text[range.clone()],
            "{path}: content is not the file's bytes"
        );
        assert_eq!(
            chunk.content.trim(),
            chunk.content,
            "{path}: chunk {range:?} is not trimmed"
        );
        assert_eq!(
            chunk.content_hash,
            content_hash(&chunk.content),
            "{path}: wrong hash"
        );
        assert_eq!(chunk.path, path);
        let start_line = text[..range.start].matches('\n').count() + 1;
        let end_line = start_line + chunk.content.matches('\n').count();
        assert_eq!(
            (chunk.start_line, chunk.end_line),
            (start_line, end_line),
            "{path}: lines of {range:?}"
        );
        assert!(
            chunk.content.len() <= budget + TINY_SLACK,
            "{path}: chunk {range:?} of {} bytes is over the {budget}-byte budget",
            chunk.content.len()
        );
        cursor = range.end;
    }
    assert!(
        text[cursor..].trim().is_empty(),
        "{path}: text after the last chunk is not covered"
    );
}

#[test]
fn chunks_tile_every_file_of_the_repository_and_every_fixture_at_several_budgets() -> TestResult {
    let files = corpus()?;
    let fixtures = files
        .iter()
        .filter(|f| f.starts_with(fixtures_dir()))
        .count();
    assert!(
        fixtures >= 7,
        "expected the language fixtures in the corpus, found {fixtures}"
    );
    let mut chunked = 0;
    for budget in [120, 400, ChunkerConfig::default().max_chunk_bytes] {
        let chunker = Chunker::new(ChunkerConfig {
            max_chunk_bytes: budget,
            ..ChunkerConfig::default()
        });
        for file in &files {
            let bytes = std::fs::read(file)?;
            let path = file.display().to_string();
            if let ChunkOutcome::Chunks(chunks) = chunker.chunk(&path, &bytes)? {
                let text = std::str::from_utf8(&bytes)?;
                assert_tiles(&path, text, &chunks, budget);
                chunked += 1;
            }
        }
    }
    assert!(chunked > 100, "only {chunked} files were chunked");
    Ok(())
}

/// The (kind, symbol) pairs a chunk list holds.
fn symbols(chunks: &[Chunk]) -> Vec<(ChunkKind, String)> {
    chunks
        .iter()
        .filter_map(|chunk| Some((chunk.kind, chunk.symbol.clone()?)))
        .collect()
}

fn chunk_fixture(name: &str, budget: usize) -> anyhow::Result<Vec<Chunk>> {
    let bytes = std::fs::read(fixtures_dir().join(name))?;
    let chunker = Chunker::new(ChunkerConfig {
        max_chunk_bytes: budget,
        ..ChunkerConfig::default()
    });
    match chunker.chunk(name, &bytes)? {
        ChunkOutcome::Chunks(chunks) => Ok(chunks),
        ChunkOutcome::Skipped(reason) => anyhow::bail!("{name} was skipped: {reason}"),
    }
}

/// A fixture, the chunk budget to use, and the (kind, symbol) pairs it must yield.
type Expectation<'a> = (&'a str, usize, &'a [(ChunkKind, &'a str)]);

#[test]
fn each_language_fixture_yields_its_expected_symbols_and_kinds() -> TestResult {
    use ChunkKind::*;
    let default_budget = ChunkerConfig::default().max_chunk_bytes;
    // (fixture, budget, expected (kind, symbol) pairs); small budgets force classes to split.
    let cases: &[Expectation] = &[
        (
            "inventory.rs",
            default_budget,
            &[
                (Struct, "Item"),
                (Enum, "Location"),
                (Trait, "Priced"),
                (Impl, "Priced for Item"),
                (Struct, "Inventory"),
                (Method, "Inventory::new"),
                (Method, "Inventory::restock"),
                (Method, "Inventory::ship"),
                (Method, "Inventory::value_cents"),
                (Function, "parse_json_file"),
                (Function, "gcd"),
                (Function, "greet"),
                (Macro, "sku"),
                (TypeAlias, "Counts"),
                (Module, "tests"),
            ],
        ),
        (
            "geometry.py",
            default_budget,
            &[
                (Class, "Point"),
                (Class, "Shape"),
                (Class, "Circle"),
                (Function, "parse_json_file"),
                (Function, "primes_below"),
            ],
        ),
        (
            "geometry.py",
            150,
            &[
                (Method, "Circle.__init__"),
                (Method, "Circle.area"),
                (Method, "Circle.perimeter"),
                (Method, "Point.distance_to"),
            ],
        ),
        (
            "router.js",
            default_budget,
            &[
                (Class, "Router"),
                (Function, "parseJsonFile"),
                (Function, "formatCurrency"),
                (Function, "idGenerator"),
            ],
        ),
        (
            "router.js",
            150,
            &[(Method, "Router.add"), (Method, "Router.dispatch")],
        ),
        (
            "cache.ts",
            default_budget,
            &[
                (Interface, "Clock"),
                (TypeAlias, "Key"),
                (Enum, "Eviction"),
                (Class, "TtlCache"),
                (Function, "loadJsonConfig"),
            ],
        ),
        (
            "cache.ts",
            200,
            &[(Method, "TtlCache.get"), (Method, "TtlCache.set")],
        ),
        (
            "widget.tsx",
            default_budget,
            &[
                (Interface, "CounterProps"),
                (Function, "Counter"),
                (Function, "Badge"),
                (Class, "Panel"),
            ],
        ),
        (
            "queue.go",
            default_budget,
            &[
                (Struct, "Queue"),
                (Interface, "Sizer"),
                (TypeAlias, "ID"),
                (Function, "New"),
                (Method, "Queue.Push"),
                (Method, "Queue.Len"),
                (Function, "ParseJSONFile"),
            ],
        ),
        (
            "Library.java",
            default_budget,
            &[
                (Class, "Library"),
                (Class, "Book"),
                (Interface, "Lender"),
                (Enum, "Genre"),
            ],
        ),
        (
            "Library.java",
            200,
            &[(Method, "Library.add"), (Method, "Library.byAuthor")],
        ),
    ];
    for (name, budget, expected) in cases {
        let found = symbols(&chunk_fixture(name, *budget)?);
        for (kind, symbol) in expected.iter() {
            assert!(
                found.contains(&(*kind, (*symbol).to_owned())),
                "{name} at budget {budget}: expected {kind} {symbol}, found {found:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn a_class_and_its_methods_never_both_carry_the_method_bodies() -> TestResult {
    let chunks = chunk_fixture("Library.java", 200)?;
    let holders = chunks
        .iter()
        .filter(|c| c.content.contains("found.add(book)"))
        .count();
    assert_eq!(holders, 1);
    Ok(())
}

#[test]
fn files_with_syntax_errors_are_still_chunked() -> TestResult {
    let chunks = chunk_fixture("broken.py", 1024)?;
    assert!(!chunks.is_empty());
    Ok(())
}

#[test]
fn binary_oversized_minified_and_invalid_utf8_files_are_skipped_with_their_reason() -> TestResult {
    let chunker = Chunker::new(ChunkerConfig {
        max_file_bytes: 64 * 1024,
        ..ChunkerConfig::default()
    });
    let oversized = "fn f() {}\n".repeat(10_000);
    let minified = format!("function a(){{{}}}", "x=1;".repeat(3000));
    let cases: [(&str, &[u8], &str); 4] = [
        ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "binary"),
        ("big.rs", oversized.as_bytes(), "too_large"),
        ("app.min.js", minified.as_bytes(), "minified"),
        ("latin1.py", b"name = 'caf\xe9'\n", "invalid_utf8"),
    ];
    for (path, bytes, code) in cases {
        match chunker.chunk(path, bytes)? {
            ChunkOutcome::Skipped(reason) => {
                assert_eq!(reason.code(), code, "{path}: {reason}");
                assert!(!reason.to_string().is_empty());
            }
            ChunkOutcome::Chunks(chunks) => anyhow::bail!("{path} gave {} chunks", chunks.len()),
        }
    }
    assert!(matches!(
        chunker.chunk("latin1.py", b"x = '\xe9'")?,
        ChunkOutcome::Skipped(SkipReason::InvalidUtf8 { valid_up_to: 5 })
    ));
    Ok(())
}
