//! Splitting a syntax tree into pieces and merging pieces into chunks that tile the file.
//!
//! Pieces come from a walk that keeps every node within the size budget whole and opens only
//! the nodes over it, so a large definition is cut at its children's boundaries (recursively).
//! The walk uses an explicit stack: deeply nested expressions must not overflow the call stack.

use std::ops::Range;
use std::rc::Rc;

use tree_sitter::{Node, Tree};

use super::language::Language;
use super::lines;
use super::piece::{Piece, PieceRole};
use super::{ChunkKind, Label};

/// A piece is never merged into a neighbour's chunk if that would exceed the budget, except a
/// tiny leftover (such as a closing `}`) that is not worth a chunk of its own.
pub(super) const TINY_BYTES: usize = 32;

/// Where the walk is: the definition being split, if any.
struct Context {
    label: Option<Label>,
    qualifier: Option<String>,
    in_container: bool,
}

/// Walks the tree and returns its pieces in file order.
pub(super) fn pieces(tree: &Tree, source: &str, language: Language, budget: usize) -> Vec<Piece> {
    let top = Rc::new(Context {
        label: None,
        qualifier: None,
        in_container: false,
    });
    let mut out = Vec::new();
    let mut stack: Vec<(Node<'_>, Rc<Context>)> = Vec::new();
    // The root is always opened: a small file still yields one chunk per definition.
    push_children(&mut stack, tree.root_node(), &top);
    while let Some((node, context)) = stack.pop() {
        let range = node.byte_range();
        if range.is_empty() {
            continue;
        }
        let fits = range.len() <= budget;
        if fits && language.is_leading_trivia(&node) {
            out.push(Piece {
                range,
                role: PieceRole::Trivia(context.label.clone()),
            });
            continue;
        }
        match language.definition(&node, source, context.in_container) {
            Some((kind, name)) => {
                let symbol = match &context.qualifier {
                    Some(qualifier) => format!("{qualifier}{}{name}", language.path_separator()),
                    None => name,
                };
                let label = Label {
                    kind,
                    symbol: Some(symbol.clone()),
                };
                if fits {
                    out.push(Piece {
                        range,
                        role: PieceRole::Definition(label),
                    });
                } else if is_wrapper(&node) {
                    // `export class ...` or `@decorator def ...`: the inner node is the definition.
                    push_children(&mut stack, node, &context);
                } else {
                    // Members of `impl Display for Foo` are `Foo::member`.
                    let qualifier = match kind {
                        ChunkKind::Impl => symbol
                            .rsplit(" for ")
                            .next()
                            .map_or_else(|| symbol.clone(), str::to_owned),
                        _ => symbol.clone(),
                    };
                    let inner = Rc::new(Context {
                        label: Some(label),
                        qualifier: Some(qualifier),
                        in_container: kind.is_container(),
                    });
                    open(&mut stack, &mut out, node, &inner, source, budget);
                }
            }
            None if fits => out.push(Piece {
                range,
                role: PieceRole::Filler(context.label.clone()),
            }),
            None => open(&mut stack, &mut out, node, &context, source, budget),
        }
    }
    // Gaps of opened nodes were pushed when their node was opened, ahead of its children.
    out.sort_by_key(|piece| piece.range.start);
    out
}

/// Opens a node over the budget: its children go on the stack, or a leaf is cut into lines.
fn open<'t>(
    stack: &mut Vec<(Node<'t>, Rc<Context>)>,
    out: &mut Vec<Piece>,
    node: Node<'t>,
    context: &Rc<Context>,
    source: &str,
    budget: usize,
) {
    if node.child_count() == 0 {
        // A huge string literal or comment: nothing to split at but lines.
        out.extend(lines::split_range(
            source,
            node.byte_range(),
            usize::MAX,
            budget,
            PieceRole::Filler(context.label.clone()),
        ));
    } else {
        gaps(out, node, context, source, budget);
        push_children(stack, node, context);
    }
}

/// The text of `node` that none of its children covers (e.g. the `r#"` and `"#` of a Rust raw
/// string, which tree-sitter keeps in the literal node itself), as pieces, so the pieces still
/// cover every non-blank byte and no chunk swallows it past the budget.
fn gaps(out: &mut Vec<Piece>, node: Node<'_>, context: &Context, source: &str, budget: usize) {
    let mut cursor = node.walk();
    let mut at = node.start_byte();
    let ends = node
        .children(&mut cursor)
        .map(|child| (child.start_byte(), child.end_byte()))
        .chain(std::iter::once((node.end_byte(), node.end_byte())));
    for (start, end) in ends {
        if start > at {
            let gap = &source[at..start];
            let lead = gap.len() - gap.trim_start().len();
            let trail = gap.len() - gap.trim_end().len();
            if lead + trail < gap.len() {
                out.extend(lines::split_range(
                    source,
                    at + lead..start - trail,
                    usize::MAX,
                    budget,
                    PieceRole::Filler(context.label.clone()),
                ));
            }
        }
        at = at.max(end);
    }
}

/// Pushes a node's children so that they pop in file order.
fn push_children<'t>(
    stack: &mut Vec<(Node<'t>, Rc<Context>)>,
    node: Node<'t>,
    context: &Rc<Context>,
) {
    let mut cursor = node.walk();
    let first = stack.len();
    stack.extend(
        node.children(&mut cursor)
            .map(|child| (child, Rc::clone(context))),
    );
    stack[first..].reverse();
}

/// Nodes that only wrap a definition (decorators, `export`).
fn is_wrapper(node: &Node<'_>) -> bool {
    matches!(node.kind(), "decorated_definition" | "export_statement")
}

/// A run of consecutive pieces that becomes one chunk.
struct Group {
    first: usize,
    last: usize,
    has_definition: bool,
    /// Index of the first piece of the trailing run of trivia, if the group ends with trivia.
    trailing_trivia: Option<usize>,
}

/// Merges pieces into groups and returns the chunks' byte ranges with their labels.
///
/// Ranges tile the text: cut at each group's first piece, then trimmed of surrounding
/// whitespace, so only whitespace lies between consecutive chunks.
pub(super) fn tile(source: &str, pieces: &[Piece], budget: usize) -> Vec<(Range<usize>, Label)> {
    let groups = merge(pieces, budget);
    let mut chunks = Vec::with_capacity(groups.len());
    for (index, group) in groups.iter().enumerate() {
        let start = if index == 0 {
            0
        } else {
            pieces[group.first].range.start
        };
        let end = groups
            .get(index + 1)
            .map_or(source.len(), |next| pieces[next.first].range.start);
        let range = trim(source, start..end);
        if range.is_empty() {
            continue;
        }
        chunks.push((range, label_of(&pieces[group.first..=group.last])));
    }
    if chunks.is_empty() {
        let range = trim(source, 0..source.len());
        if !range.is_empty() {
            chunks.push((
                range,
                Label {
                    kind: ChunkKind::Block,
                    symbol: None,
                },
            ));
        }
    }
    chunks
}

/// Greedy merge: a group grows while it fits the budget and holds at most one definition.
fn merge(pieces: &[Piece], budget: usize) -> Vec<Group> {
    let size = |from: usize, to: usize| pieces[to].range.end - pieces[from].range.start;
    let mut groups: Vec<Group> = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        let is_definition = matches!(piece.role, PieceRole::Definition(_));
        let is_trivia = matches!(piece.role, PieceRole::Trivia(_));
        let is_lines = matches!(piece.role, PieceRole::Lines);
        if let Some(group) = groups.last_mut() {
            let lines_group = matches!(pieces[group.first].role, PieceRole::Lines);
            let fits = size(group.first, index) <= budget;
            // Line windows stay alone, two definitions never share a chunk, and trivia after a
            // definition belongs to what comes next.
            let blocked =
                is_lines || lines_group || (group.has_definition && (is_definition || is_trivia));
            let compatible = !blocked;
            if fits && compatible {
                group.last = index;
                group.has_definition |= is_definition;
                group.trailing_trivia = match (is_trivia, group.trailing_trivia) {
                    (true, Some(start)) => Some(start),
                    (true, None) => Some(index),
                    (false, _) => None,
                };
                continue;
            }
            // A definition that does not fit takes the doc comments just before it along.
            if let Some(trivia_start) = group.trailing_trivia {
                if trivia_start > group.first && size(trivia_start, index) <= budget && !is_lines {
                    group.last = trivia_start - 1;
                    group.trailing_trivia = None;
                    groups.push(Group {
                        first: trivia_start,
                        last: index,
                        has_definition: is_definition,
                        trailing_trivia: is_trivia.then_some(trivia_start),
                    });
                    continue;
                }
            }
        }
        groups.push(Group {
            first: index,
            last: index,
            has_definition: is_definition,
            trailing_trivia: is_trivia.then_some(index),
        });
    }
    absorb_tiny(pieces, groups, budget)
}

/// Folds tiny groups without a definition (a lone `}` or `;`) into the group before them.
fn absorb_tiny(pieces: &[Piece], groups: Vec<Group>, budget: usize) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::with_capacity(groups.len());
    for group in groups {
        let span = pieces[group.last].range.end - pieces[group.first].range.start;
        let tiny = !group.has_definition
            && span <= TINY_BYTES
            && !matches!(
                pieces[group.first].role,
                PieceRole::Lines | PieceRole::Trivia(_)
            );
        match out.last_mut() {
            Some(previous)
                if tiny
                    && !matches!(pieces[previous.first].role, PieceRole::Lines)
                    && pieces[group.last].range.end - pieces[previous.first].range.start
                        <= budget + TINY_BYTES =>
            {
                previous.last = group.last;
            }
            _ => out.push(group),
        }
    }
    out
}

/// The label of a chunk: its definition's, else the enclosing definition's, else a block.
fn label_of(pieces: &[Piece]) -> Label {
    let mut enclosing = None;
    for piece in pieces {
        match &piece.role {
            PieceRole::Definition(label) => return label.clone(),
            PieceRole::Lines => {
                return Label {
                    kind: ChunkKind::Lines,
                    symbol: None,
                }
            }
            PieceRole::Filler(Some(label)) | PieceRole::Trivia(Some(label))
                if enclosing.is_none() =>
            {
                enclosing = Some(label.clone());
            }
            _ => {}
        }
    }
    enclosing.unwrap_or(Label {
        kind: ChunkKind::Block,
        symbol: None,
    })
}

/// Shrinks a range to exclude ASCII whitespace at both ends.
fn trim(source: &str, range: Range<usize>) -> Range<usize> {
    let bytes = source.as_bytes();
    let mut start = range.start;
    let mut end = range.end;
    while start < end && bytes[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && bytes[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    start..end
}
