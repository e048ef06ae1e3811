//! AArch64 code as the audit reads it: every 4-byte word decoded with yaxpeax-arm into what
//! the analyses need ([`Insn`]): control flow, the general-purpose registers it reads and
//! writes, the flags, the memory it addresses, and the extensions beyond the baseline it
//! needs, named as rustc names them. The baseline is Rust's `aarch64-unknown-linux-musl`:
//! armv8-a with fp and neon, so plain A64, FP and Advanced SIMD are never listed.
//!
//! yaxpeax-arm 0.5 does not decode SVE, SVE2 or SME: they are recognised from their top-level
//! encoding space and counted as `sve`/`sme`. Any other word it cannot decode (data in code,
//! or an extension newer than the decoder) is counted as undecodable and reported, never
//! passed silently. Hint-space instructions (BTI, the PAC `*sp`/`*1716`/`*z` forms) execute
//! as NOPs on CPUs without their feature, so they are baseline, like x86's `endbr64`.

use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{InstDecoder, Opcode, Operand};

use super::{Function, Reference, ReferenceKind};
use crate::isa::features::FeatureList;
use opcodes::{Access, access, features, reads_id_register};

/// How an instruction passes control on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Next,
    /// `bl`.
    Call(u64),
    /// `blr` and its pointer-authenticating forms.
    IndirectCall,
    /// `b`, `b.al`.
    Jump(u64),
    /// `b.cond`, `cbz`/`cbnz`, `tbz`/`tbnz`.
    Branch {
        target: u64,
        on: Condition,
    },
    IndirectJump,
    Return,
    /// Traps (`brk`, `udf`, `hlt`, `eret`) and undecodable words: nothing follows.
    Stop,
}

/// What a conditional branch tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Flags,
    Register(u8),
}

/// The address a load or store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// PC-relative literal (`ldr x0, label`).
    Literal(u64),
    /// `[xN, #offset]` (31 is `sp`).
    Base { register: u8, offset: i64 },
    /// Register-indexed or otherwise not a constant offset.
    Indexed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub address: Address,
    pub load: bool,
    pub store: bool,
}

/// An address an instruction computes into its destination register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// `adrp`: a 4 KiB page, not yet an address of anything.
    Page(u64),
    /// `adr`.
    Absolute(u64),
    /// `add xD, xN, #offset` or `mov xD, xN`.
    Offset { register: u8, offset: u64 },
}

/// One decoded word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub address: u64,
    pub flow: Flow,
    /// General-purpose registers `x0..x30` whose values it reads (bit n = xn); address
    /// registers of memory operands are not values.
    pub reads: u32,
    pub writes: u32,
    pub reads_flags: bool,
    pub writes_flags: bool,
    pub memory: Option<Memory>,
    /// `(destination, value)` of an address computation.
    pub value: Option<(u8, Value)>,
    /// `(destination, value)` of a `movz` (`mov x0, #16`): how `getauxval`'s argument is set.
    pub immediate: Option<(u8, u64)>,
    /// Reads an ID register (`mrs xN, ID_AA64ISAR0_EL1`): asks the CPU what it supports.
    pub queries_cpu: bool,
    /// Extensions beyond the baseline, as rustc `target_feature` names.
    pub features: &'static [&'static str],
    pub decoded: bool,
    /// Data in code (after a `$d` mapping symbol): never executed, not an instruction.
    pub data: bool,
}

impl Insn {
    fn new(address: u64) -> Insn {
        Insn {
            address,
            flow: Flow::Next,
            reads: 0,
            writes: 0,
            reads_flags: false,
            writes_flags: false,
            memory: None,
            value: None,
            immediate: None,
            queries_cpu: false,
            features: &[],
            decoded: true,
            data: false,
        }
    }

    /// The target of a direct branch or call.
    pub fn target(&self) -> Option<u64> {
        match self.flow {
            Flow::Call(target) | Flow::Jump(target) | Flow::Branch { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// Decodes every word of `bytes`, the code at `address`; `mapping` are the file's mapping
/// symbols, sorted (`(address, true)` where data in code starts, `false` where code does).
pub fn decode_all(bytes: &[u8], address: u64, mapping: &[(u64, bool)]) -> Vec<Insn> {
    bytes
        .chunks_exact(4)
        .enumerate()
        .map(|(n, chunk)| {
            let at = address + 4 * n as u64;
            let data = mapping
                .partition_point(|&(start, _)| start <= at)
                .checked_sub(1)
                .is_some_and(|index| mapping[index].1);
            if data {
                return Insn {
                    flow: Flow::Stop,
                    data: true,
                    ..Insn::new(at)
                };
            }
            let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            decode(word, at)
        })
        .collect()
}

/// Pass one over a function's code: instruction and feature counts, references (with the
/// addresses `adrp`/`add`/`adr` build, tracked in order through the function), CPU queries.
pub fn record_all(function: &mut Function, bytes: &[u8], mapping: &[(u64, bool)]) {
    let mut known: [Option<u64>; 32] = [None; 32];
    let range = function.address..function.end;
    let mut references = Vec::new();
    for insn in decode_all(bytes, function.address, mapping) {
        if insn.data {
            continue;
        }
        if !insn.decoded {
            function.undecodable += 1;
            continue;
        }
        function.instructions += 1;
        function.queries_cpu |= insn.queries_cpu;
        function.returns_directly |= matches!(insn.flow, Flow::Return | Flow::IndirectJump);
        if !insn.features.is_empty() {
            function
                .extended
                .push((insn.address, FeatureList::Aarch64(insn.features)));
        }
        let mut reference = |target: u64, kind: ReferenceKind| {
            references.push(Reference {
                site: insn.address,
                target,
                kind,
            })
        };
        match insn.flow {
            Flow::Call(target) => reference(target, ReferenceKind::Call),
            Flow::Jump(target) | Flow::Branch { target, .. } if !range.contains(&target) => {
                reference(target, ReferenceKind::Jump)
            }
            _ => {}
        }
        if let Some(memory) = insn.memory
            && let Some(target) = static_address(&memory.address, &known)
        {
            reference(target, ReferenceKind::Memory);
        }
        let computed = insn
            .value
            .and_then(|(register, value)| Some((register, value, evaluate(value, &known)?)));
        if let Some((_, Value::Absolute(_) | Value::Offset { .. }, address)) = computed {
            reference(address, ReferenceKind::Address);
        }
        for (register, slot) in known.iter_mut().enumerate().take(31) {
            if insn.writes & (1 << register) != 0 {
                *slot = None;
            }
        }
        if matches!(insn.flow, Flow::Call(_) | Flow::IndirectCall) {
            // x0-x18 and x30 do not survive a call.
            for slot in known.iter_mut().take(19) {
                *slot = None;
            }
            known[30] = None;
        }
        if let Some((register, _, address)) = computed {
            known[register as usize] = Some(address);
        }
        if matches!(
            insn.flow,
            Flow::Jump(_) | Flow::IndirectJump | Flow::Return | Flow::Stop
        ) {
            // What follows is reached from elsewhere, with other register contents.
            known = [None; 32];
        }
    }
    function.references = references;
}

/// The constant address `value` computes, given what registers are known to hold.
pub fn evaluate(value: Value, known: &[Option<u64>; 32]) -> Option<u64> {
    match value {
        Value::Page(address) | Value::Absolute(address) => Some(address),
        Value::Offset { register, offset } => Some(known[register as usize]?.wrapping_add(offset)),
    }
}

/// The static address a memory operand reads or writes, if it is a constant.
pub fn static_address(address: &Address, known: &[Option<u64>; 32]) -> Option<u64> {
    match *address {
        Address::Literal(target) => Some(target),
        Address::Base { register, offset } if register < 31 => {
            Some(known[register as usize]?.wrapping_add(offset as u64))
        }
        _ => None,
    }
}

fn sign_extend(value: u32, bits: u32) -> i64 {
    (((value << (32 - bits)) as i32) >> (32 - bits)) as i64
}

/// Decodes one word at `address`.
pub fn decode(word: u32, address: u64) -> Insn {
    let mut insn = Insn::new(address);
    // HINT #imm: BTI, PACIASP/AUTIASP and friends, NOP, YIELD: architecturally NOPs where
    // the feature is absent.
    if word & 0xFFFF_F01F == 0xD503_201F {
        return insn;
    }
    let space = (word >> 25) & 0xF;
    if space == 0b0010 {
        insn.features = &["sve"];
        return insn;
    }
    if space == 0 && word >> 31 == 1 {
        insn.features = &["sme"];
        return insn;
    }
    let Ok(instruction) = InstDecoder::default().decode(&mut U8Reader::new(&word.to_le_bytes()))
    else {
        insn.decoded = false;
        insn.flow = Flow::Stop;
        return insn;
    };
    let pc = address as i64;
    let relative = |offset: i64| pc.wrapping_add(offset) as u64;
    let bit = |register: u32| 1u32 << register;

    // Control flow and address computations, from the encoding itself.
    if word & 0x7C00_0000 == 0x1400_0000 {
        let target = relative(sign_extend(word & 0x03FF_FFFF, 26) << 2);
        insn.flow = if word >> 31 == 1 {
            Flow::Call(target)
        } else {
            Flow::Jump(target)
        };
        return insn;
    }
    if word & 0xFF00_0010 == 0x5400_0000 {
        let target = relative(sign_extend((word >> 5) & 0x7FFFF, 19) << 2);
        if word & 0xF >= 14 {
            insn.flow = Flow::Jump(target);
        } else {
            insn.flow = Flow::Branch {
                target,
                on: Condition::Flags,
            };
            insn.reads_flags = true;
        }
        return insn;
    }
    if word & 0x7E00_0000 == 0x3400_0000 || word & 0x7E00_0000 == 0x3600_0000 {
        let test_bit = word & 0x7E00_0000 == 0x3600_0000;
        let offset = if test_bit {
            sign_extend((word >> 5) & 0x3FFF, 14)
        } else {
            sign_extend((word >> 5) & 0x7FFFF, 19)
        };
        let register = (word & 31) as u8;
        insn.flow = Flow::Branch {
            target: relative(offset << 2),
            on: Condition::Register(register),
        };
        if register < 31 {
            insn.reads = bit(register as u32);
        }
        return insn;
    }
    if word & 0x1F00_0000 == 0x1000_0000 {
        // adr / adrp
        let immediate = sign_extend((((word >> 5) & 0x7FFFF) << 2) | ((word >> 29) & 3), 21);
        let value = if word >> 31 == 1 {
            Value::Page(((pc & !0xFFF) + (immediate << 12)) as u64)
        } else {
            Value::Absolute(relative(immediate))
        };
        let destination = (word & 31) as u8;
        if destination < 31 {
            insn.writes = bit(destination as u32);
            insn.value = Some((destination, value));
        }
        return insn;
    }

    let opcode = instruction.opcode;
    insn.features = features(&instruction, word);
    insn.queries_cpu = reads_id_register(word);
    insn.flow = match opcode {
        Opcode::BR | Opcode::BRAA | Opcode::BRAAZ | Opcode::BRAB | Opcode::BRABZ => {
            Flow::IndirectJump
        }
        Opcode::BLR | Opcode::BLRAA | Opcode::BLRAAZ | Opcode::BLRAB | Opcode::BLRABZ => {
            Flow::IndirectCall
        }
        Opcode::RET | Opcode::RETAA | Opcode::RETAB => Flow::Return,
        Opcode::BRK
        | Opcode::HLT
        | Opcode::UDF
        | Opcode::ERET
        | Opcode::ERETAA
        | Opcode::ERETAB
        | Opcode::DRPS => Flow::Stop,
        _ => Flow::Next,
    };
    insn.writes_flags = matches!(
        opcode,
        Opcode::ADDS
            | Opcode::SUBS
            | Opcode::ANDS
            | Opcode::BICS
            | Opcode::ADCS
            | Opcode::SBCS
            | Opcode::CCMP
            | Opcode::CCMN
            | Opcode::FCMP
            | Opcode::FCMPE
            | Opcode::FCCMP
            | Opcode::FCCMPE
            | Opcode::SETF8
            | Opcode::SETF16
            | Opcode::RMIF
            | Opcode::SUBPS
    );
    insn.reads_flags = matches!(
        opcode,
        Opcode::CSEL
            | Opcode::CSINC
            | Opcode::CSINV
            | Opcode::CSNEG
            | Opcode::CCMP
            | Opcode::CCMN
            | Opcode::ADC
            | Opcode::ADCS
            | Opcode::SBC
            | Opcode::SBCS
            | Opcode::FCSEL
            | Opcode::FCCMP
            | Opcode::FCCMPE
    );

    // Registers: which operands are values read, which are written.
    let registers: Vec<(usize, u8)> = instruction
        .operands
        .iter()
        .enumerate()
        .flat_map(|(index, operand)| {
            let (first, pair) = match *operand {
                Operand::Register(_, n) | Operand::RegisterOrSP(_, n) => (n, false),
                Operand::RegShift(_, _, _, n) => (n, false),
                Operand::RegisterPair(_, n) => (n, true),
                _ => return Vec::new(),
            };
            let mut list = vec![(index, first as u8)];
            if pair {
                list.push((index, first as u8 + 1));
            }
            list.retain(|&(_, n)| n < 31);
            list
        })
        .collect();
    let kind = access(opcode);
    let written = |index: usize| match kind {
        Access::Load { destinations } => index < destinations,
        Access::Store { status } => status && index == 0,
        Access::Atomic { destination } => index == destination,
        Access::None => {
            index == 0
                && !matches!(
                    opcode,
                    Opcode::MSR
                        | Opcode::SYS(_)
                        | Opcode::CCMP
                        | Opcode::CCMN
                        | Opcode::TBZ
                        | Opcode::TBNZ
                        | Opcode::CBZ
                        | Opcode::CBNZ
                        | Opcode::BR
                        | Opcode::BLR
                        | Opcode::RET
                        | Opcode::PRFM
                        | Opcode::PRFUM
                )
        }
    };
    for &(index, register) in &registers {
        if written(index) {
            insn.writes |= bit(register as u32);
        } else {
            insn.reads |= bit(register as u32);
        }
        if matches!(kind, Access::Atomic { .. }) {
            insn.reads |= bit(register as u32);
        }
    }
    if !matches!(kind, Access::None) {
        let address = instruction
            .operands
            .iter()
            .find_map(|operand| match *operand {
                Operand::RegPreIndex(n, offset, _) => Some(Address::Base {
                    register: n as u8,
                    offset: offset as i64,
                }),
                Operand::RegPostIndex(n, _) | Operand::RegPostIndexReg(n, _) => {
                    Some(Address::Base {
                        register: n as u8,
                        offset: 0,
                    })
                }
                Operand::RegRegOffset(..) => Some(Address::Indexed),
                Operand::PCOffset(offset) => Some(Address::Literal(relative(offset))),
                _ => None,
            });
        if let Some(address) = address {
            insn.memory = Some(Memory {
                address,
                load: matches!(kind, Access::Load { .. } | Access::Atomic { .. }),
                store: matches!(kind, Access::Store { .. } | Access::Atomic { .. }),
            });
        }
    }
    if word & 0x7F80_0000 == 0x5280_0000 && word & 31 != 31 {
        let shift = 16 * ((word >> 21) & 3);
        insn.immediate = Some(((word & 31) as u8, (((word >> 5) & 0xFFFF) as u64) << shift));
    }
    // add xD, xN, #imm and mov xD, xN (orr xD, xzr, xN) carry addresses along.
    if word & 0x7F80_0000 == 0x1100_0000 {
        let (destination, source) = ((word & 31) as u8, ((word >> 5) & 31) as u8);
        let shift = 12 * ((word >> 22) & 1);
        if destination < 31 && source < 31 {
            insn.value = Some((
                destination,
                Value::Offset {
                    register: source,
                    offset: (((word >> 10) & 0xFFF) as u64) << shift,
                },
            ));
        }
    } else if word & 0xFFE0_FFE0 == 0xAA00_03E0 {
        let (destination, source) = ((word & 31) as u8, ((word >> 16) & 31) as u8);
        if destination < 31 && source < 31 {
            insn.value = Some((
                destination,
                Value::Offset {
                    register: source,
                    offset: 0,
                },
            ));
        }
    }
    insn
}

mod opcodes;
#[cfg(test)]
mod tests;
