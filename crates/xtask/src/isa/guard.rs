//! Which instructions of one function run only behind a CPU-feature check.
//!
//! A value is *detection-derived* when it comes from `cpuid`/`xgetbv`, from a load of
//! detection state (a static that holds a detection result, e.g. std_detect's cache behind
//! `is_x86_feature_detected!`), or from the return value of a function that returns one.
//! Taint follows registers, flags and stack slots through the function (forward, "may").
//! A conditional branch on detection-derived flags is a *guard*. An instruction is
//! *guarded* when one guard edge dominates it: every path from the function's entry to it
//! takes that edge — it runs only when a detection result went one particular way. Blocks
//! the control-flow graph cannot explain (landing pads, jump-table targets) count as extra
//! entries, so they are never guarded by what comes before them.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use iced_x86::{
    FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register,
};

/// What the analysis of one function found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardAnalysis {
    /// Addresses of instructions that run only behind a guard, and of conditional jumps that
    /// are guards themselves (a conditional tail call is guarded by its own condition).
    pub guarded: BTreeSet<u64>,
    /// Static addresses a detection-derived value is stored to, with the store's size.
    pub detection_stores: Vec<(u64, u64)>,
    /// Some `ret` returns a detection-derived value in `rax`.
    pub returns_detection: bool,
    /// The function reads detection state or queries the CPU at all.
    pub reads_detection: bool,
    /// `lea` sites whose address only ever feeds a conditional move on detection-derived
    /// flags (a function pointer chosen by `cmov` instead of a branch), and those whose
    /// address is used any other way.
    selected_addresses: BTreeSet<u64>,
    escaped_addresses: BTreeSet<u64>,
}

/// Where detection results live and which functions return them.
pub trait DetectionFacts {
    /// `address` holds detection state.
    fn is_detection_state(&self, address: u64) -> bool;
    /// A call to `address` returns a detection-derived value in `rax`.
    fn returns_detection(&self, address: u64) -> bool;
    /// `address` is a pointer slot (a GOT entry) holding the address of detection state.
    fn points_to_detection_state(&self, address: u64) -> bool;
    /// `address` is a pointer slot holding a function that returns a detection result
    /// (`call [rip + GOT entry]`).
    fn slot_returns_detection(&self, address: u64) -> bool;
}

/// Runs the analysis over `instructions`, the whole of one function, in address order.
pub fn analyze(instructions: &[Instruction], facts: &dyn DetectionFacts) -> GuardAnalysis {
    if instructions.is_empty() {
        return GuardAnalysis::default();
    }
    let cfg = Cfg::build(instructions);
    let last = &instructions[instructions.len() - 1];
    let mut context = Context {
        factory: InstructionInfoFactory::new(),
        facts,
        range: instructions[0].ip()..last.next_ip(),
    };

    // Forward "may" taint to a fixpoint: the state at each block's start.
    let mut entry_states: Vec<Option<Taint>> = vec![None; cfg.blocks.len()];
    for &root in &cfg.roots {
        entry_states[root] = Some(Taint::default());
    }
    let mut work: Vec<usize> = cfg.roots.clone();
    let mut result = GuardAnalysis::default();
    while let Some(block) = work.pop() {
        let Some(mut state) = entry_states[block].clone() else {
            continue;
        };
        for instruction in &instructions[cfg.blocks[block].clone()] {
            state.step(instruction, &mut context, &mut result);
        }
        for &successor in &cfg.successors[block] {
            let merged = match &entry_states[successor] {
                None => state.clone(),
                Some(existing) => existing.union(&state),
            };
            if entry_states[successor].as_ref() != Some(&merged) {
                entry_states[successor] = Some(merged);
                work.push(successor);
            }
        }
    }

    // Final pass with the fixpoint states: guards, stores, returns.
    let mut guards = Vec::new();
    result.detection_stores.clear();
    result.returns_detection = false;
    for (block, range) in cfg.blocks.iter().enumerate() {
        let Some(mut state) = entry_states[block].clone() else {
            continue;
        };
        for instruction in &instructions[range.clone()] {
            let tainted_condition = state.step(instruction, &mut context, &mut result);
            if tainted_condition && instruction.flow_control() == FlowControl::ConditionalBranch {
                result.guarded.insert(instruction.ip());
                guards.push(block);
            }
        }
    }
    result.detection_stores.sort_unstable();
    result.detection_stores.dedup();

    let selected: Vec<u64> = result
        .selected_addresses
        .difference(&result.escaped_addresses)
        .copied()
        .collect();
    result.guarded.extend(selected);

    // Only blocks holding something the audit asks about: references and instructions
    // beyond the architectural baseline.
    let interesting: Vec<bool> = cfg
        .blocks
        .iter()
        .map(|range| instructions[range.clone()].iter().any(is_interesting))
        .collect();
    let guarded_blocks = cfg.guarded_blocks(&guards, &interesting);
    for (block, range) in cfg.blocks.iter().enumerate() {
        if guarded_blocks.contains(&block) {
            result
                .guarded
                .extend(instructions[range.clone()].iter().map(|i| i.ip()));
        }
    }
    result
}

/// Basic blocks (index ranges into the instruction list) and their successors.
struct Cfg {
    blocks: Vec<std::ops::Range<usize>>,
    /// Successor blocks per block; an edge is identified by `(block, position)`.
    successors: Vec<Vec<usize>>,
    /// The entry block and every block nothing in the graph branches to.
    roots: Vec<usize>,
}

impl Cfg {
    fn build(instructions: &[Instruction]) -> Cfg {
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
    fn guarded_blocks(&self, guards: &[usize], interesting: &[bool]) -> HashSet<usize> {
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
        for block in (0..self.blocks.len()).filter(|&b| interesting[b]) {
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
fn is_interesting(instruction: &Instruction) -> bool {
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
fn internal_target(instruction: &Instruction) -> Option<u64> {
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

/// What every step needs besides the state.
struct Context<'a> {
    factory: InstructionInfoFactory,
    facts: &'a dyn DetectionFacts,
    /// The function's address range.
    range: std::ops::Range<u64>,
}

/// Detection-derived registers (full registers), flags and stack slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Taint {
    registers: BTreeSet<Register>,
    /// Registers holding the address of detection state (loaded from a GOT slot).
    pointers: BTreeSet<Register>,
    /// Registers holding an address taken by `lea` at these sites.
    addresses: BTreeMap<Register, BTreeSet<u64>>,
    /// Registers whose taken address a detection-selected `cmov` already consumed: leaving
    /// the function does not count as using them again (their register is dead in every
    /// dispatcher seen; an explicit read still does).
    consumed: BTreeMap<Register, BTreeSet<u64>>,
    flags: bool,
    /// `(base register, displacement)` of stack slots holding a detection-derived value.
    slots: BTreeMap<(Register, i64), ()>,
}

/// Registers a call may change (System V AMD64).
const CALL_CLOBBERED: &[Register] = &[
    Register::RAX,
    Register::RCX,
    Register::RDX,
    Register::RSI,
    Register::RDI,
    Register::R8,
    Register::R9,
    Register::R10,
    Register::R11,
];

impl Taint {
    fn union(&self, other: &Taint) -> Taint {
        let mut merged = self.clone();
        merged.registers.extend(other.registers.iter().copied());
        merged.pointers.extend(other.pointers.iter().copied());
        for (register, sites) in &other.addresses {
            merged
                .addresses
                .entry(*register)
                .or_default()
                .extend(sites.iter().copied());
        }
        for (register, sites) in &other.consumed {
            merged
                .consumed
                .entry(*register)
                .or_default()
                .extend(sites.iter().copied());
        }
        merged.flags |= other.flags;
        merged
            .slots
            .extend(other.slots.iter().map(|(slot, ())| (*slot, ())));
        merged
    }

    /// Applies one instruction; returns whether it read a detection-derived value
    /// (for a conditional branch: whether it is a guard).
    fn step(
        &mut self,
        instruction: &Instruction,
        context: &mut Context<'_>,
        result: &mut GuardAnalysis,
    ) -> bool {
        let Context {
            factory,
            facts,
            range,
        } = context;
        let within = |address: u64| range.contains(&address);
        let mnemonic = instruction.mnemonic();
        if matches!(
            instruction.flow_control(),
            FlowControl::Call | FlowControl::IndirectCall
        ) {
            let returns = if instruction.flow_control() == FlowControl::Call {
                facts.returns_detection(instruction.near_branch_target())
            } else {
                instruction.is_ip_rel_memory_operand()
                    && facts.slot_returns_detection(instruction.ip_rel_memory_address())
            };
            // Whatever a call can see of the taken addresses escapes.
            for sites in std::mem::take(&mut self.addresses).into_values() {
                result.escaped_addresses.extend(sites);
            }
            self.consumed.clear();
            for register in CALL_CLOBBERED {
                self.registers.remove(register);
                self.pointers.remove(register);
            }
            self.registers.retain(|r| !r.is_vector_register());
            self.flags = false;
            if returns {
                // A detection result comes back in rax, or rax:rdx when it is 128 bits.
                self.registers.insert(Register::RAX);
                self.registers.insert(Register::RDX);
                result.reads_detection = true;
            }
            return false;
        }
        if mnemonic == Mnemonic::Ret && self.registers.contains(&Register::RAX) {
            result.returns_detection = true;
        }
        let leaves = match instruction.flow_control() {
            FlowControl::Return | FlowControl::IndirectBranch => true,
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
                internal_target(instruction).is_some_and(|target| !within(target))
            }
            _ => false,
        };
        if leaves {
            // Whatever runs next may use the taken addresses still held.
            for sites in std::mem::take(&mut self.addresses).into_values() {
                result.escaped_addresses.extend(sites);
            }
            self.consumed.clear();
        }

        let info = factory.info(instruction);
        let queries_cpu = matches!(mnemonic, Mnemonic::Cpuid | Mnemonic::Xgetbv);
        let address_registers: Vec<Register> = info
            .used_memory()
            .iter()
            .flat_map(|m| [m.base(), m.index()])
            .filter(|r| *r != Register::None)
            .collect();
        let explicit_registers: Vec<Register> = (0..instruction.op_count())
            .filter(|&op| instruction.op_kind(op) == OpKind::Register)
            .map(|op| instruction.op_register(op).full_register())
            .collect();
        let lea = mnemonic == Mnemonic::Lea;

        let mut tainted = queries_cpu || (self.flags && instruction.rflags_read() != 0);
        for used in info.used_registers() {
            let register = used.register().full_register();
            let is_address = address_registers.contains(&used.register())
                && !explicit_registers.contains(&register);
            if reads(used.access()) && (!is_address || lea) && self.registers.contains(&register) {
                tainted = true;
            }
        }
        let mut loads_pointer = false;
        for memory in info.used_memory() {
            if !reads(memory.access()) {
                continue;
            }
            match slot_or_static(memory) {
                Location::Static(address) if facts.is_detection_state(address) => {
                    tainted = true;
                    result.reads_detection = true;
                }
                Location::Static(address) if facts.points_to_detection_state(address) => {
                    loads_pointer = true;
                }
                Location::Stack(slot) if self.slots.contains_key(&slot) => tainted = true,
                Location::Other
                    if memory.index() == Register::None
                        && self.pointers.contains(&memory.base().full_register()) =>
                {
                    tainted = true;
                    result.reads_detection = true;
                }
                _ => {}
            }
        }
        if queries_cpu {
            result.reads_detection = true;
        }
        let selecting = is_cmov(mnemonic) && self.flags && instruction.rflags_read() != 0;
        for used in info.used_registers() {
            if !reads(used.access()) {
                continue;
            }
            let register = used.register().full_register();
            if let Some(sites) = self.consumed.get(&register).filter(|_| !selecting) {
                result.escaped_addresses.extend(sites.iter().copied());
            }
            if let Some(sites) = self.addresses.remove(&register) {
                if selecting {
                    result.selected_addresses.extend(sites.iter().copied());
                    self.consumed.entry(register).or_default().extend(sites);
                } else {
                    result.escaped_addresses.extend(sites.iter().copied());
                    self.addresses.insert(register, sites);
                }
            }
        }
        // `xor eax, eax` and friends produce zero whatever the register held.
        let zeroing = matches!(
            mnemonic,
            Mnemonic::Xor | Mnemonic::Sub | Mnemonic::Pxor | Mnemonic::Vpxor | Mnemonic::Xorps
        ) && instruction.op_count() == 2
            && instruction.op0_kind() == OpKind::Register
            && instruction.op1_kind() == OpKind::Register
            && instruction.op0_register() == instruction.op1_register();
        let value_tainted = tainted && !zeroing;

        for used in info.used_registers() {
            let register = used.register().full_register();
            if matches!(register, Register::RSP | Register::RBP | Register::RIP) {
                continue;
            }
            if matches!(used.access(), OpAccess::Write | OpAccess::ReadWrite)
                || (selecting && writes(used.access()))
            {
                self.addresses.remove(&register);
                self.consumed.remove(&register);
            }
            match used.access() {
                OpAccess::Write | OpAccess::ReadWrite if loads_pointer => {
                    self.pointers.insert(register);
                    self.registers.remove(&register);
                }
                OpAccess::Write | OpAccess::ReadWrite => {
                    self.pointers.remove(&register);
                    if value_tainted {
                        self.registers.insert(register);
                    } else {
                        self.registers.remove(&register);
                    }
                }
                OpAccess::CondWrite | OpAccess::ReadCondWrite if value_tainted => {
                    self.registers.insert(register);
                }
                _ => {}
            }
        }
        for memory in info.used_memory() {
            if !writes(memory.access()) {
                continue;
            }
            match slot_or_static(memory) {
                Location::Stack(slot) => {
                    if value_tainted {
                        self.slots.insert(slot, ());
                    } else if memory.access() == OpAccess::Write {
                        self.slots.remove(&slot);
                    }
                }
                Location::Static(address) if value_tainted => {
                    let size = memory.memory_size().size().max(1) as u64;
                    result.detection_stores.push((address, size));
                }
                _ => {}
            }
        }
        if instruction.rflags_modified() != 0 {
            self.flags = value_tainted;
        }
        if lea && instruction.is_ip_rel_memory_operand() {
            self.addresses.insert(
                instruction.op0_register().full_register(),
                BTreeSet::from([instruction.ip()]),
            );
        }
        tainted
    }
}

fn is_cmov(mnemonic: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        mnemonic,
        M::Cmova
            | M::Cmovae
            | M::Cmovb
            | M::Cmovbe
            | M::Cmove
            | M::Cmovg
            | M::Cmovge
            | M::Cmovl
            | M::Cmovle
            | M::Cmovne
            | M::Cmovno
            | M::Cmovnp
            | M::Cmovns
            | M::Cmovo
            | M::Cmovp
            | M::Cmovs
    )
}

fn reads(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Read | OpAccess::CondRead | OpAccess::ReadWrite | OpAccess::ReadCondWrite
    )
}

fn writes(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
    )
}

enum Location {
    Stack((Register, i64)),
    Static(u64),
    Other,
}

fn slot_or_static(memory: &iced_x86::UsedMemory) -> Location {
    let segment_based = matches!(memory.segment(), Register::FS | Register::GS);
    match (memory.base(), memory.index()) {
        (Register::RSP | Register::RBP, Register::None) if !segment_based => {
            Location::Stack((memory.base(), memory.displacement() as i64))
        }
        (Register::None, Register::None) if !segment_based => {
            Location::Static(memory.displacement())
        }
        _ => Location::Other,
    }
}
