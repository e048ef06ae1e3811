//! Functions with their cyclomatic complexity, length and location.
//!
//! Cyclomatic complexity is McCabe's: 1 + the decision points inside the function body.
//! The decision points follow the `lizard` analyzer so numbers are comparable with it:
//!
//! | language | decision points |
//! |---|---|
//! | Rust | `if`, `while`, `for`, each `match` arm after the first, match guards, `let ... else`, `?`, `&&`, `||` |
//! | Python | `if`, `elif`, `for`, `while`, `except`, conditional expressions, comprehension `for`/`if`, `match` cases after the first, case guards, `and`, `or` |
//! | JavaScript / TypeScript | `if`, `for`, `for in/of`, `while`, `do`, `catch`, `case`, `?:`, `&&`, `||`, `??` |
//! | Go | `if`, `for`, `case` (expression, type and select cases), `&&`, `||` |
//!
//! Deliberate differences from lizard: Rust `where` clauses and Python `finally` are not
//! counted (they do not branch), and a Rust closure without parameters (`|| x`) is not
//! mistaken for a logical or. Nested named functions (and JavaScript arrow functions, Go
//! function literals) are reported separately and their decision points belong to them
//! only; Rust closures and Python lambdas stay part of the enclosing function, as in lizard.

use schemars::JsonSchema;
use serde::Serialize;
use tree_sitter::{Node, Tree};

use crate::language::{Language, ParseError};
use crate::syntax::{DepthFirst, Visit, field_text, is_comment, node_text};

/// Metrics of one function, method, arrow function or function literal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FunctionMetrics {
    /// The function's own name; `(anonymous)` when it has none and none can be inferred
    /// from an enclosing declaration (`const f = () => ...` is named `f`).
    pub name: String,
    /// The name qualified by its enclosing impl/trait/class (`Parser::parse`, `Shape.area`).
    pub qualified_name: String,
    /// 1-based line of the first line of the function (including its signature).
    pub start_line: usize,
    /// 1-based line of the last line of the function.
    pub end_line: usize,
    /// Lines spanned, `end_line - start_line + 1`.
    pub lines: usize,
    /// Lines holding code of this function, without blank and comment-only lines and
    /// without the lines of nested functions (lizard's NLOC).
    pub nloc: usize,
    /// McCabe cyclomatic complexity: 1 + decision points.
    pub cyclomatic_complexity: u32,
    /// Declared parameters (a Rust `self` counts).
    pub parameters: usize,
}

/// Parses `source` and returns its functions in source order.
pub fn functions(language: Language, source: &str) -> Result<Vec<FunctionMetrics>, ParseError> {
    let tree = language.parse(source)?;
    Ok(functions_in_tree(language, &tree, source))
}

/// Returns the functions of an already parsed tree, in source order.
pub fn functions_in_tree(language: Language, tree: &Tree, source: &str) -> Vec<FunctionMetrics> {
    let mut collector = Collector {
        language,
        source,
        scopes: Vec::new(),
        finished: Vec::new(),
    };
    DepthFirst::new(tree).run(&mut collector);
    collector
        .finished
        .sort_by_key(|function| (function.start_line, function.end_line));
    collector.finished
}

struct OpenFunction {
    metrics: FunctionMetrics,
    last_code_row: Option<usize>,
}

enum Scope {
    Function(OpenFunction),
    Container(String),
}

struct Collector<'s> {
    language: Language,
    source: &'s str,
    /// Open scopes with the id of the node that opened them.
    scopes: Vec<(usize, Scope)>,
    finished: Vec<FunctionMetrics>,
}

impl Visit for Collector<'_> {
    fn enter(&mut self, node: Node) -> bool {
        if is_comment(node) {
            return false;
        }
        if is_function(self.language, node) {
            let name = function_name(self.language, node, self.source);
            let qualified_name = self.qualify(&name, node);
            let start_line = node.start_position().row + 1;
            let end_line = node.end_position().row + 1;
            self.scopes.push((
                node.id(),
                Scope::Function(OpenFunction {
                    metrics: FunctionMetrics {
                        name,
                        qualified_name,
                        start_line,
                        end_line,
                        lines: end_line - start_line + 1,
                        nloc: 0,
                        cyclomatic_complexity: 1,
                        parameters: parameter_count(self.language, node),
                    },
                    last_code_row: None,
                }),
            ));
        } else if let Some(name) = container_name(self.language, node, self.source) {
            self.scopes.push((node.id(), Scope::Container(name)));
        }
        let decisions = decision_points(self.language, node);
        let is_code_leaf = node.child_count() == 0 && node.start_byte() < node.end_byte();
        if let Some(function) = self.innermost_function() {
            function.metrics.cyclomatic_complexity += decisions;
            if is_code_leaf {
                let first = node.start_position().row;
                let last = node.end_position().row;
                let first_new = match function.last_code_row {
                    Some(seen) => first.max(seen + 1),
                    None => first,
                };
                if last >= first_new {
                    function.metrics.nloc += last - first_new + 1;
                    function.last_code_row = Some(last);
                }
            }
        }
        true
    }

    fn leave(&mut self, node: Node) {
        if self.scopes.last().is_some_and(|(id, _)| *id == node.id())
            && let Some((_, Scope::Function(function))) = self.scopes.pop()
        {
            self.finished.push(function.metrics);
        }
    }
}

impl Collector<'_> {
    fn innermost_function(&mut self) -> Option<&mut OpenFunction> {
        self.scopes
            .iter_mut()
            .rev()
            .find_map(|(_, scope)| match scope {
                Scope::Function(function) => Some(function),
                Scope::Container(_) => None,
            })
    }

    fn qualify(&self, name: &str, node: Node) -> String {
        let separator = if self.language == Language::Rust {
            "::"
        } else {
            "."
        };
        let mut parts: Vec<&str> = self
            .scopes
            .iter()
            .filter_map(|(_, scope)| match scope {
                Scope::Container(container) => Some(container.as_str()),
                Scope::Function(_) => None,
            })
            .collect();
        let receiver;
        if self.language == Language::Go && node.kind() == "method_declaration" {
            receiver = go_receiver_type(node, self.source);
            if let Some(receiver) = &receiver {
                parts.push(receiver);
            }
        }
        parts.push(name);
        parts.join(separator)
    }
}

fn is_function(language: Language, node: Node) -> bool {
    // Keywords are nodes too: the `function` and `class` tokens are not definitions.
    if !node.is_named() {
        return false;
    }
    let kind = node.kind();
    match language {
        Language::Rust => kind == "function_item",
        Language::Python => kind == "function_definition",
        Language::JavaScript | Language::TypeScript | Language::Tsx => matches!(
            kind,
            "function_declaration"
                | "generator_function_declaration"
                | "function_expression"
                | "function"
                | "generator_function"
                | "arrow_function"
                | "method_definition"
        ),
        Language::Go => matches!(
            kind,
            "function_declaration" | "method_declaration" | "func_literal"
        ),
    }
}

/// Names of the scopes that qualify function names: impls, traits, classes.
pub(crate) fn container_name(language: Language, node: Node, source: &str) -> Option<String> {
    if !node.is_named() {
        return None;
    }
    match (language, node.kind()) {
        (Language::Rust, "impl_item") => {
            field_text(node, "type", source).map(|text| strip_generics(text).to_owned())
        }
        (Language::Rust, "trait_item") => field_text(node, "name", source).map(str::to_owned),
        (Language::Python, "class_definition") => {
            field_text(node, "name", source).map(str::to_owned)
        }
        (
            Language::JavaScript | Language::TypeScript | Language::Tsx,
            "class_declaration" | "class" | "abstract_class_declaration",
        ) => Some(
            field_text(node, "name", source)
                .map(str::to_owned)
                .unwrap_or_else(|| ANONYMOUS.to_owned()),
        ),
        _ => None,
    }
}

pub(crate) const ANONYMOUS: &str = "(anonymous)";

fn strip_generics(type_text: &str) -> &str {
    type_text
        .split_once('<')
        .map_or(type_text, |(base, _)| base)
        .trim()
}

fn function_name(language: Language, node: Node, source: &str) -> String {
    if let Some(name) = field_text(node, "name", source) {
        return name.to_owned();
    }
    inferred_name(language, node, source).unwrap_or_else(|| ANONYMOUS.to_owned())
}

/// The name an anonymous function gets from what it is assigned to.
pub(crate) fn inferred_name(language: Language, node: Node, source: &str) -> Option<String> {
    let parent = node.parent()?;
    let field = match (language, parent.kind()) {
        (_, "variable_declarator" | "var_spec") => "name",
        (_, "assignment_expression" | "short_var_declaration" | "assignment_statement") => "left",
        (_, "pair") => "key",
        (_, "field_definition") => "property",
        (_, "public_field_definition") => "name",
        (Language::Go, "expression_list") => {
            let declaration = parent.parent()?;
            let field = match declaration.kind() {
                "var_spec" => "name",
                "short_var_declaration" | "assignment_statement" => "left",
                _ => return None,
            };
            return field_text(declaration, field, source).map(str::to_owned);
        }
        _ => return None,
    };
    field_text(parent, field, source).map(str::to_owned)
}

fn go_receiver_type(node: Node, source: &str) -> Option<String> {
    let receiver = node.child_by_field_name("receiver")?;
    let mut cursor = receiver.walk();
    let parameter = receiver
        .named_children(&mut cursor)
        .find(|child| child.kind() == "parameter_declaration")?;
    let type_node = parameter.child_by_field_name("type")?;
    let text = node_text(type_node, source).trim_start_matches('*');
    Some(strip_go_type_parameters(text).to_owned())
}

fn strip_go_type_parameters(type_text: &str) -> &str {
    type_text
        .split_once('[')
        .map_or(type_text, |(base, _)| base)
        .trim()
}

fn parameter_count(language: Language, node: Node) -> usize {
    if let Some(single) = node.child_by_field_name("parameter") {
        // `x => x + 1`
        return usize::from(!is_comment(single));
    }
    let Some(parameters) = node.child_by_field_name("parameters") else {
        return 0;
    };
    let mut cursor = parameters.walk();
    parameters
        .named_children(&mut cursor)
        .filter(|child| !is_comment(*child))
        .map(|child| match (language, child.kind()) {
            (_, "attribute_item" | "positional_separator" | "keyword_separator") => 0,
            (Language::Go, "parameter_declaration" | "variadic_parameter_declaration") => {
                let mut names = child.walk();
                child
                    .children_by_field_name("name", &mut names)
                    .count()
                    .max(1)
            }
            _ => 1,
        })
        .sum()
}

fn is_first_among_siblings(node: Node) -> bool {
    node.prev_named_sibling()
        .is_none_or(|previous| previous.kind() != node.kind())
}

fn decision_points(language: Language, node: Node) -> u32 {
    let kind = node.kind();
    let parent_kind = node.parent().map(|parent| parent.kind()).unwrap_or("");
    let counts = match language {
        Language::Rust => match kind {
            "if_expression" | "while_expression" | "for_expression" | "try_expression" => true,
            "match_arm" => !is_first_among_siblings(node),
            "match_pattern" => node.child_by_field_name("condition").is_some(),
            "let_declaration" => node.child_by_field_name("alternative").is_some(),
            "&&" | "||" => matches!(parent_kind, "binary_expression" | "let_chain"),
            _ => false,
        },
        Language::Python => match kind {
            "if_statement"
            | "elif_clause"
            | "for_statement"
            | "while_statement"
            | "except_clause"
            | "conditional_expression"
            | "for_in_clause"
            | "if_clause" => true,
            "case_clause" => {
                // The guard of `case x if cond:` is one more decision.
                return u32::from(!is_first_among_siblings(node))
                    + u32::from(node.child_by_field_name("guard").is_some());
            }
            "and" | "or" => parent_kind == "boolean_operator",
            _ => false,
        },
        Language::JavaScript | Language::TypeScript | Language::Tsx => match kind {
            "if_statement" | "for_statement" | "for_in_statement" | "while_statement"
            | "do_statement" | "catch_clause" | "ternary_expression" | "switch_case" => true,
            "&&" | "||" | "??" => parent_kind == "binary_expression",
            _ => false,
        },
        Language::Go => match kind {
            "if_statement" | "for_statement" | "expression_case" | "type_case"
            | "communication_case" => true,
            "&&" | "||" => parent_kind == "binary_expression",
            _ => false,
        },
    };
    u32::from(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(language: Language, source: &str) -> FunctionMetrics {
        let mut found = functions(language, source).expect("parses");
        assert_eq!(found.len(), 1, "{found:#?}");
        found.remove(0)
    }

    fn complexities(language: Language, source: &str) -> Vec<(String, u32)> {
        functions(language, source)
            .expect("parses")
            .into_iter()
            .map(|function| (function.qualified_name, function.cyclomatic_complexity))
            .collect()
    }

    #[test]
    fn straight_line_function_has_complexity_one() {
        let function = only(
            Language::Rust,
            "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
        );
        assert_eq!(function.name, "add");
        assert_eq!(function.cyclomatic_complexity, 1);
        assert_eq!((function.start_line, function.end_line), (1, 3));
        assert_eq!(function.lines, 3);
        assert_eq!(function.nloc, 3);
        assert_eq!(function.parameters, 2);
    }

    #[test]
    fn rust_decision_points() {
        let source = r#"
impl<T> Parser<T> {
    fn step(&self, x: Option<u8>, y: bool) -> Result<u8, E> {
        // a comment line is not code
        if y && x.is_some() || false {
            return Ok(1);
        } else if let Some(v) = x {
            for _ in 0..v {}
        }
        while y {}
        let Some(z) = x else { return Err(E) };
        let f = || z; // a closure without parameters is not an `||`
        match z {
            0 => {}
            1 if y => {}
            _ => {}
        }
        let w = parse(z)?;
        Ok(w)
    }
}
"#;
        let function = only(Language::Rust, source);
        assert_eq!(function.qualified_name, "Parser::step");
        assert_eq!(function.parameters, 3);
        // 1 + if + && + || + else-if + for + while + let-else + 2 extra arms + guard + ?
        assert_eq!(function.cyclomatic_complexity, 12);
        assert_eq!(function.lines, 18);
        assert_eq!(function.nloc, 17, "the comment-only line is not counted");
    }

    #[test]
    fn python_decision_points_and_methods() {
        let source = r#"
class Shape:
    def area(self, kind, items):
        """Docstring."""
        if kind == "a" and items:
            return 1
        elif kind == "b" or not items:
            return 2
        for item in items:
            while item:
                item -= 1
        try:
            pass
        except ValueError:
            pass
        finally:
            pass
        squares = [x * x for x in items if x]
        return 3 if kind else 4

def helper():
    def inner(x):
        return x if x else 0
    return inner
"#;
        assert_eq!(
            complexities(Language::Python, source),
            vec![
                // if, and, elif, or, for, while, except, comprehension for + if, ternary
                ("Shape.area".to_owned(), 11),
                ("helper".to_owned(), 1),
                ("inner".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn javascript_and_typescript_functions() {
        let source = r#"
function pick(a, b) {
  if (a && b) { return a ?? b; }
  switch (a) { case 1: return 1; case 2: return 2; default: return 0; }
}
const handler = (event) => event.ok ? 1 : 2;
class Widget {
  render() { for (const x of this.items) { try { x(); } catch (e) {} } }
}
items.map(function () { do { } while (false); });
"#;
        let expected = vec![
            ("pick".to_owned(), 6),
            ("handler".to_owned(), 2),
            ("Widget.render".to_owned(), 3),
            (ANONYMOUS.to_owned(), 2),
        ];
        assert_eq!(complexities(Language::JavaScript, source), expected);
        assert_eq!(complexities(Language::TypeScript, source), expected);
        let typed = "function f(x: number): number { return x > 0 ? x : -x; }\n";
        assert_eq!(
            complexities(Language::Tsx, typed),
            vec![("f".to_owned(), 2)]
        );
    }

    #[test]
    fn go_functions_methods_and_literals() {
        let source = r#"
package main

func (s *Server[T]) Handle(a, b int, c string) int {
	if a > 0 && b > 0 {
		return 1
	}
	switch c {
	case "x":
		return 2
	case "y", "z":
		return 3
	default:
	}
	for i := 0; i < a; i++ {
	}
	run := func() { if b > 1 { return } }
	run()
	return 0
}
"#;
        let found = functions(Language::Go, source).expect("parses");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].qualified_name, "Server.Handle");
        assert_eq!(found[0].parameters, 3);
        assert_eq!(found[0].cyclomatic_complexity, 6);
        assert_eq!(found[1].name, "run");
        assert_eq!(found[1].cyclomatic_complexity, 2);
    }

    #[test]
    fn broken_source_still_yields_functions() {
        let found = functions(Language::Rust, "fn ok() { if x { } }\nfn broken( {\n").unwrap();
        assert_eq!(found[0].name, "ok");
        assert_eq!(found[0].cyclomatic_complexity, 2);
    }
}
