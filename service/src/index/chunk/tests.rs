use super::*;

/// Asserts the chunks tile the text: ordered, no overlap, only whitespace between them.
fn assert_tiles(text: &str, chunks: &[Chunk]) {
    let mut cursor = 0;
    for chunk in chunks {
        assert!(
            chunk.byte_range.start >= cursor,
            "overlap at {:?}",
            chunk.byte_range
        );
        let gap = &text[cursor..chunk.byte_range.start];
        assert!(gap.trim().is_empty(), "non-whitespace gap {gap:?}");
        assert_eq!(chunk.content, &text[chunk.byte_range.clone()]);
        assert!(!chunk.content.trim().is_empty());
        cursor = chunk.byte_range.end;
    }
    assert!(text[cursor..].trim().is_empty(), "untiled tail");
}

fn chunks_of(chunker: &Chunker, path: &str, text: &str) -> Vec<Chunk> {
    match chunker.chunk(path, text.as_bytes()) {
        Ok(ChunkOutcome::Chunks(chunks)) => {
            assert_tiles(text, &chunks);
            chunks
        }
        other => panic!("expected chunks, got {other:?}"),
    }
}

fn symbols(chunks: &[Chunk]) -> Vec<(ChunkKind, Option<&str>)> {
    chunks
        .iter()
        .map(|c| (c.kind, c.symbol.as_deref()))
        .collect()
}

#[test]
fn small_rust_functions_get_a_chunk_each() {
    let text = "use std::fs;\n\n/// Adds.\nfn add(a: i32, b: i32) -> i32 { a + b }\n\nfn sub(a: i32, b: i32) -> i32 { a - b }\n";
    let chunks = chunks_of(&Chunker::default(), "src/math.rs", text);
    assert_eq!(
        symbols(&chunks),
        [
            (ChunkKind::Function, Some("add")),
            (ChunkKind::Function, Some("sub"))
        ]
    );
    assert!(chunks[0].content.starts_with("use std::fs;"));
    assert_eq!((chunks[1].start_line, chunks[1].end_line), (6, 6));
}

#[test]
fn an_impl_over_budget_is_split_into_methods() {
    let body =
        "        let mut total = 0;\n        for i in 0..10 { total += i; }\n        total\n";
    let text = format!(
        "struct Foo;\n\nimpl Foo {{\n    fn one(&self) -> i32 {{\n{body}    }}\n\n    fn two(&self) -> i32 {{\n{body}    }}\n}}\n"
    );
    let chunker = Chunker::new(ChunkerConfig {
        max_chunk_bytes: 150,
        ..ChunkerConfig::default()
    });
    let chunks = chunks_of(&chunker, "foo.rs", &text);
    let names: Vec<_> = chunks.iter().filter_map(|c| c.symbol.as_deref()).collect();
    assert!(names.contains(&"Foo::one"), "{names:?}");
    assert!(names.contains(&"Foo::two"), "{names:?}");
    assert!(chunks
        .iter()
        .all(|c| c.content.len() <= 150 + super::split_tiny_bytes()));
}

#[test]
fn syntax_errors_still_tile_the_file() {
    let text = "fn broken( {\n  let x = ;\n}\n\nfn fine() -> u8 { 1 }\n class }}} ((\n";
    let chunks = chunks_of(&Chunker::default(), "broken.rs", text);
    assert!(!chunks.is_empty());
}

#[test]
fn deeply_nested_code_does_not_overflow_the_stack() {
    let text = format!(
        "fn f() -> i32 {{ {}1{} }}\n",
        "(\n".repeat(5000),
        ")\n".repeat(5000)
    );
    let chunker = Chunker::new(ChunkerConfig {
        max_chunk_bytes: 64,
        ..ChunkerConfig::default()
    });
    chunks_of(&chunker, "deep.rs", &text);
}

#[test]
fn unknown_extensions_fall_back_to_line_windows() {
    let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
    let chunks = chunks_of(&Chunker::default(), "notes.txt", &text);
    assert_eq!(chunks.len(), 3);
    assert!(chunks
        .iter()
        .all(|c| c.kind == ChunkKind::Lines && c.symbol.is_none()));
    assert_eq!((chunks[1].start_line, chunks[1].end_line), (41, 80));
}

#[test]
fn empty_and_blank_files_have_no_chunks() {
    assert!(chunks_of(&Chunker::default(), "a.rs", "").is_empty());
    assert!(chunks_of(&Chunker::default(), "a.py", "\n\n   \n").is_empty());
}

#[test]
fn bad_inputs_are_skipped_with_their_reason() {
    let chunker = Chunker::new(ChunkerConfig {
        max_file_bytes: 100,
        ..ChunkerConfig::default()
    });
    let outcome = |bytes: &[u8]| chunker.chunk("x.js", bytes).map_err(|e| e.to_string());
    assert_eq!(
        outcome(&[b'a'; 101]),
        Ok(ChunkOutcome::Skipped(SkipReason::TooLarge {
            size: 101,
            limit: 100
        }))
    );
    assert_eq!(
        outcome(b"ab\0cd"),
        Ok(ChunkOutcome::Skipped(SkipReason::Binary))
    );
    assert_eq!(
        outcome(b"ok \xff\xfe"),
        Ok(ChunkOutcome::Skipped(SkipReason::InvalidUtf8 {
            valid_up_to: 3
        }))
    );
    let minified = format!("var a={};", "1,".repeat(5000));
    let chunker = Chunker::default();
    assert!(matches!(
        chunker.chunk("x.min.js", minified.as_bytes()),
        Ok(ChunkOutcome::Skipped(SkipReason::Minified { .. }))
    ));
}

#[test]
fn content_hash_is_hex_sha256() {
    assert_eq!(
        content_hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn the_delimiters_of_a_raw_string_get_pieces_of_their_own() {
    // tree-sitter keeps `r#"` and `"#` in the literal node, not in a child.
    let text =
        "fn f() {\n    let s = r#\"a long raw string literal that is over the budget\"#;\n}\n";
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_rust::LANGUAGE.into())
        .expect("grammar");
    let tree = parser.parse(text, None).expect("tree");
    let pieces = super::split::pieces(&tree, text, super::language::Language::Rust, 20);
    let covered: String = pieces.iter().map(|p| &text[p.range.clone()]).collect();
    let wanted: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let covered: String = covered.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(covered, wanted, "{pieces:?}");
}
