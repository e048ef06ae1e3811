//! The guard analysis of [`super`] for aarch64: which instructions of one function run only
//! behind a CPU-feature check, by the same rules on aarch64's terms.
//!
//! A value is detection-derived when it comes from an ID-register `mrs`, from a load of
//! detection state (its address built with `adrp` + `add`/`ldr`, followed through the
//! function), from a load through a pointer to detection state (a GOT slot), from a stack
//! slot holding one, or from the return value of a detection function (`getauxval`,
//! std_detect's slow path, and whatever returns theirs: [`super::super::dispatch`] finds
//! them to a fixpoint). Taint follows the general-purpose registers, the flags and stack
//! slots forward; where paths meet, a value stays detection-derived only if it is on every
//! path. Guards are `cbz`/`cbnz`/`tbz`/`tbnz` on a detection-derived register and `b.cond`
//! on detection-derived flags; an instruction is guarded when every path to it takes a
//! decisive guard edge ([`Cfg::guarded_blocks`], shared with x86-64).

use std::collections::BTreeSet;

use super::{Code, DetectionFacts, GuardAnalysis, final_pass};
use crate::isa::cfg::{Cfg, Exit};
use crate::isa::program::aarch64::{Address, Flow, Insn, evaluate, static_address};

/// x19-x29: what a call preserves (AAPCS64); x0-x18 and x30 may change.
const CALL_PRESERVED: u32 = 0x3FF8_0000;
/// x0 and x1: where a call's result comes back (x1 for 128-bit results).
const RESULT: u32 = 0b11;
/// Stack slots are `[sp, #n]` and `[x29, #n]`.
const FRAME_REGISTERS: [u8; 2] = [31, 29];
/// `getauxval` arguments whose results are CPU features: `AT_HWCAP`, `AT_HWCAP2`.
const AT_HWCAP: [u64; 2] = [16, 26];

/// Runs the analysis over `instructions`, the whole of one function, in address order.
pub fn analyze(instructions: &[Insn], facts: &dyn DetectionFacts) -> GuardAnalysis {
    if instructions.is_empty() {
        return GuardAnalysis::default();
    }
    let cfg = control_flow(instructions, facts);
    let body = instructions[0].address..instructions[instructions.len() - 1].address + 4;
    let predecessors = cfg.predecessors();
    let is_root = cfg.root_mask();
    let entry = State::default();
    let entry_of = |block: usize, exits: &[Option<State>]| -> Option<State> {
        let mut incoming: Vec<&State> = predecessors[block]
            .iter()
            .filter_map(|&p| exits[p].as_ref())
            .collect();
        if is_root[block] {
            incoming.push(&entry);
        }
        let (first, rest) = incoming.split_first()?;
        Some(
            rest.iter()
                .fold((*first).clone(), |merged, other| merged.meet(other)),
        )
    };

    // Forward to a fixpoint; without one the function proves nothing.
    let mut scratch = GuardAnalysis::default();
    let exits = cfg.fixpoint(|block, exits| {
        let mut state = entry_of(block, exits)?;
        for insn in &instructions[cfg.blocks[block].clone()] {
            state.step(insn, &body, facts, &mut scratch);
        }
        Some(state)
    });
    let Some(exits) = exits else {
        return GuardAnalysis::default();
    };

    let mut result = GuardAnalysis::default();
    final_pass(
        &cfg,
        instructions,
        |block| entry_of(block, &exits),
        |state, insn, result| state.step(insn, &body, facts, result),
        &mut result,
    );
    result
}

impl Code for Insn {
    fn address(&self) -> u64 {
        self.address
    }

    fn is_conditional_branch(&self) -> bool {
        matches!(self.flow, Flow::Branch { .. })
    }

    fn is_interesting(&self) -> bool {
        !self.features.is_empty()
            || self.memory.is_some()
            || self.value.is_some()
            || matches!(
                self.flow,
                Flow::Call(_) | Flow::Jump(_) | Flow::Branch { .. }
            )
    }
}

/// Basic blocks and successors of one function's instructions (4 bytes each, in order).
fn control_flow(instructions: &[Insn], facts: &dyn DetectionFacts) -> Cfg {
    let start = instructions[0].address;
    let index_of = |address: u64| -> Option<usize> {
        let offset = address.checked_sub(start)?;
        (offset % 4 == 0 && ((offset / 4) as usize) < instructions.len())
            .then_some((offset / 4) as usize)
    };
    let exits: Vec<(Exit, Option<usize>)> = instructions
        .iter()
        .map(|insn| {
            let exit = match insn.flow {
                Flow::Call(target) if facts.never_returns(target) => Exit::Stop,
                Flow::Next | Flow::Call(_) | Flow::IndirectCall => Exit::Next,
                Flow::Branch { .. } => Exit::Branch,
                Flow::Jump(_) => Exit::Jump,
                Flow::IndirectJump | Flow::Return | Flow::Stop => Exit::Stop,
            };
            (exit, insn.target().and_then(index_of))
        })
        .collect();
    Cfg::from_exits(&exits)
}

/// Detection-derived registers, flags and stack slots, and the addresses registers hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct State {
    /// Bit n: xn holds a detection-derived value.
    tainted: u32,
    /// Bit n: xn holds the address of detection state (loaded from a GOT slot).
    pointers: u32,
    flags: bool,
    /// Constant addresses (from `adrp`/`adr`/`add`) registers hold.
    known: [Option<u64>; 32],
    /// `(frame register, offset)` of stack slots holding a detection-derived value.
    slots: BTreeSet<(u8, i64)>,
    /// The constant x0 holds (a call's first argument), if a `movz` set it.
    argument: Option<u64>,
}

impl State {
    /// Where two paths meet: detection-derived only if it is on both; an address only if
    /// both paths hold the same one.
    fn meet(&self, other: &State) -> State {
        let mut known = self.known;
        for (mine, theirs) in known.iter_mut().zip(other.known) {
            if *mine != theirs {
                *mine = None;
            }
        }
        State {
            tainted: self.tainted & other.tainted,
            pointers: self.pointers & other.pointers,
            flags: self.flags && other.flags,
            known,
            slots: self.slots.intersection(&other.slots).copied().collect(),
            argument: self.argument.filter(|_| self.argument == other.argument),
        }
    }

    /// Whether a call to `target` now returns a detection-derived value.
    fn call_returns_detection(&self, target: u64, facts: &dyn DetectionFacts) -> bool {
        facts.returns_detection(target)
            || (facts.reads_auxv(target) && self.argument.is_some_and(|a| AT_HWCAP.contains(&a)))
    }

    /// Applies one instruction of the function whose code spans `body`; returns whether it
    /// read a detection-derived value (for a conditional branch: whether it is a guard).
    fn step(
        &mut self,
        insn: &Insn,
        body: &std::ops::Range<u64>,
        facts: &dyn DetectionFacts,
        result: &mut GuardAnalysis,
    ) -> bool {
        // A tail call (`b getauxval`, `cpufeatures::aarch64::getauxval_hwcap`'s whole body)
        // returns what its target returns: detection-derived or not.
        if let Flow::Jump(target) | Flow::Branch { target, .. } = insn.flow
            && !body.contains(&target)
            && !facts.never_returns(target)
        {
            if self.call_returns_detection(target, facts) {
                result.tainted_returns = true;
                result.reads_detection = true;
            } else {
                result.clean_returns = true;
            }
        }
        match insn.flow {
            Flow::Call(_) | Flow::IndirectCall => {
                let returns = match insn.flow {
                    Flow::Call(target) => self.call_returns_detection(target, facts),
                    _ => false,
                };
                self.argument = None;
                self.tainted &= CALL_PRESERVED;
                self.pointers &= CALL_PRESERVED;
                for (register, held) in self.known.iter_mut().enumerate() {
                    if CALL_PRESERVED & (1 << register) == 0 && register != 31 {
                        *held = None;
                    }
                }
                self.flags = false;
                if returns {
                    self.tainted |= RESULT;
                    result.reads_detection = true;
                }
                return false;
            }
            Flow::Return if self.tainted & 1 != 0 => result.tainted_returns = true,
            Flow::Return => result.clean_returns = true,
            _ => {}
        }
        let mut tainted =
            insn.queries_cpu || (insn.reads_flags && self.flags) || insn.reads & self.tainted != 0;
        let mut loads_pointer = false;
        let address = insn
            .memory
            .and_then(|memory| static_address(&memory.address, &self.known));
        let slot = insn.memory.and_then(|memory| match memory.address {
            Address::Base { register, offset } if FRAME_REGISTERS.contains(&register) => {
                Some((register, offset))
            }
            _ => None,
        });
        if let Some(memory) = insn.memory.filter(|m| m.load) {
            if address.is_some_and(|a| facts.is_detection_state(a)) {
                tainted = true;
                result.reads_detection = true;
            } else if address.is_some_and(|a| facts.points_to_detection_state(a)) {
                loads_pointer = true;
            }
            if slot.is_some_and(|slot| self.slots.contains(&slot)) {
                tainted = true;
            }
            if let Address::Base { register, .. } = memory.address
                && register < 31
                && self.pointers & (1 << register) != 0
            {
                tainted = true;
                result.reads_detection = true;
            }
        }
        if insn.queries_cpu {
            result.reads_detection = true;
        }
        if insn.memory.is_some_and(|m| m.store) {
            let stored = insn.reads & self.tainted != 0;
            match (slot, address) {
                (Some(slot), _) if stored => {
                    self.slots.insert(slot);
                }
                (Some(slot), _) => {
                    self.slots.remove(&slot);
                }
                (None, Some(address)) if stored => result.detection_stores.push((address, 8)),
                _ => {}
            }
        }
        let value = insn
            .value
            .and_then(|(register, value)| Some((register, evaluate(value, &self.known)?)));
        for (register, held) in self.known.iter_mut().enumerate().take(31) {
            let bit = 1u32 << register;
            if insn.writes & bit == 0 {
                continue;
            }
            *held = None;
            if loads_pointer {
                self.pointers |= bit;
                self.tainted &= !bit;
            } else {
                self.pointers &= !bit;
                if tainted {
                    self.tainted |= bit;
                } else {
                    self.tainted &= !bit;
                }
            }
        }
        if let Some((register, address)) = value {
            self.known[register as usize] = Some(address);
        }
        if insn.writes & 1 != 0 {
            self.argument = match insn.immediate {
                Some((0, value)) => Some(value),
                _ => None,
            };
        }
        if insn.writes_flags {
            self.flags = tainted;
        }
        tainted
    }
}
