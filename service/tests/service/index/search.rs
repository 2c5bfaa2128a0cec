//! Indexing and searching through Qdrant: ranking, re-indexing, project isolation, deletion.

use service::index::{IndexError, IndexOutcome};

use crate::support::{fixture, TestIndex, TestResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_a_json_file_ranks_the_json_parsing_function_above_unrelated_ones() -> TestResult {
    // Arrange
    let test = TestIndex::start().await?;
    let project = test.project("ranking");
    let source = fixture("inventory.rs")?;
    let outcome = test
        .indexer
        .index_file(&project, "src/inventory.rs", source.as_bytes())
        .await?;
    assert!(
        matches!(outcome, IndexOutcome::Indexed { chunks } if chunks > 5),
        "{outcome:?}"
    );

    // Act
    let hits = test
        .indexer
        .search(&project, "parse a json file", 5)
        .await?;

    // Assert
    let top = hits.first().ok_or_else(|| anyhow::anyhow!("no hits"))?;
    assert_eq!(top.symbol.as_deref(), Some("parse_json_file"), "{hits:#?}");
    assert_eq!(top.path, "src/inventory.rs");
    assert!(top.content.contains("serde_json::from_str"));
    assert!(top.start_line <= top.end_line);
    assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score));
    for unrelated in ["gcd", "greet", "Inventory::ship"] {
        if let Some(hit) = hits.iter().find(|h| h.symbol.as_deref() == Some(unrelated)) {
            assert!(
                top.score > hit.score,
                "{unrelated} scored {} >= {}",
                hit.score,
                top.score
            );
        }
    }
    test.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_function_is_found_by_its_new_text_and_not_by_its_old_one() -> TestResult {
    // Arrange
    let test = TestIndex::start().await?;
    let project = test.project("edit");
    let before = "def shipping_label(order):\n    \"\"\"Print a shipping label for a parcel.\"\"\"\n    return f'SHIP {order.id}'\n\n\ndef total(order):\n    return sum(order.prices)\n";
    let after = before.replace(
        "def shipping_label(order):\n    \"\"\"Print a shipping label for a parcel.\"\"\"\n    return f'SHIP {order.id}'",
        "def shipping_label(order):\n    \"\"\"Translate the greeting into French words.\"\"\"\n    return 'bonjour tout le monde'",
    );
    test.indexer
        .index_file(&project, "orders.py", before.as_bytes())
        .await?;
    let count_before = test.indexer.store().count(&project).await?;

    // Act
    test.indexer
        .index_file(&project, "orders.py", after.as_bytes())
        .await?;

    // Assert
    let hits = test
        .indexer
        .search(&project, "print a shipping label for a parcel", 10)
        .await?;
    assert!(
        hits.iter().all(|h| !h.content.contains("SHIP {order.id}")),
        "old text still found: {hits:#?}"
    );
    let hits = test
        .indexer
        .search(&project, "translate the greeting into french", 1)
        .await?;
    assert!(
        hits[0].content.contains("bonjour tout le monde"),
        "{hits:#?}"
    );
    assert_eq!(test.indexer.store().count(&project).await?, count_before);
    test.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projects_in_one_collection_never_see_each_others_chunks() -> TestResult {
    // Arrange
    let test = TestIndex::start().await?;
    let (alpha, beta) = (test.project("alpha"), test.project("beta"));
    test.indexer
        .index_file(
            &alpha,
            "shapes/geometry.py",
            fixture("geometry.py")?.as_bytes(),
        )
        .await?;
    test.indexer
        .index_file(
            &beta,
            "lib/Library.java",
            fixture("Library.java")?.as_bytes(),
        )
        .await?;

    // Act
    let alpha_hits = test
        .indexer
        .search(&alpha, "find books by author", 50)
        .await?;
    let beta_hits = test.indexer.search(&beta, "area of a circle", 50).await?;

    // Assert
    assert!(!alpha_hits.is_empty() && !beta_hits.is_empty());
    assert!(
        alpha_hits.iter().all(|h| h.path == "shapes/geometry.py"),
        "{alpha_hits:#?}"
    );
    assert!(
        beta_hits.iter().all(|h| h.path == "lib/Library.java"),
        "{beta_hits:#?}"
    );
    test.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_project_removes_all_its_points_and_no_others() -> TestResult {
    // Arrange
    let test = TestIndex::start().await?;
    let (doomed, kept) = (test.project("doomed"), test.project("kept"));
    for name in ["queue.go", "router.js", "cache.ts"] {
        test.indexer
            .index_file(&doomed, name, fixture(name)?.as_bytes())
            .await?;
    }
    test.indexer
        .index_file(&kept, "queue.go", fixture("queue.go")?.as_bytes())
        .await?;
    let kept_count = test.indexer.store().count(&kept).await?;
    assert!(test.indexer.store().count(&doomed).await? > kept_count);

    // Act
    test.indexer.delete_project(&doomed).await?;

    // Assert
    assert_eq!(test.indexer.store().count(&doomed).await?, 0);
    assert!(test
        .indexer
        .search(&doomed, "push an item", 10)
        .await?
        .is_empty());
    assert_eq!(test.indexer.store().count(&kept).await?, kept_count);
    test.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unindexable_files_are_skipped_with_their_reason_and_leave_no_chunks() -> TestResult {
    // Arrange
    let test = TestIndex::start().await?;
    let project = test.project("skips");
    test.indexer
        .index_file(&project, "data.js", b"function load() { return 1; }\n")
        .await?;
    assert_eq!(test.indexer.store().count(&project).await?, 1);
    let oversized = "x = 1\n".repeat(200_000);
    let minified = format!("var a=[{}];", "1,".repeat(4000));
    let cases: [(&str, &[u8], &str); 4] = [
        ("data.js", b"\0\x01\x02binary", "binary"),
        ("big.py", oversized.as_bytes(), "too_large"),
        ("bundle.min.js", minified.as_bytes(), "minified"),
        ("latin1.go", b"package x // caf\xe9\n", "invalid_utf8"),
    ];

    for (path, bytes, code) in cases {
        // Act
        let outcome = test.indexer.index_file(&project, path, bytes).await?;

        // Assert
        match outcome {
            IndexOutcome::Skipped { reason } => assert_eq!(reason.code(), code, "{path}"),
            other => anyhow::bail!("{path}: expected a skip, got {other:?}"),
        }
    }
    // data.js turned binary: its old chunk is gone too.
    assert_eq!(test.indexer.store().count(&project).await?, 0);
    test.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_project_names_and_limits_are_rejected_with_a_clear_error() -> TestResult {
    let test = TestIndex::start().await?;
    for bad in ["", "has space", "../escape", &"x".repeat(200)] {
        let error = test.indexer.index_file(bad, "a.rs", b"fn a() {}").await;
        assert!(
            matches!(error, Err(IndexError::InvalidProject(_))),
            "{bad:?}: {error:?}"
        );
        let error = test.indexer.search(bad, "query", 5).await;
        assert!(
            matches!(error, Err(IndexError::InvalidProject(_))),
            "{bad:?}: {error:?}"
        );
    }
    let error = test.indexer.search("ok", "query", 0).await;
    assert!(
        matches!(error, Err(IndexError::InvalidLimit(0))),
        "{error:?}"
    );
    let error = test.indexer.search("ok", "  ", 5).await;
    assert!(matches!(error, Err(IndexError::EmptyQuery)), "{error:?}");
    test.finish().await
}
