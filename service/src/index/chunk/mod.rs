//! Chunker: cuts a source file into the pieces a user searches for (functions, methods, types,
//! module-level blocks) with tree-sitter, or into line windows for unknown languages.
//!
//! The chunks of a file tile it: in order, without overlap, and with only whitespace between
//! them. A definition over the size budget is split at its children's boundaries; small
//! neighbours are merged up to the budget, but two definitions never share a chunk, so every
//! function keeps its own symbol name.

mod language;
mod lines;
mod piece;
mod skip;
mod split;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use sha2::{Digest, Sha256};

pub use language::Language;
pub use skip::SkipReason;

use lines::LineIndex;

/// Errors of the chunker. User input never causes one: bad files are skipped with a reason.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// The tree-sitter core refused a grammar (an ABI mismatch between crate versions).
    #[error("tree-sitter grammar for {language} could not be loaded: {source}")]
    Grammar {
        /// The language whose grammar failed.
        language: Language,
        /// What tree-sitter reported.
        #[source]
        source: tree_sitter::LanguageError,
    },
}

/// What a chunk is, as stored in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkKind {
    /// A free function.
    Function,
    /// A function inside a class, impl, trait or interface.
    Method,
    /// A class (or record).
    Class,
    /// A struct or union.
    Struct,
    /// An enum.
    Enum,
    /// A Rust impl block.
    Impl,
    /// A Rust trait.
    Trait,
    /// An interface.
    Interface,
    /// A module or namespace with a body.
    Module,
    /// A type alias or other named type.
    TypeAlias,
    /// A macro definition.
    Macro,
    /// Module-level code outside any definition (imports, constants, statements).
    Block,
    /// A window of lines from a file without a grammar.
    Lines,
}

impl ChunkKind {
    /// Every kind, for parsing stored names back.
    const ALL: [ChunkKind; 13] = [
        ChunkKind::Function,
        ChunkKind::Method,
        ChunkKind::Class,
        ChunkKind::Struct,
        ChunkKind::Enum,
        ChunkKind::Impl,
        ChunkKind::Trait,
        ChunkKind::Interface,
        ChunkKind::Module,
        ChunkKind::TypeAlias,
        ChunkKind::Macro,
        ChunkKind::Block,
        ChunkKind::Lines,
    ];

    /// Stable lower-case name, as stored in the index payload.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Function => "function",
            ChunkKind::Method => "method",
            ChunkKind::Class => "class",
            ChunkKind::Struct => "struct",
            ChunkKind::Enum => "enum",
            ChunkKind::Impl => "impl",
            ChunkKind::Trait => "trait",
            ChunkKind::Interface => "interface",
            ChunkKind::Module => "module",
            ChunkKind::TypeAlias => "type_alias",
            ChunkKind::Macro => "macro",
            ChunkKind::Block => "block",
            ChunkKind::Lines => "lines",
        }
    }

    /// Parses the stored name back; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<ChunkKind> {
        ChunkKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// Whether members of this definition are methods (functions inside it are not free).
    pub(crate) fn is_container(self) -> bool {
        matches!(
            self,
            ChunkKind::Class | ChunkKind::Impl | ChunkKind::Trait | ChunkKind::Interface
        )
    }
}

impl fmt::Display for ChunkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One searchable piece of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Path of the file, as given by the caller.
    pub path: String,
    /// Language of the file.
    pub language: Language,
    /// Qualified name of the definition (`Parser::parse`, `Shape.area`); `None` for module-level blocks.
    pub symbol: Option<String>,
    /// What the chunk is.
    pub kind: ChunkKind,
    /// Byte range in the file.
    pub byte_range: Range<usize>,
    /// First line, 1-based.
    pub start_line: usize,
    /// Last line, 1-based and inclusive.
    pub end_line: usize,
    /// The chunk's text: exactly `file[byte_range]`.
    pub content: String,
    /// Lower-case hex SHA-256 of `content`.
    pub content_hash: String,
}

/// Limits of the chunker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Size budget of one chunk in bytes; larger definitions are split, smaller neighbours merged.
    pub max_chunk_bytes: usize,
    /// Files larger than this are skipped.
    pub max_file_bytes: usize,
    /// A file with a line longer than this is taken as minified and skipped.
    pub max_line_bytes: usize,
    /// A file over 1 KiB whose mean line length exceeds this is taken as minified and skipped.
    pub max_mean_line_bytes: usize,
    /// Lines per window for files without a grammar.
    pub window_lines: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            // About what all-MiniLM-L6-v2 sees in its 256 tokens of code.
            max_chunk_bytes: 1024,
            max_file_bytes: 1024 * 1024,
            max_line_bytes: 4096,
            max_mean_line_bytes: 200,
            window_lines: 40,
        }
    }
}

/// What the chunker made of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// The file's chunks, in order (empty for an empty or whitespace-only file).
    Chunks(Vec<Chunk>),
    /// The file was not chunked, and why.
    Skipped(SkipReason),
}

/// Cuts files into chunks; cheap to clone and safe to share between threads.
#[derive(Debug, Clone, Default)]
pub struct Chunker {
    config: ChunkerConfig,
}

/// Makes tree-sitter allocate with mimalloc instead of the C library's malloc: parsing allocates
/// heavily, and with glibc's malloc chunking ran at 9.4 MB per CPU-second against 10.4 with
/// mimalloc (`service/benches/chunking.rs`).
///
/// # Safety
///
/// Call before any tree-sitter object (parser, tree, cursor) exists in the process: one allocated
/// before would later be freed by the other allocator. The service binary calls it first thing in
/// `main`; libraries (the harness) leave tree-sitter's default alone.
pub unsafe fn use_mimalloc_for_tree_sitter() {
    use libmimalloc_sys::{mi_calloc, mi_free, mi_malloc, mi_realloc};
    // SAFETY: the caller guarantees no tree-sitter allocation exists yet; the four functions are
    // one allocator's matching malloc, calloc, realloc and free.
    unsafe {
        tree_sitter::set_allocator(
            Some(mi_malloc),
            Some(mi_calloc),
            Some(mi_realloc),
            Some(mi_free),
        );
    }
}

thread_local! {
    // Parsers are reused per thread: creating one and loading a grammar costs more than a small parse.
    static PARSERS: RefCell<HashMap<Language, tree_sitter::Parser>> = RefCell::new(HashMap::new());
}

impl Chunker {
    /// A chunker with the given limits.
    pub fn new(config: ChunkerConfig) -> Self {
        Self { config }
    }

    /// The limits in use.
    pub fn config(&self) -> &ChunkerConfig {
        &self.config
    }

    /// Chunks one file, or says why it is skipped. The language comes from the path's extension.
    pub fn chunk(&self, path: &str, content: &[u8]) -> Result<ChunkOutcome, ChunkError> {
        let source = match skip::check(content, &self.config) {
            Ok(source) => source,
            Err(reason) => return Ok(ChunkOutcome::Skipped(reason)),
        };
        let language = Language::from_path(path);
        let budget = self.config.max_chunk_bytes.max(1);
        let pieces = match self.parse(language, source)? {
            Some(tree) => split::pieces(&tree, source, language, budget),
            None => lines::windows(source, self.config.window_lines, budget),
        };
        let line_index = LineIndex::new(source);
        let chunks = split::tile(source, &pieces, budget)
            .into_iter()
            .map(|(range, label)| {
                let content = source[range.clone()].to_owned();
                Chunk {
                    path: path.to_owned(),
                    language,
                    symbol: label.symbol,
                    kind: label.kind,
                    start_line: line_index.line_of(range.start),
                    end_line: line_index.line_of(range.end.saturating_sub(1).max(range.start)),
                    content_hash: content_hash(&content),
                    byte_range: range,
                    content,
                }
            })
            .collect();
        Ok(ChunkOutcome::Chunks(chunks))
    }

    /// Parses with the language's grammar; `None` for plain text or when tree-sitter gives up.
    fn parse(
        &self,
        language: Language,
        source: &str,
    ) -> Result<Option<tree_sitter::Tree>, ChunkError> {
        let Some(grammar) = language.grammar() else {
            return Ok(None);
        };
        PARSERS.with(|parsers| {
            let mut parsers = parsers.borrow_mut();
            let parser = match parsers.entry(language) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let mut parser = tree_sitter::Parser::new();
                    parser
                        .set_language(&grammar)
                        .map_err(|source| ChunkError::Grammar { language, source })?;
                    entry.insert(parser)
                }
            };
            let tree = parser.parse(source, None);
            if tree.is_none() {
                // Only happens after a cancellation or timeout; reset so the parser is reusable.
                parser.reset();
                tracing::warn!(%language, "tree-sitter gave up; falling back to line windows");
            }
            Ok(tree)
        })
    }
}

/// Lower-case hex SHA-256 of a chunk's text.
pub fn content_hash(content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// How a run of pieces is labelled once merged into a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Label {
    pub(crate) kind: ChunkKind,
    pub(crate) symbol: Option<String>,
}

#[cfg(test)]
fn split_tiny_bytes() -> usize {
    split::TINY_BYTES
}

#[cfg(test)]
mod tests;
