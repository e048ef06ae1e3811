//! Small helpers over tree-sitter trees shared by the extractors.

use tree_sitter::{Node, Tree, TreeCursor};

/// A pre/post-order visitor driven by [`DepthFirst`].
pub(crate) trait Visit {
    /// Called before a node's children; returning `false` skips them (and `leave`).
    fn enter(&mut self, node: Node) -> bool;
    /// Called after all of a node's children.
    fn leave(&mut self, node: Node);
}

/// An iterative depth-first traversal: deeply nested sources cannot overflow the stack.
pub(crate) struct DepthFirst<'tree> {
    cursor: TreeCursor<'tree>,
}

impl<'tree> DepthFirst<'tree> {
    pub(crate) fn new(tree: &'tree Tree) -> Self {
        Self {
            cursor: tree.walk(),
        }
    }

    pub(crate) fn run(mut self, visitor: &mut impl Visit) {
        loop {
            let descend = visitor.enter(self.cursor.node());
            if descend && self.cursor.goto_first_child() {
                continue;
            }
            if descend {
                visitor.leave(self.cursor.node());
            }
            loop {
                if self.cursor.goto_next_sibling() {
                    break;
                }
                if !self.cursor.goto_parent() {
                    return;
                }
                visitor.leave(self.cursor.node());
            }
        }
    }
}

pub(crate) fn node_text<'s>(node: Node, source: &'s str) -> &'s str {
    source.get(node.byte_range()).unwrap_or("")
}

pub(crate) fn field_text<'s>(node: Node, field: &str, source: &'s str) -> Option<&'s str> {
    node.child_by_field_name(field)
        .map(|child| node_text(child, source))
        .filter(|text| !text.is_empty())
}

/// Comments of every grammar (`comment`, `line_comment`, `block_comment`).
pub(crate) fn is_comment(node: Node) -> bool {
    node.kind().ends_with("comment")
}
