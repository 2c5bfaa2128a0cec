//! Embedder: all-MiniLM-L6-v2 (int8) through fastembed and a dynamically loaded ONNX Runtime,
//! set up as `shared/recipes/embeddings.md` describes (mean pooling, max length 256).
//!
//! Loading takes about half a second and ~185 MB, so a process loads the model once
//! ([`Embedder::shared`]) and clones the handle; inference runs on the blocking thread pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

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
    /// A previous panic inside the model left its lock poisoned.
    #[error("embedding model is unusable after an earlier panic")]
    Poisoned,
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
    model: Arc<Mutex<TextEmbedding>>,
    batch_size: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// The process-wide embedder behind [`Embedder::shared`].
static SHARED: OnceLock<Embedder> = OnceLock::new();

impl Embedder {
    /// Loads the model (blocking, ~0.5 s). Checks the files and the runtime first, so a missing
    /// or too-old asset is an [`EmbedError`] rather than a panic inside fastembed.
    pub fn load(config: &EmbedderConfig) -> Result<Self, EmbedError> {
        let paths = MODEL_FILES.map(|name| config.model_dir.join(name));
        if let Some(missing) = paths.iter().find(|path| !path.is_file()) {
            return Err(EmbedError::ModelFileMissing {
                path: missing.clone(),
            });
        }
        init_runtime(&config.ort_dylib_path)?;
        let [onnx, tokenizer, model_config, special_tokens, tokenizer_config] = paths
            .map(|path| std::fs::read(&path).map_err(|source| EmbedError::Read { path, source }));
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: tokenizer?,
            config_file: model_config?,
            special_tokens_map_file: special_tokens?,
            tokenizer_config_file: tokenizer_config?,
        };
        // Mean pooling is required: the default for user-defined models (CLS) gives wrong vectors.
        let model =
            UserDefinedEmbeddingModel::new(onnx?, tokenizer_files).with_pooling(Pooling::Mean);
        let options = InitOptionsUserDefined::new()
            .with_max_length(config.max_length)
            .with_intra_threads(config.intra_threads.max(1));
        let model = TextEmbedding::try_new_from_user_defined(model, options)
            .map_err(|error| EmbedError::Model(error.to_string()))?;
        tracing::info!(model_dir = %config.model_dir.display(), "embedding model loaded");
        Ok(Self {
            model: Arc::new(Mutex::new(model)),
            batch_size: config.batch_size.clamp(1, 256),
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

    /// Embeds texts on the blocking thread pool; one L2-normalised vector per text, in order.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let embedder = self.clone();
        tokio::task::spawn_blocking(move || embedder.embed_blocking(&texts))
            .await
            .map_err(|error| EmbedError::Task(error.to_string()))?
    }

    /// Embeds texts on the calling thread (for benchmarks and synchronous callers).
    pub fn embed_blocking<S: AsRef<str> + Send + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // A batch is padded to its longest text: batching texts of similar length wastes less
        // compute on padding (masked out, so the vectors do not change).
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].as_ref().len());
        let sorted: Vec<&str> = order.iter().map(|&i| texts[i].as_ref()).collect();
        let mut model = self.model.lock().map_err(|_| EmbedError::Poisoned)?;
        let embedded = model
            .embed(&sorted, Some(self.batch_size))
            .map_err(|error| EmbedError::Model(error.to_string()))?;
        drop(model);
        let mut vectors = vec![Vec::new(); embedded.len()];
        for (vector, &i) in embedded.into_iter().zip(&order) {
            if let Some(slot) = vectors.get_mut(i) {
                *slot = vector;
            }
        }
        let dim = vectors.first().map_or(0, Vec::len);
        if vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != EMBEDDING_DIM) {
            return Err(EmbedError::BadOutput {
                expected: texts.len(),
                got: vectors.len(),
                dim,
            });
        }
        Ok(vectors)
    }

    /// Texts per inference batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
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
    let mut loaded = LOADED.lock().map_err(|_| EmbedError::Poisoned)?;
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
