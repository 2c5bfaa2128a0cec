//! Supported languages: detection by file extension, grammars, and which syntax nodes are
//! definitions a user searches for (with their kind and name).

use std::fmt;

use tree_sitter::Node;

use super::ChunkKind;

/// A source language the chunker understands, or plain text cut into line windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// Rust (`.rs`).
    Rust,
    /// Python (`.py`, `.pyi`).
    Python,
    /// JavaScript, including JSX (`.js`, `.mjs`, `.cjs`, `.jsx`).
    JavaScript,
    /// TypeScript (`.ts`, `.mts`, `.cts`).
    TypeScript,
    /// TypeScript with JSX (`.tsx`).
    Tsx,
    /// Go (`.go`).
    Go,
    /// Java (`.java`).
    Java,
    /// Anything else: cut into line windows.
    Text,
}

impl Language {
    /// Every language with a grammar (all but [`Language::Text`]).
    pub const PARSED: [Language; 7] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Go,
        Language::Java,
    ];

    /// The language of a path, from its extension; [`Language::Text`] when unknown.
    pub fn from_path(path: &str) -> Language {
        let file_name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let extension = match file_name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
            _ => return Language::Text,
        };
        match extension.as_str() {
            "rs" => Language::Rust,
            "py" | "pyi" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" => Language::Go,
            "java" => Language::Java,
            _ => Language::Text,
        }
    }

    /// Stable lower-case name, as stored in the index payload.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::Go => "go",
            Language::Java => "java",
            Language::Text => "text",
        }
    }

    /// Parses the stored name back; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<Language> {
        Language::PARSED
            .into_iter()
            .chain([Language::Text])
            .find(|language| language.as_str() == name)
    }

    /// The tree-sitter grammar, or `None` for plain text.
    pub(crate) fn grammar(self) -> Option<tree_sitter::Language> {
        let grammar = match self {
            Language::Rust => tree_sitter_rust::LANGUAGE,
            Language::Python => tree_sitter_python::LANGUAGE,
            Language::JavaScript => tree_sitter_javascript::LANGUAGE,
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT,
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX,
            Language::Go => tree_sitter_go::LANGUAGE,
            Language::Java => tree_sitter_java::LANGUAGE,
            Language::Text => return None,
        };
        Some(grammar.into())
    }

    /// Separator between a container's name and a member's, e.g. `Foo::new` or `Foo.bar`.
    pub(crate) fn path_separator(self) -> &'static str {
        match self {
            Language::Rust => "::",
            _ => ".",
        }
    }

    /// Whether a node is a comment, attribute or decorator: it belongs with the definition after it.
    pub(crate) fn is_leading_trivia(self, node: &Node<'_>) -> bool {
        let kind = node.kind();
        kind.contains("comment")
            || matches!(
                (self, kind),
                (Language::Rust, "attribute_item")
                    | (Language::Python, "decorator")
                    | (Language::Java, "marker_annotation" | "annotation")
                    | (
                        Language::JavaScript | Language::TypeScript | Language::Tsx,
                        "decorator"
                    )
            )
    }

    /// The kind and bare name of a definition node, or `None` when the node is not one.
    ///
    /// `in_container` is true inside a class, impl, trait or interface, where functions are methods.
    pub(crate) fn definition(
        self,
        node: &Node<'_>,
        source: &str,
        in_container: bool,
    ) -> Option<(ChunkKind, String)> {
        let function = if in_container {
            ChunkKind::Method
        } else {
            ChunkKind::Function
        };
        let named = |kind: ChunkKind| Some((kind, field_text(node, "name", source)?));
        match self {
            Language::Rust => match node.kind() {
                "function_item" | "function_signature_item" => named(function),
                "struct_item" | "union_item" => named(ChunkKind::Struct),
                "enum_item" => named(ChunkKind::Enum),
                "trait_item" => named(ChunkKind::Trait),
                "mod_item" if node.child_by_field_name("body").is_some() => {
                    named(ChunkKind::Module)
                }
                "macro_definition" => named(ChunkKind::Macro),
                "type_item" => named(ChunkKind::TypeAlias),
                "impl_item" => {
                    let ty = field_text(node, "type", source)?;
                    let name = match field_text(node, "trait", source) {
                        Some(trait_name) => format!("{trait_name} for {ty}"),
                        None => ty,
                    };
                    Some((ChunkKind::Impl, name))
                }
                _ => None,
            },
            Language::Python => match node.kind() {
                "function_definition" => named(function),
                "class_definition" => named(ChunkKind::Class),
                "decorated_definition" => {
                    let inner = node.child_by_field_name("definition")?;
                    self.definition(&inner, source, in_container)
                }
                _ => None,
            },
            Language::JavaScript | Language::TypeScript | Language::Tsx => match node.kind() {
                "function_declaration" | "generator_function_declaration" => named(function),
                "class_declaration" | "abstract_class_declaration" => named(ChunkKind::Class),
                "method_definition" | "method_signature" | "abstract_method_signature" => {
                    named(ChunkKind::Method)
                }
                "interface_declaration" => named(ChunkKind::Interface),
                "enum_declaration" => named(ChunkKind::Enum),
                "type_alias_declaration" => named(ChunkKind::TypeAlias),
                "internal_module" | "module" => named(ChunkKind::Module),
                "export_statement" => {
                    let inner = node.child_by_field_name("declaration")?;
                    self.definition(&inner, source, in_container)
                }
                "lexical_declaration" | "variable_declaration" => {
                    // `const parse = (s) => ...` is how much JavaScript defines functions.
                    let mut cursor = node.walk();
                    let declarator = node
                        .named_children(&mut cursor)
                        .find(|child| child.kind() == "variable_declarator")?;
                    let value = declarator.child_by_field_name("value")?;
                    match value.kind() {
                        "arrow_function" | "function_expression" | "function" => {
                            Some((function, field_text(&declarator, "name", source)?))
                        }
                        "class" => {
                            Some((ChunkKind::Class, field_text(&declarator, "name", source)?))
                        }
                        _ => None,
                    }
                }
                _ => None,
            },
            Language::Go => match node.kind() {
                "function_declaration" => named(ChunkKind::Function),
                "method_declaration" => {
                    let name = field_text(node, "name", source)?;
                    let receiver = node
                        .child_by_field_name("receiver")
                        .and_then(|receiver| go_receiver_type(&receiver, source));
                    match receiver {
                        Some(receiver) => Some((ChunkKind::Method, format!("{receiver}.{name}"))),
                        None => Some((ChunkKind::Method, name)),
                    }
                }
                "type_declaration" => {
                    let mut cursor = node.walk();
                    let spec = node
                        .named_children(&mut cursor)
                        .find(|child| matches!(child.kind(), "type_spec" | "type_alias"))?;
                    let kind = match spec.child_by_field_name("type").map(|t| t.kind()) {
                        Some("struct_type") => ChunkKind::Struct,
                        Some("interface_type") => ChunkKind::Interface,
                        _ => ChunkKind::TypeAlias,
                    };
                    Some((kind, field_text(&spec, "name", source)?))
                }
                _ => None,
            },
            Language::Java => match node.kind() {
                "class_declaration" | "record_declaration" => named(ChunkKind::Class),
                "interface_declaration" | "annotation_type_declaration" => {
                    named(ChunkKind::Interface)
                }
                "enum_declaration" => named(ChunkKind::Enum),
                "method_declaration" | "constructor_declaration" => named(ChunkKind::Method),
                _ => None,
            },
            Language::Text => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text of a node's field, if present and non-empty.
fn field_text(node: &Node<'_>, field: &str, source: &str) -> Option<String> {
    let child = node.child_by_field_name(field)?;
    let text = source.get(child.byte_range())?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The type name in a Go method receiver such as `(p *Parser)` or `(Parser[T])`.
fn go_receiver_type(receiver: &Node<'_>, source: &str) -> Option<String> {
    let text = source.get(receiver.byte_range())?;
    let inner = text.trim().trim_start_matches('(').trim_end_matches(')');
    let ty = inner.split_whitespace().last()?;
    let ty = ty.trim_start_matches('*');
    let ty = ty.split('[').next().unwrap_or(ty);
    (!ty.is_empty()).then(|| ty.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_map_to_languages() {
        assert_eq!(Language::from_path("src/lib.rs"), Language::Rust);
        assert_eq!(Language::from_path("a/b.PY"), Language::Python);
        assert_eq!(Language::from_path("x.tsx"), Language::Tsx);
        assert_eq!(Language::from_path("x.mjs"), Language::JavaScript);
        assert_eq!(Language::from_path("Main.java"), Language::Java);
        assert_eq!(Language::from_path("README"), Language::Text);
        assert_eq!(Language::from_path(".gitignore"), Language::Text);
        assert_eq!(Language::from_path("notes.md"), Language::Text);
    }

    #[test]
    fn names_round_trip() {
        for language in Language::PARSED.into_iter().chain([Language::Text]) {
            assert_eq!(Language::parse(language.as_str()), Some(language));
        }
    }

    #[test]
    fn every_grammar_loads_into_a_parser() {
        for language in Language::PARSED {
            let grammar = language.grammar().expect("parsed languages have grammars");
            let mut parser = tree_sitter::Parser::new();
            assert!(parser.set_language(&grammar).is_ok(), "{language}");
        }
    }
}
