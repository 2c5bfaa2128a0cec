//! The real model: mean pooling gives the reference similarities; missing assets are typed errors;
//! queries do not wait behind files; a panic inside the model does not disable it.

use service::index::embed::{cosine, EMBEDDING_DIM, MODEL_FILES};
use service::index::{EmbedError, Embedder, EmbedderConfig};

use crate::support::{embedder, TestResult, DEADLINE};

#[tokio::test]
async fn similar_sentences_have_the_reference_model_cosines() -> TestResult {
    let embedder = embedder()?;
    let texts = [
        "parse a json file",
        "read json from disk",
        "compute prime numbers",
        "sieve of eratosthenes",
    ]
    .map(str::to_owned)
    .to_vec();
    let vectors = embedder.embed(texts).await?;
    assert!(vectors.iter().all(|v| v.len() == EMBEDDING_DIM));
    // Reference values from shared/recipes/embeddings.md; CLS pooling would give about 0.5 off.
    let json = cosine(&vectors[0], &vectors[1]);
    assert!(
        (json - 0.683).abs() < 0.02,
        "parse/read json cosine {json}, expected 0.683"
    );
    let primes = cosine(&vectors[2], &vectors[3]);
    assert!(
        (primes - 0.481).abs() < 0.02,
        "primes cosine {primes}, expected 0.481"
    );
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(
        unrelated.abs() < 0.1,
        "unrelated cosine {unrelated}, expected about 0.016"
    );
    Ok(())
}

#[tokio::test]
async fn vectors_are_unit_length_and_in_input_order_across_batches() -> TestResult {
    let embedder = embedder()?;
    let texts: Vec<String> = (0..40).map(|i| format!("function number {i}")).collect();
    let all = embedder.embed(texts.clone()).await?;
    let single = embedder.embed(vec![texts[37].clone()]).await?;
    assert_eq!(all.len(), 40);
    assert!(cosine(&all[37], &single[0]) > 0.999);
    let norm: f32 = all[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    Ok(())
}

#[test]
fn a_missing_model_dir_is_a_typed_error_not_a_panic() -> TestResult {
    let real = EmbedderConfig::from_env();
    let config = EmbedderConfig::new(
        std::env::temp_dir().join("no-such-model-dir"),
        real.ort_dylib_path,
    );
    match Embedder::load(&config) {
        Err(EmbedError::ModelFileMissing { path }) => assert!(path.ends_with(MODEL_FILES[0])),
        other => anyhow::bail!("expected ModelFileMissing, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_missing_onnx_runtime_library_is_a_typed_error_not_a_panic() -> TestResult {
    let real = EmbedderConfig::from_env();
    let config = EmbedderConfig::new(real.model_dir, "/nonexistent/libonnxruntime.so.1.24.1");
    match Embedder::load(&config) {
        Err(error @ EmbedError::RuntimeMissing { .. }) => {
            assert!(error.to_string().contains("fetch-assets"), "{error}");
        }
        other => anyhow::bail!("expected RuntimeMissing, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_file_that_is_not_an_onnx_runtime_library_is_a_typed_error_not_a_panic() -> TestResult {
    let real = EmbedderConfig::from_env();
    // Any existing file that is not a shared library will do.
    let not_a_library = real.model_dir.join("tokenizer.json");
    let config = EmbedderConfig::new(real.model_dir, not_a_library);
    match Embedder::load(&config) {
        Err(EmbedError::RuntimeUnusable { .. }) => Ok(()),
        // Without the fetched assets the model check comes first; that is a typed error too.
        Err(EmbedError::ModelFileMissing { .. }) => Ok(()),
        other => anyhow::bail!("expected RuntimeUnusable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_query_is_embedded_while_a_large_file_is_being_embedded() -> TestResult {
    // Arrange: 3,000 small functions, the bulk lane's work for many seconds.
    let embedder = embedder()?;
    let texts: Vec<String> = (0..3000)
        .map(|i| format!("def f{i}(x):\n    return x + {i}\n"))
        .collect();
    let total = texts.len() as u64;
    let before = embedder.bulk_texts();
    let bulk = tokio::spawn({
        let embedder = embedder.clone();
        async move { embedder.embed(texts).await }
    });
    harness::wait_until(DEADLINE, "the file's embedding to be under way", || async {
        Ok(embedder.bulk_texts() > before)
    })
    .await?;

    // Act
    let query = embedder.embed_query("read a json file").await?;

    // Assert: the query did not wait for the file.
    assert_eq!(query.len(), EMBEDDING_DIM);
    assert!(
        embedder.bulk_texts() - before < total,
        "the query waited for the whole file"
    );
    bulk.abort();
    Ok(())
}

#[tokio::test]
async fn after_a_panic_inside_the_model_the_model_still_works() -> TestResult {
    // Arrange: a model of this test's own, so the panics touch nothing else.
    let embedder = Embedder::load(&EmbedderConfig::from_env())?;
    let texts = vec!["parse a json file".to_owned(), "compute primes".to_owned()];
    let reference = embedder.embed(texts.clone()).await?;

    // Act and assert: each lane fails the call that panics, then works again.
    embedder.inject_panics(1);
    let failed = embedder.embed(texts.clone()).await;
    assert!(matches!(failed, Err(EmbedError::Panicked(_))), "{failed:?}");
    let again = embedder.embed(texts.clone()).await?;
    assert!(cosine(&again[0], &reference[0]) > 0.999);
    assert!(cosine(&again[1], &reference[1]) > 0.999);
    embedder.inject_panics(1);
    let failed = embedder.embed_query("parse a json file").await;
    assert!(matches!(failed, Err(EmbedError::Panicked(_))), "{failed:?}");
    let query = embedder.embed_query("parse a json file").await?;
    assert!(cosine(&query, &reference[0]) > 0.999);
    Ok(())
}
