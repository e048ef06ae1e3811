//! Which instructions of one function run only behind a CPU-feature check.
//!
//! A value is *detection-derived* when it comes from `cpuid`/`xgetbv`, from a load of
//! detection state (a static that holds a detection result, e.g. std_detect's cache behind
//! `is_x86_feature_detected!`), or from the return value of a function that returns one.
//! Taint follows registers, flags and stack slots through the function (forward; where
//! paths meet, a value stays detection-derived only if it is on every path).
//! A conditional branch on detection-derived flags is a *guard*. An instruction is
//! *guarded* when every path from the function's entry to it takes a decisive guard edge
//! ([`Cfg::guarded_blocks`]) — it runs only when a detection result went one particular
//! way. Blocks the control-flow graph cannot explain (landing pads, jump-table targets)
//! count as extra entries, so they are never guarded by what comes before them. A `lea` of
//! a function whose address only feeds a `cmov` on guard flags is guarded too.

use std::collections::{BTreeMap, BTreeSet};

use iced_x86::{
    FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register,
};

use super::cfg::{Cfg, internal_target};

pub mod aarch64;
mod registers;
use registers::*;

/// What the analysis of one function found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardAnalysis {
    /// Addresses of instructions that run only behind a guard, and of conditional jumps that
    /// are guards themselves (a conditional tail call is guarded by its own condition).
    pub guarded: BTreeSet<u64>,
    /// Static addresses a detection-derived value is stored to, with the store's size.
    pub detection_stores: Vec<(u64, u64)>,
    /// Every `ret` returns a detection-derived value in `rax`.
    pub returns_detection: bool,
    tainted_returns: bool,
    clean_returns: bool,
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
    /// `address` is the C library's `getauxval`: its result is detection-derived when the
    /// argument asks for the hardware capabilities (`AT_HWCAP`, `AT_HWCAP2`).
    fn reads_auxv(&self, _address: u64) -> bool {
        false
    }
    /// A call to `address` never returns (a panic, `abort`): the code after it belongs to
    /// another block. Only the aarch64 analysis asks (x86-64 builds put a trap there).
    fn never_returns(&self, _address: u64) -> bool {
        false
    }
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

    // Forward taint to a fixpoint. A block's entry state is the meet of its predecessors'
    // exit states (roots start clean); `chosen` marks a path that took a guard edge and
    // has not met another path since.
    let predecessors = cfg.predecessors();
    let is_root = cfg.root_mask();
    // Per block: exit state and whether the block ends in a guard.
    let entry_of = |block: usize, exits: &[Option<(Taint, bool)>]| -> Option<Taint> {
        let incoming = predecessors[block].iter().filter_map(|&p| {
            exits[p].as_ref().map(|(state, ends_in_guard)| {
                let mut state = state.clone();
                state.chosen = *ends_in_guard || (state.chosen && predecessors[p].len() == 1);
                state
            })
        });
        let mut incoming: Vec<Taint> = incoming.collect();
        if is_root[block] {
            incoming.push(Taint::default());
        }
        match incoming.len() {
            0 => None,
            1 => incoming.pop(),
            _ => {
                let mut merged = incoming[0].meet(&incoming[1], block);
                for other in &incoming[2..] {
                    merged = merged.meet(other, block);
                }
                Some(merged)
            }
        }
    };
    let mut result = GuardAnalysis::default();
    let exits = cfg.fixpoint(|block, exits| {
        let mut state = entry_of(block, exits)?;
        let chosen = state.chosen && predecessors[block].len() == 1;
        let mut ends_in_guard = false;
        for instruction in &instructions[cfg.blocks[block].clone()] {
            let tainted = state.step(instruction, &mut context, &mut result);
            ends_in_guard = tainted && instruction.flow_control() == FlowControl::ConditionalBranch;
        }
        state.chosen = chosen;
        Some((state, ends_in_guard))
    });
    let Some(exits) = exits else {
        return GuardAnalysis::default();
    };
    result.detection_stores.clear();
    result.tainted_returns = false;
    result.clean_returns = false;
    final_pass(
        &cfg,
        instructions,
        |block| entry_of(block, &exits),
        |state, instruction, result| state.step(instruction, &mut context, result),
        &mut result,
    );
    let selected: Vec<u64> = result
        .selected_addresses
        .difference(&result.escaped_addresses)
        .copied()
        .collect();
    result.guarded.extend(selected);
    result
}

/// What the parts of the analysis both architectures share ask of an instruction.
trait Code {
    fn address(&self) -> u64;
    /// A conditional branch: a guard when its condition is detection-derived.
    fn is_conditional_branch(&self) -> bool;
    /// The audit asks about it: a reference to other code or to a static, or an
    /// instruction beyond the architectural baseline.
    fn is_interesting(&self) -> bool;
}

impl Code for Instruction {
    fn address(&self) -> u64 {
        self.ip()
    }

    fn is_conditional_branch(&self) -> bool {
        self.flow_control() == FlowControl::ConditionalBranch
    }

    fn is_interesting(&self) -> bool {
        let absolute_memory = (0..self.op_count()).any(|op| {
            self.op_kind(op) == OpKind::Memory
                && self.memory_base() == Register::None
                && self.memory_index() == Register::None
        });
        matches!(
            self.flow_control(),
            FlowControl::Call | FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch
        ) || self.is_ip_rel_memory_operand()
            || absolute_memory
            || self
                .cpuid_features()
                .iter()
                .any(|&f| !super::features::is_architectural(f))
    }
}

/// The pass both analyses end with, once the forward analysis has settled: every reached
/// block is stepped again from its entry state (`entry(block)`; `step` applies one
/// instruction and says whether it read a detection-derived value). A conditional branch
/// on such a value is a guard and counts as guarded itself; so does every instruction of a
/// block only guard edges lead to ([`Cfg::guarded_blocks`], among the blocks holding
/// something the audit asks about). Settles the stores and the returns too.
fn final_pass<I: Code, S>(
    cfg: &Cfg,
    instructions: &[I],
    entry: impl Fn(usize) -> Option<S>,
    mut step: impl FnMut(&mut S, &I, &mut GuardAnalysis) -> bool,
    result: &mut GuardAnalysis,
) {
    let mut guards = Vec::new();
    for (block, range) in cfg.blocks.iter().enumerate() {
        let Some(mut state) = entry(block) else {
            continue;
        };
        for instruction in &instructions[range.clone()] {
            if step(&mut state, instruction, result) && instruction.is_conditional_branch() {
                result.guarded.insert(instruction.address());
                guards.push(block);
            }
        }
    }
    result.detection_stores.sort_unstable();
    result.detection_stores.dedup();
    result.returns_detection = result.tainted_returns && !result.clean_returns;

    let interesting: Vec<bool> = cfg
        .blocks
        .iter()
        .map(|range| instructions[range.clone()].iter().any(I::is_interesting))
        .collect();
    for block in cfg.guarded_blocks(&guards, &interesting) {
        let range = cfg.blocks[block].clone();
        result
            .guarded
            .extend(instructions[range].iter().map(I::address));
    }
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
    registers: Registers,
    /// Registers holding the address of detection state (loaded from a GOT slot).
    pointers: Registers,
    /// The path took a guard edge and met no other path since: where it meets others, a
    /// register defined differently on the paths holds a detection-dependent value.
    chosen: bool,
    defs: Definitions,
    /// Registers holding an address taken by `lea` at these sites.
    addresses: BTreeMap<Register, BTreeSet<u64>>,
    /// Registers whose taken address a detection-selected `cmov` already consumed: leaving
    /// the function does not count as using them again (their register is dead in every
    /// dispatcher seen; an explicit read still does).
    consumed: BTreeMap<Register, BTreeSet<u64>>,
    flags: bool,
    /// `(base register, displacement)` of stack slots holding a detection-derived value.
    slots: BTreeSet<(Register, i64)>,
}

impl Taint {
    /// The state where two paths meet at `block`. A value is detection-derived only if it
    /// is on both paths ("must": a branch is a guard only when its condition comes from
    /// detection whichever way the function got there); a taken address is tracked if it
    /// may be held on either path (so every possible use of it counts).
    fn meet(&self, other: &Taint, block: usize) -> Taint {
        // Implicit flow: after a guard chose one of the paths, a register whose definitions
        // differ between them holds a value the check decided (`al = if detected { 1 }
        // else { bits }`); one defined the same on both (a pointer argument) does not.
        let implicit = self.chosen || other.chosen;
        let mut registers = self.registers.and(other.registers);
        let mut defs = self.defs;
        for (index, def) in defs.iter_mut().enumerate() {
            if *def != other.defs[index] {
                *def = (1 << 63) | ((block as u64) << 5) | index as u64;
                if implicit && index < 16 {
                    registers.insert(gpr(index));
                }
            }
        }
        let flags_differ = self.defs[FLAGS_DEFINITION] != other.defs[FLAGS_DEFINITION];
        let mut merged = Taint {
            registers,
            pointers: self.pointers.and(other.pointers),
            chosen: false,
            defs,
            flags: (self.flags && other.flags) || (implicit && flags_differ),
            slots: self.slots.intersection(&other.slots).copied().collect(),
            addresses: self.addresses.clone(),
            consumed: self.consumed.clone(),
        };
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
            let preserved = Registers::of(CALL_PRESERVED);
            self.registers = self.registers.and(preserved);
            self.pointers = self.pointers.and(preserved);
            for register in CALL_CLOBBERED {
                if let Some(index) = gpr_index(*register) {
                    self.defs[index] = instruction.ip();
                }
            }
            self.defs[FLAGS_DEFINITION] = instruction.ip();
            self.flags = false;
            if returns {
                // A detection result comes back in rax, or rax:rdx when it is 128 bits.
                self.registers.insert(Register::RAX);
                self.registers.insert(Register::RDX);
                result.reads_detection = true;
            }
            return false;
        }
        if mnemonic == Mnemonic::Ret {
            if self.registers.contains(Register::RAX) {
                result.tainted_returns = true;
            } else {
                result.clean_returns = true;
            }
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
            if reads(used.access()) && (!is_address || lea) && self.registers.contains(register) {
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
                Location::Stack(slot) if self.slots.contains(&slot) => tainted = true,
                Location::Other
                    if memory.index() == Register::None
                        && self.pointers.contains(memory.base().full_register()) =>
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
            if writes(used.access())
                && let Some(index) = gpr_index(register)
            {
                self.defs[index] = instruction.ip();
            }
            match used.access() {
                OpAccess::Write | OpAccess::ReadWrite if loads_pointer => {
                    self.pointers.insert(register);
                    self.registers.remove(register);
                }
                OpAccess::Write | OpAccess::ReadWrite => {
                    self.pointers.remove(register);
                    if value_tainted {
                        self.registers.insert(register);
                    } else {
                        self.registers.remove(register);
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
                        self.slots.insert(slot);
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
            self.defs[FLAGS_DEFINITION] = instruction.ip();
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
