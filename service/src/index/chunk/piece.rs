//! Pieces: byte ranges of a file with the role that decides how they merge into chunks. The
//! syntax-tree walk ([`super::split`]) and the line windows ([`super::lines`]) both make them.

use std::ops::Range;

use super::Label;

/// What a piece is, which decides how it merges.
#[derive(Debug, Clone)]
pub(crate) enum PieceRole {
    /// A whole definition within the budget; never shares a chunk with another definition.
    Definition(Label),
    /// A comment, attribute or decorator: merged forward into what follows.
    Trivia(Option<Label>),
    /// Any other code, labelled by the enclosing definition that was split, if any.
    Filler(Option<Label>),
    /// A line window of a file without a grammar: a chunk of its own.
    Lines,
}

/// A byte range of the file and its role.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub(crate) range: Range<usize>,
    pub(crate) role: PieceRole,
}
