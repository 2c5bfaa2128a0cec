//! Embedder: all-MiniLM-L6-v2 (int8) through fastembed and a dynamically loaded ONNX Runtime,
//! set up as `shared/recipes/embeddings.md` describes (mean pooling, max length 256).
//!
//! Loading takes about half a second, so a process loads the model once ([`Embedder::shared`])
//! and clones the handle; inference runs on the blocking thread pool.
//!
//! The model runs in two lanes, each a session of its own: one for search queries, one for
//! file chunks. A file is embedded one batch at a time, each batch taking the bulk lane alone,
//! so files of several workers take turns, and a query never waits behind a file (a large file
//! holds the bulk lane for minutes). A panic inside the model fails that call only: the lane
//! drops its session and loads a fresh one on its next use.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use queue::worker::panic_message;

/// Dimensions of the vectors the model produces.
pub const EMBEDDING_DIM: usize = 384;

/// Environment variable naming the model folder.
pub const MODEL_DIR_ENV: &str = "QV_MODEL_DIR";

/// Environment variable naming the ONNX Runtime shared library.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// The files the model folder must hold.
pub const MODEL_FILES: [&str; 5] = [
    "model.onnx",
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

/// Errors of the embedder.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file is missing: run `scripts/fetch-assets.sh`.
    #[error("model file {path} is missing (run scripts/fetch-assets.sh or set QV_MODEL_DIR)")]
    ModelFileMissing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// The ONNX Runtime library is missing: run `scripts/fetch-assets.sh`.
    #[error("ONNX Runtime library {path} is missing (run scripts/fetch-assets.sh or set ORT_DYLIB_PATH)")]
    RuntimeMissing {
        /// The library that was looked for.
        path: PathBuf,
    },
    /// The ONNX Runtime library could not be loaded, or is older than 1.24.
    #[error("ONNX Runtime library {path} could not be loaded: {reason}")]
    RuntimeUnusable {
        /// The library that was tried.
        path: PathBuf,
        /// What the loader reported (for instance a version that is too old).
        reason: String,
    },
    /// A model file could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// fastembed refused the model or failed to run it.
    #[error("embedding model failed: {0}")]
    Model(String),
    /// The model answered with vectors of an unexpected size or count.
    #[error("model returned {got} vectors of {dim} dimensions for {expected} texts")]
    BadOutput {
        /// Number of texts sent.
        expected: usize,
        /// Number of vectors returned.
        got: usize,
        /// Dimensions of the first vector.
        dim: usize,
    },
    /// The model panicked on this call (the next call runs on a freshly loaded session).
    #[error("embedding model panicked: {0}")]
    Panicked(String),
    /// The blocking task running the model was cancelled or panicked.
    #[error("embedding task failed: {0}")]
    Task(String),
}

/// Where the model and the runtime are, and how to run them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderConfig {
    /// Folder holding [`MODEL_FILES`].
    pub model_dir: PathBuf,
    /// Absolute path of `libonnxruntime.so` (1.24 or newer).
    pub ort_dylib_path: PathBuf,
    /// Texts per inference batch (16–32 keeps memory low).
    pub batch_size: usize,
    /// Tokens per text; longer texts are truncated (the model was trained at 256).
    pub max_length: usize,
    /// ONNX Runtime intra-op threads (1 is fastest on a shared 2-core machine).
    pub intra_threads: usize,
}

impl EmbedderConfig {
    /// Reads `QV_MODEL_DIR` and `ORT_DYLIB_PATH`, defaulting to the repository's `.assets/`
    /// folder (where `scripts/fetch-assets.sh` puts them); relative paths become absolute.
    pub fn from_env() -> Self {
        let assets = repo_root().join(".assets");
        let model_dir = std::env::var_os(MODEL_DIR_ENV)
            .filter(|value| !value.is_empty())
            .map_or_else(|| assets.join("model"), PathBuf::from);
        let ort_dylib_path = std::env::var_os(ORT_DYLIB_ENV)
            .filter(|value| !value.is_empty())
            .map_or_else(
                || assets.join("onnxruntime").join("libonnxruntime.so.1.24.1"),
                PathBuf::from,
            );
        Self::new(model_dir, ort_dylib_path)
    }

    /// A configuration for the given locations with the recipe's settings.
    pub fn new(model_dir: impl Into<PathBuf>, ort_dylib_path: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: absolute(model_dir.into()),
            ort_dylib_path: absolute(ort_dylib_path.into()),
            // With texts sorted by length, smaller batches pad less: realistic chunks ran at
            // 16.7/s in batches of 16 against 10.9/s in batches of 32 (service/benches/embedding).
            batch_size: 16,
            max_length: 256,
            intra_threads: 1,
        }
    }
}

/// The repository root, known at compile time (the service crate sits one level below it).
fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Makes a path absolute against the current directory: ONNX Runtime resolves relative library
/// paths against the executable's folder, which breaks for test binaries.
fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    std::path::absolute(&path).unwrap_or(path)
}

/// A loaded embedding model; clones share it.
#[derive(Clone)]
pub struct Embedder {
    inner: Arc<Inner>,
}

struct Inner {
    source: ModelSource,
    /// Search queries: one short text at a time, never behind a file.
    query: Lane,
    /// File chunks, one batch per turn.
    bulk: Lane,
    batch_size: usize,
    /// Model runs still to fail with a panic (a test hook; see [`Embedder::inject_panics`]).
    injected_panics: AtomicUsize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("batch_size", &self.inner.batch_size)
            .finish_non_exhaustive()
    }
}

/// Where a session is built from, kept so a lane can load a fresh one after a panic. The files
/// are read again then rather than kept in memory (the model alone is 23 MB).
struct ModelSource {
    model_dir: PathBuf,
    max_length: usize,
    intra_threads: usize,
}

impl ModelSource {
    fn session(&self) -> Result<TextEmbedding, EmbedError> {
        let paths = MODEL_FILES.map(|name| self.model_dir.join(name));
        if let Some(missing) = paths.iter().find(|path| !path.is_file()) {
            return Err(EmbedError::ModelFileMissing {
                path: missing.clone(),
            });
        }
        let [onnx, tokenizer, model_config, special_tokens, tokenizer_config] = paths
            .map(|path| std::fs::read(&path).map_err(|source| EmbedError::Read { path, source }));
        let tokenizer = TokenizerFiles {
            tokenizer_file: tokenizer?,
            config_file: model_config?,
            special_tokens_map_file: special_tokens?,
            tokenizer_config_file: tokenizer_config?,
        };
        // Mean pooling is required: the default for user-defined models (CLS) gives wrong vectors.
        let model = UserDefinedEmbeddingModel::new(onnx?, tokenizer).with_pooling(Pooling::Mean);
        let options = InitOptionsUserDefined::new()
            .with_max_length(self.max_length)
            .with_intra_threads(self.intra_threads.max(1));
        TextEmbedding::try_new_from_user_defined(model, options)
            .map_err(|error| EmbedError::Model(error.to_string()))
    }
}

/// One session of the model and the lock that gives it to one caller at a time.
struct Lane {
    name: &'static str,
    /// `None` when a fresh session could not be loaded after a panic; the next call tries.
    session: Mutex<Option<TextEmbedding>>,
    /// Texts embedded so far (successfully or not).
    texts: AtomicU64,
}

impl Lane {
    fn new(name: &'static str, session: TextEmbedding) -> Self {
        Self {
            name,
            session: Mutex::new(Some(session)),
            texts: AtomicU64::new(0),
        }
    }

    /// Runs the model on `texts` (blocking). A panic inside fails this call only.
    fn run(&self, inner: &Inner, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // A panic is caught below while the lock is held, so the lock is never poisoned by
        // one; recovering from poison anyway keeps the lane usable whatever happens.
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        if session.is_none() {
            tracing::warn!(lane = self.name, "loading a fresh embedding session");
            let fresh = std::panic::catch_unwind(AssertUnwindSafe(|| inner.source.session()))
                .map_err(|panic| EmbedError::Panicked(panic_message(&*panic)))??;
            *session = Some(fresh);
        }
        let Some(model) = session.as_mut() else {
            return Err(EmbedError::Model("no embedding session".into()));
        };
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let injected = inner
                .injected_panics
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if injected {
                panic!("injected panic inside the embedding model");
            }
            model.embed(texts, Some(inner.batch_size))
        }));
        self.texts.fetch_add(texts.len() as u64, Ordering::Relaxed);
        match ran {
            Ok(result) => result.map_err(|error| EmbedError::Model(error.to_string())),
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::error!(lane = self.name, %message, "embedding model panicked; loading a fresh session");
                // Whatever state the session was left in, it is not used again. A fresh one is
                // loaded now, on this blocking thread, so the next caller does not wait for it;
                // if that fails too, the next call tries again.
                *session = std::panic::catch_unwind(AssertUnwindSafe(|| inner.source.session()))
                    .ok()
                    .and_then(Result::ok);
                Err(EmbedError::Panicked(message))
            }
        }
    }
}

/// The process-wide embedder behind [`Embedder::shared`].
static SHARED: OnceLock<Embedder> = OnceLock::new();

impl Embedder {
    /// Loads the model (blocking, ~0.5 s per lane). Checks the files and the runtime first, so
    /// a missing or too-old asset is an [`EmbedError`] rather than a panic inside fastembed.
    pub fn load(config: &EmbedderConfig) -> Result<Self, EmbedError> {
        if let Some(missing) = MODEL_FILES
            .map(|name| config.model_dir.join(name))
            .into_iter()
            .find(|path| !path.is_file())
        {
            return Err(EmbedError::ModelFileMissing { path: missing });
        }
        init_runtime(&config.ort_dylib_path)?;
        let source = ModelSource {
            model_dir: config.model_dir.clone(),
            max_length: config.max_length,
            intra_threads: config.intra_threads,
        };
        let query = Lane::new("query", source.session()?);
        let bulk = Lane::new("bulk", source.session()?);
        tracing::info!(model_dir = %config.model_dir.display(), "embedding model loaded");
        Ok(Self {
            inner: Arc::new(Inner {
                source,
                query,
                bulk,
                batch_size: config.batch_size.clamp(1, 256),
                injected_panics: AtomicUsize::new(0),
            }),
        })
    }

    /// The process-wide embedder, loaded on first use from `config`; later calls return the same
    /// model whatever their config. A failed load is not cached, so it can be retried.
    pub fn shared(config: &EmbedderConfig) -> Result<Self, EmbedError> {
        if let Some(embedder) = SHARED.get() {
            return Ok(embedder.clone());
        }
        let embedder = Self::load(config)?;
        // Two first callers may race; both models work, and the first one stored wins.
        Ok(SHARED.get_or_init(|| embedder).clone())
    }

    /// Embeds file chunks on the blocking thread pool, one batch per turn of the bulk lane;
    /// one L2-normalised vector per text, in order. Dropping the future stops after the batch
    /// in progress.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let texts = Arc::new(texts);
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in batches_by_length(&texts, self.inner.batch_size) {
            let (inner, texts, indices) = (self.inner.clone(), texts.clone(), batch.clone());
            let embedded = tokio::task::spawn_blocking(move || {
                let batch: Vec<&str> = indices.iter().map(|&i| texts[i].as_str()).collect();
                inner.bulk.run(&inner, &batch)
            })
            .await
            .map_err(|error| EmbedError::Task(error.to_string()))??;
            place(&mut vectors, &batch, embedded)?;
        }
        check_output(&vectors, texts.len())?;
        Ok(vectors)
    }

    /// Embeds one search query in the query lane, which file embedding never holds.
    pub async fn embed_query(&self, query: &str) -> Result<Vec<f32>, EmbedError> {
        let inner = self.inner.clone();
        let query = query.to_owned();
        let mut vectors = tokio::task::spawn_blocking(move || inner.query.run(&inner, &[&query]))
            .await
            .map_err(|error| EmbedError::Task(error.to_string()))??;
        check_output(&vectors, 1)?;
        vectors.pop().ok_or(EmbedError::BadOutput {
            expected: 1,
            got: 0,
            dim: 0,
        })
    }

    /// Embeds texts on the calling thread in the bulk lane (for benchmarks and synchronous
    /// callers), batch by batch as [`Embedder::embed`] does.
    pub fn embed_blocking<S: AsRef<str> + Send + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in batches_by_length(texts, self.inner.batch_size) {
            let refs: Vec<&str> = batch.iter().map(|&i| texts[i].as_ref()).collect();
            let embedded = self.inner.bulk.run(&self.inner, &refs)?;
            place(&mut vectors, &batch, embedded)?;
        }
        check_output(&vectors, texts.len())?;
        Ok(vectors)
    }

    /// Texts per inference batch.
    pub fn batch_size(&self) -> usize {
        self.inner.batch_size
    }

    /// File chunks embedded so far by this embedder (successfully or not).
    pub fn bulk_texts(&self) -> u64 {
        self.inner.bulk.texts.load(Ordering::Relaxed)
    }

    /// For tests: the next `count` model runs (either lane) panic inside the model, as a bug in
    /// the model or its tokenizer would.
    #[doc(hidden)]
    pub fn inject_panics(&self, count: usize) {
        self.inner.injected_panics.store(count, Ordering::SeqCst);
    }
}

/// Indices of `texts` in batches of similar length: a batch is padded to its longest text, so
/// this wastes less compute on padding (masked out, so the vectors do not change).
fn batches_by_length<S: AsRef<str>>(texts: &[S], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].as_ref().len());
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Puts a batch's vectors at their texts' places.
fn place(
    vectors: &mut [Vec<f32>],
    batch: &[usize],
    embedded: Vec<Vec<f32>>,
) -> Result<(), EmbedError> {
    if embedded.len() != batch.len() {
        return Err(EmbedError::BadOutput {
            expected: batch.len(),
            got: embedded.len(),
            dim: embedded.first().map_or(0, Vec::len),
        });
    }
    for (vector, &i) in embedded.into_iter().zip(batch) {
        if let Some(slot) = vectors.get_mut(i) {
            *slot = vector;
        }
    }
    Ok(())
}

fn check_output(vectors: &[Vec<f32>], expected: usize) -> Result<(), EmbedError> {
    if vectors.len() != expected || vectors.iter().any(|v| v.len() != EMBEDDING_DIM) {
        return Err(EmbedError::BadOutput {
            expected,
            got: vectors.len(),
            dim: vectors.first().map_or(0, Vec::len),
        });
    }
    Ok(())
}

/// Loads ONNX Runtime from an explicit path once per process; a missing file or a version
/// older than the one `ort` needs is an error here instead of a panic on first use.
fn init_runtime(path: &Path) -> Result<(), EmbedError> {
    if !path.is_file() {
        return Err(EmbedError::RuntimeMissing {
            path: path.to_path_buf(),
        });
    }
    // ONNX Runtime can be loaded once per process; `ort` silently keeps the first library, so a
    // request for another one is refused here rather than quietly served by the first.
    static LOADED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    match loaded.as_deref() {
        Some(first) if first == path => Ok(()),
        Some(first) => Err(EmbedError::RuntimeUnusable {
            path: path.to_path_buf(),
            reason: format!(
                "this process already loaded ONNX Runtime from {}",
                first.display()
            ),
        }),
        None => {
            ort::init_from(path)
                .map(drop)
                .map_err(|error| EmbedError::RuntimeUnusable {
                    path: path.to_path_buf(),
                    reason: error.to_string(),
                })?;
            *loaded = Some(path.to_path_buf());
            Ok(())
        }
    }
}

/// Cosine similarity of two vectors (a dot product, since the model's vectors are normalised,
/// but computed in full so it also holds for other inputs).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute() {
        let config = EmbedderConfig::new("some/model", "lib/libonnxruntime.so");
        assert!(config.model_dir.is_absolute());
        assert!(config.ort_dylib_path.is_absolute());
        assert!(config.model_dir.ends_with("some/model"));
    }

    #[test]
    fn cosine_of_parallel_and_orthogonal_vectors() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn a_missing_model_dir_is_a_typed_error() {
        let config = EmbedderConfig::new("/nonexistent/model", "/nonexistent/libonnxruntime.so");
        assert!(matches!(
            Embedder::load(&config),
            Err(EmbedError::ModelFileMissing { .. })
        ));
    }
}
