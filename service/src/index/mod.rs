//! Indexing pipeline: chunking, embedding and storage of source files for semantic search.
//!
//! - [`chunk`]: tree-sitter chunker (line windows for unknown languages, skip rules);
//! - [`embed`]: the shared fastembed model (all-MiniLM-L6-v2, mean pooling);
//! - [`store`]: the Qdrant collection, one tenant per project.
//!
//! [`Indexer`] ties them together behind a synchronous (unqueued) API: `index_file`, `search`
//! and `delete_project`. Workers call the same methods.

pub mod chunk;
pub mod embed;
pub mod store;

use std::sync::Arc;

use qdrant_client::Qdrant;

pub use chunk::{
    Chunk, ChunkError, ChunkKind, ChunkOutcome, Chunker, ChunkerConfig, Language, SkipReason,
};
pub use embed::{EmbedError, Embedder, EmbedderConfig};
pub use store::{SearchHit, Store, StoreError};

/// Longest accepted project name.
pub const MAX_PROJECT_LEN: usize = 128;

/// What [`validate_project`] accepts, as a regular expression (ECMA-262, Python and Rust agree on
/// it) for the OpenAPI document: 1 to 128 characters from `A-Za-z0-9._-`, except `.` and `..`,
/// which a URL path cannot carry as a segment (`DELETE /projects/..` would reach another route).
pub const PROJECT_PATTERN: &str = concat!(
    r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}",
    r"|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,126}",
    r"|\.\.[A-Za-z0-9._-]{1,126})$"
);

/// Longest accepted file path, in characters.
pub const MAX_PATH_LEN: usize = 4096;

/// What a search query must match (anywhere): one character that is not white space, as
/// `str::trim` sees it (Unicode `White_Space`), so the document and [`Indexer::search`] agree.
pub const QUERY_PATTERN: &str =
    r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// Most results one search may return.
pub const MAX_SEARCH_LIMIT: u64 = 1000;

/// Errors of the indexing pipeline.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The project name is empty, too long, `.` or `..`, or has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid project name {0:?}: use 1 to 128 characters from A-Z a-z 0-9 . _ - (not `.` or `..`)")]
    InvalidProject(String),
    /// The path is empty, too long or contains a NUL byte.
    #[error("invalid path {0:?}: must be 1 to 4096 characters without NUL")]
    InvalidPath(String),
    /// The search limit is 0 or too large.
    #[error("invalid search limit {0}: must be between 1 and 1000")]
    InvalidLimit(u64),
    /// The query is empty.
    #[error("the search query is empty")]
    EmptyQuery,
    /// Chunking failed (a grammar could not be loaded).
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// Embedding failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// Qdrant failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task chunking a file was cancelled or panicked.
    #[error("chunking task failed: {0}")]
    Task(String),
}

/// What `index_file` did with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexOutcome {
    /// The file's chunks replaced whatever was stored for it before.
    Indexed {
        /// Number of chunks stored (0 for an empty file).
        chunks: usize,
    },
    /// The file was not indexed (and its old chunks, if any, were removed).
    Skipped {
        /// Why.
        reason: SkipReason,
    },
}

/// A file chunked and embedded by [`Indexer::prepare_file`], for [`Indexer::store_file`].
#[derive(Debug)]
pub struct PreparedFile {
    project: String,
    path: String,
    prepared: Prepared,
}

#[derive(Debug)]
enum Prepared {
    Chunks {
        chunks: Vec<Chunk>,
        vectors: Vec<Vec<f32>>,
    },
    Skipped(SkipReason),
}

impl PreparedFile {
    /// The file's project.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Indexes files of many projects into one collection and searches them per project.
#[derive(Debug, Clone)]
pub struct Indexer {
    chunker: Chunker,
    embedder: Embedder,
    store: Store,
}

impl Indexer {
    /// An indexer over `collection`, with the default chunker limits.
    pub fn new(client: Arc<Qdrant>, collection: impl Into<String>, embedder: Embedder) -> Self {
        Self {
            chunker: Chunker::default(),
            embedder,
            store: Store::new(client, collection),
        }
    }

    /// Replaces the chunker limits.
    pub fn with_chunker_config(mut self, config: ChunkerConfig) -> Self {
        self.chunker = Chunker::new(config);
        self
    }

    /// The embedding model (readiness checks).
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The underlying store (for counts and maintenance).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates the collection and its project index if missing; call once before indexing.
    pub async fn ensure_collection(&self) -> Result<(), IndexError> {
        Ok(self.store.ensure_collection().await?)
    }

    /// Chunks, embeds and stores one file, replacing its previous chunks; or skips it with a reason.
    /// Two calls for one file that overlap may leave either's chunks; the service's workers
    /// store through `worker::versions`, where the newest request wins.
    #[tracing::instrument(skip(self, content), fields(bytes = content.len()))]
    pub async fn index_file(
        &self,
        project: &str,
        path: &str,
        content: &[u8],
    ) -> Result<IndexOutcome, IndexError> {
        let prepared = self.prepare_file(project, path, content).await?;
        self.store_file(prepared).await
    }

    /// The slow half of [`Indexer::index_file`]: chunks and embeds a file, storing nothing.
    pub async fn prepare_file(
        &self,
        project: &str,
        path: &str,
        content: &[u8],
    ) -> Result<PreparedFile, IndexError> {
        validate_project(project)?;
        validate_path(path)?;
        let prepared = match self.chunk(path, content).await? {
            ChunkOutcome::Chunks(chunks) => {
                let texts = chunks.iter().map(embedding_text).collect();
                let vectors = self.embedder.embed(texts).await?;
                Prepared::Chunks { chunks, vectors }
            }
            ChunkOutcome::Skipped(reason) => Prepared::Skipped(reason),
        };
        Ok(PreparedFile {
            project: project.to_owned(),
            path: path.to_owned(),
            prepared,
        })
    }

    /// The quick half of [`Indexer::index_file`]: replaces the file's stored chunks with the
    /// prepared ones (or removes them, for a file that is skipped now).
    pub async fn store_file(&self, file: PreparedFile) -> Result<IndexOutcome, IndexError> {
        let PreparedFile {
            project,
            path,
            prepared,
        } = file;
        match prepared {
            Prepared::Chunks { chunks, vectors } => {
                self.store
                    .replace_file(&project, &path, &chunks, vectors)
                    .await?;
                tracing::debug!(chunks = chunks.len(), "file indexed");
                Ok(IndexOutcome::Indexed {
                    chunks: chunks.len(),
                })
            }
            Prepared::Skipped(reason) => {
                tracing::info!(reason = reason.code(), "file skipped");
                // A file that became unindexable must not keep stale chunks.
                self.store.delete_file(&project, &path).await?;
                Ok(IndexOutcome::Skipped { reason })
            }
        }
    }

    /// Chunks on the blocking pool: parsing a large file takes milliseconds of CPU.
    async fn chunk(&self, path: &str, content: &[u8]) -> Result<ChunkOutcome, IndexError> {
        let limit = self.chunker.config().max_file_bytes;
        if content.len() > limit {
            // Checked before copying the content to the blocking task.
            return Ok(ChunkOutcome::Skipped(SkipReason::TooLarge {
                size: content.len(),
                limit,
            }));
        }
        let chunker = self.chunker.clone();
        let (path, content) = (path.to_owned(), content.to_vec());
        let outcome = tokio::task::spawn_blocking(move || chunker.chunk(&path, &content))
            .await
            .map_err(|error| IndexError::Task(error.to_string()))??;
        Ok(outcome)
    }

    /// The chunks of a project most similar to a natural-language query, best first.
    #[tracing::instrument(skip(self))]
    pub async fn search(
        &self,
        project: &str,
        query: &str,
        limit: u64,
    ) -> Result<Vec<SearchHit>, IndexError> {
        validate_project(project)?;
        if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(IndexError::InvalidLimit(limit));
        }
        if query.trim().is_empty() {
            return Err(IndexError::EmptyQuery);
        }
        let vector = self.embedder.embed_query(query).await?;
        Ok(self.store.search(project, vector, limit).await?)
    }

    /// Removes one file's chunks from a project.
    pub async fn delete_file(&self, project: &str, path: &str) -> Result<(), IndexError> {
        validate_project(project)?;
        validate_path(path)?;
        Ok(self.store.delete_file(project, path).await?)
    }

    /// Removes every chunk of a project.
    pub async fn delete_project(&self, project: &str) -> Result<(), IndexError> {
        validate_project(project)?;
        Ok(self.store.delete_project(project).await?)
    }
}

/// The text embedded for a chunk: where it is and what it is named help the query match.
fn embedding_text(chunk: &Chunk) -> String {
    match &chunk.symbol {
        Some(symbol) => format!(
            "{} {} {}\n{}",
            chunk.path, chunk.kind, symbol, chunk.content
        ),
        None => format!("{}\n{}", chunk.path, chunk.content),
    }
}

/// Checks a project name: 1–128 characters from `[A-Za-z0-9._-]`, not `.` or `..`
/// ([`PROJECT_PATTERN`]).
pub fn validate_project(project: &str) -> Result<(), IndexError> {
    let valid = !project.is_empty()
        && project.len() <= MAX_PROJECT_LEN
        && project != "."
        && project != ".."
        && project
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(IndexError::InvalidProject(
            project.chars().take(MAX_PROJECT_LEN + 8).collect(),
        ))
    }
}

/// Checks a file path: 1–4096 characters without NUL.
fn validate_path(path: &str) -> Result<(), IndexError> {
    if path.is_empty() || path.chars().count() > MAX_PATH_LEN || path.contains('\0') {
        return Err(IndexError::InvalidPath(path.chars().take(256).collect()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_validated() {
        assert!(validate_project("acme-web_1.2").is_ok());
        assert!(validate_project("...").is_ok());
        for bad in ["", "a b", "a/b", "ünïcode", "x\0y", ".", ".."] {
            assert!(
                matches!(validate_project(bad), Err(IndexError::InvalidProject(_))),
                "{bad:?}"
            );
        }
        assert!(validate_project(&"a".repeat(MAX_PROJECT_LEN)).is_ok());
        assert!(validate_project(&"a".repeat(MAX_PROJECT_LEN + 1)).is_err());
    }

    /// Every string of `alphabet` up to `max_len` characters.
    fn strings(alphabet: &[char], max_len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max_len {
            last = last
                .iter()
                .flat_map(|prefix| alphabet.iter().map(move |c| format!("{prefix}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn the_documented_project_pattern_is_what_validate_project_accepts() {
        let pattern = regex::Regex::new(PROJECT_PATTERN).expect("a valid pattern");
        let mut cases = strings(&['a', 'Z', '0', '.', '_', '-', '/', ' ', 'é', '\0'], 4);
        cases.extend(["a", "."].map(|c| c.repeat(MAX_PROJECT_LEN)));
        cases.extend(["a", "."].map(|c| c.repeat(MAX_PROJECT_LEN + 1)));
        for case in cases {
            assert_eq!(
                pattern.is_match(&case),
                validate_project(&case).is_ok(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn the_documented_query_pattern_is_what_search_accepts() {
        let pattern = regex::Regex::new(QUERY_PATTERN).expect("a valid pattern");
        // A query is valid when one of its characters is not white space: one character decides.
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let query = c.to_string();
            assert_eq!(
                pattern.is_match(&query),
                !query.trim().is_empty(),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(!pattern.is_match(""));
        assert!(pattern.is_match(" \t x \u{3000}"));
    }

    #[test]
    fn paths_are_validated() {
        assert!(validate_path("src/main.rs").is_ok());
        assert!(validate_path("").is_err());
        assert!(validate_path("a\0b").is_err());
    }
}
