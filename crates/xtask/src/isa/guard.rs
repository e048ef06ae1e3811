//! Which instructions of one function run only behind a CPU-feature check.
//!
//! A value is *detection-derived* when it comes from `cpuid`/`xgetbv`, from a load of
//! detection state (a static that holds a detection result, e.g. std_detect's cache behind
//! `is_x86_feature_detected!`), or from the return value of a function that returns one.
//! Taint follows registers, flags and stack slots through the function (forward, "may").
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

use super::cfg::{Cfg, internal_target, is_interesting};

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
