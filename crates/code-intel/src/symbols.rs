//! Definitions (functions, types, classes, traits, interfaces, ...) with their location.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Tree};

use crate::functions::{container_name, inferred_name};
use crate::language::{Language, ParseError};
use crate::syntax::{DepthFirst, Visit, field_text, is_comment};

/// What kind of definition a [`Symbol`] is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SymbolKind {
    Function,
    /// A function inside an impl, trait, class or with a Go receiver.
    Method,
    Struct,
    Enum,
    Union,
    Trait,
    /// A Rust `impl` block, named after its type (`impl Display for Foo` is `Foo`).
    Impl,
    Interface,
    Class,
    TypeAlias,
    /// Any other named type definition (Go `type Celsius float64`).
    Type,
    Constant,
    Static,
    Module,
    Macro,
}

impl SymbolKind {
    pub const ALL: [SymbolKind; 15] = [
        SymbolKind::Function,
        SymbolKind::Method,
        SymbolKind::Struct,
        SymbolKind::Enum,
        SymbolKind::Union,
        SymbolKind::Trait,
        SymbolKind::Impl,
        SymbolKind::Interface,
        SymbolKind::Class,
        SymbolKind::TypeAlias,
        SymbolKind::Type,
        SymbolKind::Constant,
        SymbolKind::Static,
        SymbolKind::Module,
        SymbolKind::Macro,
    ];

    /// The snake_case name used in tool inputs and outputs.
    pub fn name(self) -> &'static str {
        match self {
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::Union => "union",
            SymbolKind::Trait => "trait",
            SymbolKind::Impl => "impl",
            SymbolKind::Interface => "interface",
            SymbolKind::Class => "class",
            SymbolKind::TypeAlias => "type_alias",
            SymbolKind::Type => "type",
            SymbolKind::Constant => "constant",
            SymbolKind::Static => "static",
            SymbolKind::Module => "module",
            SymbolKind::Macro => "macro",
        }
    }
}

impl fmt::Display for SymbolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SymbolKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        SymbolKind::ALL
            .into_iter()
            .find(|kind| kind.name() == lower)
            .ok_or_else(|| {
                format!(
                    "unknown symbol kind {text:?}; use one of: {}",
                    SymbolKind::ALL.map(SymbolKind::name).join(", ")
                )
            })
    }
}

/// One definition found in a source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// The enclosing impl/trait/class/receiver type, if any.
    pub container: Option<String>,
    /// 1-based line where the definition starts.
    pub line: usize,
    /// 1-based column (in bytes) where the definition starts.
    pub column: usize,
    /// 1-based line where the definition ends.
    pub end_line: usize,
}

/// Parses `source` and returns its definitions in source order.
pub fn symbols(language: Language, source: &str) -> Result<Vec<Symbol>, ParseError> {
    let tree = language.parse(source)?;
    Ok(symbols_in_tree(language, &tree, source))
}

/// Returns the definitions of an already parsed tree, in source order.
pub fn symbols_in_tree(language: Language, tree: &Tree, source: &str) -> Vec<Symbol> {
    let mut collector = Collector {
        language,
        source,
        containers: Vec::new(),
        found: Vec::new(),
    };
    DepthFirst::new(tree).run(&mut collector);
    collector.found
}

struct Collector<'s> {
    language: Language,
    source: &'s str,
    containers: Vec<(usize, String)>,
    found: Vec<Symbol>,
}

impl Visit for Collector<'_> {
    fn enter(&mut self, node: Node) -> bool {
        if is_comment(node) {
            return false;
        }
        if let Some((kind, name, container)) = self.classify(node) {
            let start = node.start_position();
            self.found.push(Symbol {
                name,
                kind,
                container: container.or_else(|| self.containers.last().map(|(_, c)| c.clone())),
                line: start.row + 1,
                column: start.column + 1,
                end_line: node.end_position().row + 1,
            });
        }
        if let Some(name) = container_name(self.language, node, self.source) {
            self.containers.push((node.id(), name));
        }
        true
    }

    fn leave(&mut self, node: Node) {
        if self
            .containers
            .last()
            .is_some_and(|(id, _)| *id == node.id())
        {
            self.containers.pop();
        }
    }
}

type Classified = (SymbolKind, String, Option<String>);

impl Collector<'_> {
    fn in_container(&self) -> bool {
        !self.containers.is_empty()
    }

    fn named(&self, node: Node, kind: SymbolKind) -> Option<Classified> {
        field_text(node, "name", self.source).map(|name| (kind, name.to_owned(), None))
    }

    fn function_or_method(&self, node: Node) -> Option<Classified> {
        let kind = if self.in_container() {
            SymbolKind::Method
        } else {
            SymbolKind::Function
        };
        self.named(node, kind)
    }

    fn classify(&self, node: Node) -> Option<Classified> {
        if !node.is_named() {
            return None;
        }
        let source = self.source;
        match self.language {
            Language::Rust => match node.kind() {
                "function_item" | "function_signature_item" => self.function_or_method(node),
                "struct_item" => self.named(node, SymbolKind::Struct),
                "enum_item" => self.named(node, SymbolKind::Enum),
                "union_item" => self.named(node, SymbolKind::Union),
                "trait_item" => self.named(node, SymbolKind::Trait),
                "type_item" => self.named(node, SymbolKind::TypeAlias),
                "const_item" => self.named(node, SymbolKind::Constant),
                "static_item" => self.named(node, SymbolKind::Static),
                "mod_item" => self.named(node, SymbolKind::Module),
                "macro_definition" => self.named(node, SymbolKind::Macro),
                "impl_item" => container_name(Language::Rust, node, source)
                    .map(|name| (SymbolKind::Impl, name, None)),
                _ => None,
            },
            Language::Python => match node.kind() {
                "function_definition" => self.function_or_method(node),
                "class_definition" => self.named(node, SymbolKind::Class),
                "type_alias_statement" => node
                    .child_by_field_name("left")
                    .map(|left| crate::syntax::node_text(left, source))
                    .map(|name| (SymbolKind::TypeAlias, name.to_owned(), None)),
                _ => None,
            },
            Language::JavaScript | Language::TypeScript | Language::Tsx => match node.kind() {
                "function_declaration"
                | "generator_function_declaration"
                | "function_signature" => self.named(node, SymbolKind::Function),
                "method_definition" | "method_signature" | "abstract_method_signature" => {
                    self.named(node, SymbolKind::Method)
                }
                "class_declaration" | "abstract_class_declaration" => {
                    self.named(node, SymbolKind::Class)
                }
                "class" => self.named(node, SymbolKind::Class).or_else(|| {
                    inferred_name(self.language, node, source)
                        .map(|name| (SymbolKind::Class, name, None))
                }),
                "interface_declaration" => self.named(node, SymbolKind::Interface),
                "type_alias_declaration" => self.named(node, SymbolKind::TypeAlias),
                "enum_declaration" => self.named(node, SymbolKind::Enum),
                "internal_module" | "module" => self.named(node, SymbolKind::Module),
                "arrow_function" | "function_expression" | "function" | "generator_function" => {
                    if field_text(node, "name", source).is_some() {
                        return self.named(node, SymbolKind::Function);
                    }
                    // Only `const f = () => ...` style definitions; inline callbacks are not symbols.
                    let parent = node.parent()?;
                    if !matches!(
                        parent.kind(),
                        "variable_declarator" | "public_field_definition" | "field_definition"
                    ) {
                        return None;
                    }
                    let kind = if self.in_container() {
                        SymbolKind::Method
                    } else {
                        SymbolKind::Function
                    };
                    inferred_name(self.language, node, source).map(|name| (kind, name, None))
                }
                _ => None,
            },
            Language::Go => match node.kind() {
                "function_declaration" => self.named(node, SymbolKind::Function),
                "method_declaration" => {
                    let receiver = node
                        .child_by_field_name("receiver")
                        .and_then(|receiver| go_receiver_type_name(receiver, source));
                    field_text(node, "name", source)
                        .map(|name| (SymbolKind::Method, name.to_owned(), receiver))
                }
                "type_spec" => {
                    let kind = match node.child_by_field_name("type").map(|t| t.kind()) {
                        Some("struct_type") => SymbolKind::Struct,
                        Some("interface_type") => SymbolKind::Interface,
                        _ => SymbolKind::Type,
                    };
                    self.named(node, kind)
                }
                "type_alias" => self.named(node, SymbolKind::TypeAlias),
                "const_spec" => self.named(node, SymbolKind::Constant),
                _ => None,
            },
        }
    }
}

fn go_receiver_type_name(receiver: Node, source: &str) -> Option<String> {
    // The receiver's type identifier, without pointer or type parameters.
    let mut stack = vec![receiver];
    while let Some(node) = stack.pop() {
        if node.kind() == "type_identifier" {
            return Some(crate::syntax::node_text(node, source).to_owned());
        }
        let mut cursor = node.walk();
        let children: Vec<Node> = node.named_children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(
        language: Language,
        source: &str,
    ) -> Vec<(SymbolKind, String, Option<String>, usize)> {
        symbols(language, source)
            .expect("parses")
            .into_iter()
            .map(|symbol| (symbol.kind, symbol.name, symbol.container, symbol.line))
            .collect()
    }

    fn s(
        kind: SymbolKind,
        name: &str,
        container: Option<&str>,
        line: usize,
    ) -> (SymbolKind, String, Option<String>, usize) {
        (kind, name.to_owned(), container.map(str::to_owned), line)
    }

    #[test]
    fn rust_symbols() {
        let source = "mod net {}\npub struct Point { x: i32 }\nenum Dir { Up }\ntrait Shape { fn area(&self) -> f64; }\nimpl<T> Shape for Wrapper<T> {\n    fn area(&self) -> f64 { 0.0 }\n}\nconst MAX: u8 = 1;\nstatic NAME: &str = \"\";\ntype Id = u64;\nmacro_rules! m { () => {} }\nfn main() {}\n";
        assert_eq!(
            summary(Language::Rust, source),
            vec![
                s(SymbolKind::Module, "net", None, 1),
                s(SymbolKind::Struct, "Point", None, 2),
                s(SymbolKind::Enum, "Dir", None, 3),
                s(SymbolKind::Trait, "Shape", None, 4),
                s(SymbolKind::Method, "area", Some("Shape"), 4),
                s(SymbolKind::Impl, "Wrapper", None, 5),
                s(SymbolKind::Method, "area", Some("Wrapper"), 6),
                s(SymbolKind::Constant, "MAX", None, 8),
                s(SymbolKind::Static, "NAME", None, 9),
                s(SymbolKind::TypeAlias, "Id", None, 10),
                s(SymbolKind::Macro, "m", None, 11),
                s(SymbolKind::Function, "main", None, 12),
            ]
        );
    }

    #[test]
    fn python_symbols() {
        let source = "class Repo:\n    def save(self):\n        pass\n\ndef load():\n    pass\n";
        assert_eq!(
            summary(Language::Python, source),
            vec![
                s(SymbolKind::Class, "Repo", None, 1),
                s(SymbolKind::Method, "save", Some("Repo"), 2),
                s(SymbolKind::Function, "load", None, 5),
            ]
        );
    }

    #[test]
    fn typescript_symbols() {
        let source = "interface Shape { area(): number; }\ntype Id = string;\nenum Color { Red }\nexport class Circle implements Shape {\n  area() { return 1; }\n}\nexport const make = () => new Circle();\nfunction helper() { [1].map(x => x); }\n";
        assert_eq!(
            summary(Language::TypeScript, source),
            vec![
                s(SymbolKind::Interface, "Shape", None, 1),
                s(SymbolKind::Method, "area", None, 1),
                s(SymbolKind::TypeAlias, "Id", None, 2),
                s(SymbolKind::Enum, "Color", None, 3),
                s(SymbolKind::Class, "Circle", None, 4),
                s(SymbolKind::Method, "area", Some("Circle"), 5),
                s(SymbolKind::Function, "make", None, 7),
                s(SymbolKind::Function, "helper", None, 8),
            ]
        );
    }

    #[test]
    fn go_symbols() {
        let source = "package p\n\ntype Server struct{}\ntype Handler interface{ Serve() }\ntype Celsius float64\nconst Limit = 3\nfunc (s *Server) Run() {}\nfunc New() *Server { return nil }\n";
        assert_eq!(
            summary(Language::Go, source),
            vec![
                s(SymbolKind::Struct, "Server", None, 3),
                s(SymbolKind::Interface, "Handler", None, 4),
                s(SymbolKind::Type, "Celsius", None, 5),
                s(SymbolKind::Constant, "Limit", None, 6),
                s(SymbolKind::Method, "Run", Some("Server"), 7),
                s(SymbolKind::Function, "New", None, 8),
            ]
        );
    }

    #[test]
    fn kinds_round_trip_through_names() {
        for kind in SymbolKind::ALL {
            assert_eq!(kind.name().parse::<SymbolKind>(), Ok(kind));
        }
        assert!(
            "widget"
                .parse::<SymbolKind>()
                .unwrap_err()
                .contains("function, method")
        );
    }
}
