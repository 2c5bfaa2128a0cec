//! Skip rules: files that are not worth indexing (binary, oversized, minified, not UTF-8).

use std::fmt;

use super::ChunkerConfig;

/// Why a file was not chunked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Larger than the configured limit.
    TooLarge {
        /// Size of the file in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Contains a NUL byte.
    Binary,
    /// Not valid UTF-8.
    InvalidUtf8 {
        /// Length of the valid prefix in bytes.
        valid_up_to: usize,
    },
    /// Very long lines: generated or minified code, which searches badly.
    Minified {
        /// Length of the longest line in bytes.
        longest_line: usize,
        /// Mean line length in bytes.
        mean_line: usize,
    },
}

impl SkipReason {
    /// Short stable code for logs and payloads: `too_large`, `binary`, `invalid_utf8`, `minified`.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::TooLarge { .. } => "too_large",
            SkipReason::Binary => "binary",
            SkipReason::InvalidUtf8 { .. } => "invalid_utf8",
            SkipReason::Minified { .. } => "minified",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::TooLarge { size, limit } => {
                write!(f, "file is {size} bytes, over the {limit}-byte limit")
            }
            SkipReason::Binary => f.write_str("file looks binary (contains a NUL byte)"),
            SkipReason::InvalidUtf8 { valid_up_to } => {
                write!(
                    f,
                    "file is not valid UTF-8 (first bad byte at offset {valid_up_to})"
                )
            }
            SkipReason::Minified {
                longest_line,
                mean_line,
            } => write!(
                f,
                "file looks minified (longest line {longest_line} bytes, mean {mean_line} bytes)"
            ),
        }
    }
}

/// Returns the file as text, or why it is skipped.
pub(super) fn check<'a>(content: &'a [u8], config: &ChunkerConfig) -> Result<&'a str, SkipReason> {
    if content.len() > config.max_file_bytes {
        return Err(SkipReason::TooLarge {
            size: content.len(),
            limit: config.max_file_bytes,
        });
    }
    if content.contains(&0) {
        return Err(SkipReason::Binary);
    }
    let text = std::str::from_utf8(content).map_err(|error| SkipReason::InvalidUtf8 {
        valid_up_to: error.valid_up_to(),
    })?;
    let mut longest_line = 0;
    let mut lines = 0;
    for line in text.as_bytes().split(|byte| *byte == b'\n') {
        longest_line = longest_line.max(line.len());
        lines += 1;
    }
    let mean_line = text.len() / lines.max(1);
    let minified = longest_line > config.max_line_bytes
        || (text.len() > 1024 && mean_line > config.max_mean_line_bytes);
    if minified {
        return Err(SkipReason::Minified {
            longest_line,
            mean_line,
        });
    }
    Ok(text)
}
