//! Control flow inside one function: basic blocks, the forward fixpoint both guard analyses
//! run over them, and which blocks run only when a detection check went one particular way
//! (see [`super::guard`]). The graph algorithms are the same for both architectures;
//! [`Cfg::build`] reads x86-64 instructions.

use std::collections::{BTreeSet, HashSet};

use iced_x86::{FlowControl, Instruction, OpKind, Register};

/// Basic blocks (index ranges into the instruction list) and their successors.
pub(super) struct Cfg {
    pub blocks: Vec<std::ops::Range<usize>>,
    /// Successor blocks per block; an edge is identified by `(block, position)`.
    pub successors: Vec<Vec<usize>>,
    /// The entry block and every block nothing in the graph branches to.
    pub roots: Vec<usize>,
}

impl Cfg {
    pub fn build(instructions: &[Instruction]) -> Cfg {
        let index_of = |address: u64| instructions.binary_search_by_key(&address, |i| i.ip()).ok();
        let mut leaders = BTreeSet::from([0usize]);
        for (index, instruction) in instructions.iter().enumerate() {
            let flow = instruction.flow_control();
            if ends_block(flow) {
                if index + 1 < instructions.len() {
                    leaders.insert(index + 1);
                }
                if let Some(target) = internal_target(instruction).and_then(index_of) {
                    leaders.insert(target);
                }
            }
        }
        let starts: Vec<usize> = leaders.into_iter().collect();
        let blocks: Vec<std::ops::Range<usize>> = starts
            .iter()
            .enumerate()
            .map(|(n, &start)| start..starts.get(n + 1).copied().unwrap_or(instructions.len()))
            .collect();
        let block_of = |index: usize| starts.partition_point(|&s| s <= index) - 1;

        let mut successors = vec![Vec::new(); blocks.len()];
        for (block, range) in blocks.iter().enumerate() {
            let last = &instructions[range.end - 1];
            let fallthrough = (range.end < instructions.len()).then(|| block + 1);
            let taken = internal_target(last).and_then(index_of).map(block_of);
            let next: Vec<usize> = match last.flow_control() {
                FlowControl::ConditionalBranch => taken.into_iter().chain(fallthrough).collect(),
                FlowControl::UnconditionalBranch => taken.into_iter().collect(),
                FlowControl::IndirectBranch
                | FlowControl::Return
                | FlowControl::Exception
                | FlowControl::Interrupt => Vec::new(),
                _ => fallthrough.into_iter().collect(),
            };
            successors[block] = next;
        }
        Cfg::from_successors(blocks, successors)
    }

    /// The graph of `blocks` with their `successors` (the aarch64 analysis builds these
    /// itself); roots are the entry block and every block without a predecessor.
    pub fn from_successors(
        blocks: Vec<std::ops::Range<usize>>,
        successors: Vec<Vec<usize>>,
    ) -> Cfg {
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

/// Whether the audit asks about `instruction`: a reference to other code or to a static,
/// or an instruction beyond the architectural baseline.
pub(super) fn is_interesting(instruction: &Instruction) -> bool {
    let absolute_memory = (0..instruction.op_count()).any(|op| {
        instruction.op_kind(op) == OpKind::Memory
            && instruction.memory_base() == Register::None
            && instruction.memory_index() == Register::None
    });
    matches!(
        instruction.flow_control(),
        FlowControl::Call | FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch
    ) || instruction.is_ip_rel_memory_operand()
        || absolute_memory
        || instruction
            .cpuid_features()
            .iter()
            .any(|&f| !super::features::is_architectural(f))
}

fn ends_block(flow: FlowControl) -> bool {
    !matches!(
        flow,
        FlowControl::Next | FlowControl::Call | FlowControl::IndirectCall
    )
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
