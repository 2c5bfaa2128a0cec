//! Line arithmetic: byte offset to line number, and line windows for text without a grammar.

use super::piece::{Piece, PieceRole};

/// Byte offsets of line starts, for turning a byte offset into a 1-based line number.
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes the line starts of a text.
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, byte)| *byte == b'\n')
                .map(|(offset, _)| offset + 1),
        );
        Self { starts }
    }

    /// The 1-based line holding a byte offset.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|start| *start <= offset).max(1)
    }
}

/// Cuts a whole text into windows of at most `window_lines` lines and `budget` bytes.
pub(super) fn windows(text: &str, window_lines: usize, budget: usize) -> Vec<Piece> {
    split_range(
        text,
        0..text.len(),
        window_lines.max(1),
        budget,
        PieceRole::Lines,
    )
}

/// Cuts a byte range at line ends into pieces of at most `max_lines` lines and `budget` bytes;
/// a single line over the budget is cut at character boundaries.
pub(super) fn split_range(
    text: &str,
    range: std::ops::Range<usize>,
    max_lines: usize,
    budget: usize,
    role: PieceRole,
) -> Vec<Piece> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let mut end = start;
        let mut lines = 0;
        // Grow by whole lines while within both limits.
        while end < range.end && lines < max_lines {
            let line_end = bytes[end..range.end]
                .iter()
                .position(|byte| *byte == b'\n')
                .map_or(range.end, |offset| end + offset + 1);
            if line_end - start > budget && end > start {
                break;
            }
            end = line_end;
            lines += 1;
        }
        if end - start > budget {
            // One line longer than the budget: cut it at a character boundary.
            end = start + budget;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            if end == start {
                // A budget smaller than one character: take that character whole.
                end = start + 1;
                while end < range.end && !text.is_char_boundary(end) {
                    end += 1;
                }
            }
        }
        pieces.push(Piece {
            range: start..end,
            role: role.clone(),
        });
        start = end;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_one_based() {
        let index = LineIndex::new("a\nbc\n\nd");
        assert_eq!(index.line_of(0), 1);
        assert_eq!(index.line_of(1), 1);
        assert_eq!(index.line_of(2), 2);
        assert_eq!(index.line_of(5), 3);
        assert_eq!(index.line_of(6), 4);
    }

    #[test]
    fn windows_respect_line_and_byte_limits() {
        let text = "one\ntwo\nthree\nfour\nfive\n";
        let pieces = windows(text, 2, 1000);
        let ranges: Vec<_> = pieces.iter().map(|p| &text[p.range.clone()]).collect();
        assert_eq!(ranges, ["one\ntwo\n", "three\nfour\n", "five\n"]);

        let long = "é".repeat(10);
        let pieces = windows(&long, 5, 5);
        assert!(pieces.iter().all(|p| p.range.len() <= 5));
        assert_eq!(
            pieces.iter().map(|p| p.range.len()).sum::<usize>(),
            long.len()
        );
    }
}
