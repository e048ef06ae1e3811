//! Control flow inside one function: basic blocks, the forward fixpoint both guard analyses
//! run over them, and which blocks run only when a detection check went one particular way
//! (see [`super::guard`]). The graph algorithms are the same for both architectures:
//! [`Cfg::from_exits`] builds the graph from how each instruction leaves, which
//! [`Cfg::build`] reads off x86-64 instructions and the aarch64 analysis off its own.

use std::collections::{BTreeSet, HashSet};

use iced_x86::{FlowControl, Instruction, OpKind};

/// Basic blocks (index ranges into the instruction list) and their successors.
pub(super) struct Cfg {
    pub blocks: Vec<std::ops::Range<usize>>,
    /// Successor blocks per block; an edge is identified by `(block, position)`.
    pub successors: Vec<Vec<usize>>,
    /// The entry block and every block nothing in the graph branches to.
    pub roots: Vec<usize>,
}

/// How control leaves one instruction, as far as basic blocks are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    /// On to the next instruction, in the same block (calls that return included).
    Next,
    /// Ends its block: to its target (when inside the function) or on to the next.
    Branch,
    /// Ends its block: to its target only (when inside the function).
    Jump,
    /// Ends its block and goes nowhere in the function (a return, an indirect jump, a trap).
    Stop,
}

impl Cfg {
    /// The graph of x86-64 `instructions`.
    pub fn build(instructions: &[Instruction]) -> Cfg {
        let index_of = |address: u64| instructions.binary_search_by_key(&address, |i| i.ip()).ok();
        let exits: Vec<(Exit, Option<usize>)> = instructions
            .iter()
            .map(|instruction| {
                let exit = match instruction.flow_control() {
                    FlowControl::Next | FlowControl::Call | FlowControl::IndirectCall => Exit::Next,
                    FlowControl::UnconditionalBranch => Exit::Jump,
                    FlowControl::IndirectBranch
                    | FlowControl::Return
                    | FlowControl::Exception
                    | FlowControl::Interrupt => Exit::Stop,
                    // Conditional branches, and `xbegin`/`xabort`/`xend`, which end a block and
                    // go on (to an abort handler this graph does not follow).
                    _ => Exit::Branch,
                };
                (exit, internal_target(instruction).and_then(index_of))
            })
            .collect();
        Cfg::from_exits(&exits)
    }

    /// The graph of a function's instructions given, for each in address order, how it
    /// leaves ([`Exit`]) and the index of its branch target when that is in the function.
    pub fn from_exits(exits: &[(Exit, Option<usize>)]) -> Cfg {
        let mut leaders = BTreeSet::from([0usize]);
        for (index, &(exit, target)) in exits.iter().enumerate() {
            if exit != Exit::Next {
                leaders.insert(index + 1);
                leaders.extend(target);
            }
        }
        leaders.retain(|&leader| leader < exits.len());
        let starts: Vec<usize> = leaders.into_iter().collect();
        let blocks: Vec<std::ops::Range<usize>> = starts
            .iter()
            .enumerate()
            .map(|(n, &start)| start..starts.get(n + 1).copied().unwrap_or(exits.len()))
            .collect();
        let block_of = |index: usize| starts.partition_point(|&s| s <= index) - 1;
        let successors = blocks
            .iter()
            .enumerate()
            .map(|(block, range)| {
                let (exit, target) = exits[range.end - 1];
                let fallthrough = (range.end < exits.len()).then_some(block + 1);
                let taken = target.map(block_of);
                match exit {
                    Exit::Next => fallthrough.into_iter().collect(),
                    Exit::Branch => taken.into_iter().chain(fallthrough).collect(),
                    Exit::Jump => taken.into_iter().collect(),
                    Exit::Stop => Vec::new(),
                }
            })
            .collect();
        Cfg::from_successors(blocks, successors)
    }

    /// The graph of `blocks` with their `successors`; roots are the entry block and every
    /// block without a predecessor.
    fn from_successors(blocks: Vec<std::ops::Range<usize>>, successors: Vec<Vec<usize>>) -> Cfg {
        let mut has_predecessor = vec![false; blocks.len()];
        for list in &successors {
            for &successor in list {
                has_predecessor[successor] = true;
            }
        }
        let roots = (0..blocks.len())
            .filter(|&block| block == 0 || !has_predecessor[block])
            .collect();
        Cfg {
            blocks,
            successors,
            roots,
        }
    }

    /// Each block's predecessors.
    pub fn predecessors(&self) -> Vec<Vec<usize>> {
        let mut predecessors = vec![Vec::new(); self.blocks.len()];
        for (block, list) in self.successors.iter().enumerate() {
            for &successor in list {
                predecessors[successor].push(block);
            }
        }
        predecessors
    }

    /// Per block: whether it is a root (starts with the function's entry state).
    pub fn root_mask(&self) -> Vec<bool> {
        let mut is_root = vec![false; self.blocks.len()];
        for &root in &self.roots {
            is_root[root] = true;
        }
        is_root
    }

    /// The exit state of every block under a forward analysis run to a fixpoint:
    /// `transfer(block, exits)` gives the block's exit state from the current exits of the
    /// others (`None`: the block is not reached yet). Blocks are worked in reverse
    /// postorder (predecessors first), so it settles in few passes. `None` when it has not
    /// settled within a budget (a meet that is not strictly monotone, like the implicit-flow
    /// one, could cycle): then the analysis proves nothing.
    pub fn fixpoint<S: PartialEq>(
        &self,
        mut transfer: impl FnMut(usize, &[Option<S>]) -> Option<S>,
    ) -> Option<Vec<Option<S>>> {
        let order = self.reverse_postorder();
        let mut rank = vec![usize::MAX; self.blocks.len()];
        for (position, &block) in order.iter().enumerate() {
            rank[block] = position;
        }
        let mut work: BTreeSet<(usize, usize)> = order.iter().map(|&b| (rank[b], b)).collect();
        let mut exits: Vec<Option<S>> = (0..self.blocks.len()).map(|_| None).collect();
        let mut budget = 64 * self.blocks.len() + 1024;
        while let Some((_, block)) = work.pop_first() {
            budget = budget.checked_sub(1)?;
            let exit = transfer(block, &exits);
            if exit.is_some() && exits[block] != exit {
                exits[block] = exit;
                work.extend(self.successors[block].iter().map(|&s| (rank[s], s)));
            }
        }
        Some(exits)
    }

    /// Every block, in reverse postorder of a depth-first walk from the roots (blocks no
    /// root reaches come last).
    fn reverse_postorder(&self) -> Vec<usize> {
        let mut seen = vec![false; self.blocks.len()];
        let mut postorder = Vec::with_capacity(self.blocks.len());
        for &root in &self.roots {
            if seen[root] {
                continue;
            }
            seen[root] = true;
            // (block, next successor position) frames of an explicit stack.
            let mut stack = vec![(root, 0usize)];
            while let Some((block, position)) = stack.last_mut() {
                if let Some(&successor) = self.successors[*block].get(*position) {
                    *position += 1;
                    if !seen[successor] {
                        seen[successor] = true;
                        stack.push((successor, 0));
                    }
                } else {
                    postorder.push(*block);
                    stack.pop();
                }
            }
        }
        postorder.reverse();
        postorder.extend((0..self.blocks.len()).filter(|&b| !seen[b]));
        postorder
    }

    /// Blocks (among `interesting`) that run only when some detection check went one
    /// particular way.
    ///
    /// An edge `B → S` of a guard branch `B` is *decisive* for block `b` when `b` is
    /// reachable from `S`, but from none of `B`'s other successors unless through another
    /// decisive edge (paths coming back through `B` itself, as around a check inside a
    /// loop, do not count). Starting from every guard edge, edges that fail this are
    /// dropped until none does. `b` is guarded when every path from a root to it takes a
    /// decisive edge. A block where the two paths of a check merge again is reachable from
    /// both successors without any other check, so nothing is decisive for it.
    pub fn guarded_blocks(&self, guards: &[usize], interesting: &[bool]) -> HashSet<usize> {
        let mut guarded = HashSet::new();
        if guards.is_empty() {
            return guarded;
        }
        let own_edges = |guard: usize| -> Vec<(usize, usize)> {
            (0..self.successors[guard].len())
                .map(|k| (guard, k))
                .collect()
        };
        // reach[g][k][b]: b is reachable from successor k of guard g, not through g.
        let reach: Vec<Vec<Vec<bool>>> = guards
            .iter()
            .map(|&guard| {
                let blocked: HashSet<(usize, usize)> = own_edges(guard).into_iter().collect();
                self.successors[guard]
                    .iter()
                    .map(|&successor| self.reachable(&[successor], &blocked))
                    .collect()
            })
            .collect();
        // A block reachable without taking any guard edge is not guarded: most of them.
        let every_guard_edge: HashSet<(usize, usize)> =
            guards.iter().flat_map(|&guard| own_edges(guard)).collect();
        let unguarded = self.reachable(&self.roots, &every_guard_edge);
        for block in (0..self.blocks.len()).filter(|&b| interesting[b] && !unguarded[b]) {
            let mut decisive: HashSet<(usize, usize)> = HashSet::new();
            for (g, &guard) in guards.iter().enumerate() {
                for (k, reached) in reach[g].iter().enumerate() {
                    if reached[block] {
                        decisive.insert((guard, k));
                    }
                }
            }
            loop {
                let keep: HashSet<(usize, usize)> = decisive
                    .iter()
                    .copied()
                    .filter(|&(guard, k)| {
                        let mut removed = decisive.clone();
                        removed.extend(own_edges(guard));
                        self.successors[guard]
                            .iter()
                            .enumerate()
                            .filter(|&(other, _)| other != k)
                            .all(|(_, &successor)| !self.reachable(&[successor], &removed)[block])
                    })
                    .collect();
                if keep.len() == decisive.len() {
                    break;
                }
                decisive = keep;
            }
            if !decisive.is_empty() && !self.reachable(&self.roots, &decisive)[block] {
                guarded.insert(block);
            }
        }
        guarded
    }

    /// Blocks reachable from `starts` without taking the edges `removed`
    /// (`(block, successor position)`).
    fn reachable(&self, starts: &[usize], removed: &HashSet<(usize, usize)>) -> Vec<bool> {
        let mut seen = vec![false; self.blocks.len()];
        let mut stack = starts.to_vec();
        for &start in starts {
            seen[start] = true;
        }
        while let Some(block) = stack.pop() {
            for (position, &successor) in self.successors[block].iter().enumerate() {
                if seen[successor] || removed.contains(&(block, position)) {
                    continue;
                }
                seen[successor] = true;
                stack.push(successor);
            }
        }
        seen
    }
}

/// The target of a direct jump, if the instruction is one.
pub(super) fn internal_target(instruction: &Instruction) -> Option<u64> {
    matches!(
        instruction.flow_control(),
        FlowControl::ConditionalBranch | FlowControl::UnconditionalBranch
    )
    .then(|| instruction.op0_kind())
    .filter(|kind| {
        matches!(
            kind,
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
        )
    })
    .map(|_| instruction.near_branch_target())
}
