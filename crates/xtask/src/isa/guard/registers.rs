//! Register sets, System V call conventions and operand helpers for the guard analysis.

use iced_x86::{Mnemonic, OpAccess, Register};

/// A set of registers (iced's register numbers, which fit in 256 bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Registers(pub(super) [u64; 4]);

impl Registers {
    pub(super) fn of(registers: &[Register]) -> Registers {
        let mut set = Registers::default();
        for &register in registers {
            set.insert(register);
        }
        set
    }
    pub(super) fn insert(&mut self, register: Register) {
        let index = register as usize;
        self.0[index / 64] |= 1 << (index % 64);
    }
    pub(super) fn remove(&mut self, register: Register) {
        let index = register as usize;
        self.0[index / 64] &= !(1 << (index % 64));
    }
    pub(super) fn contains(&self, register: Register) -> bool {
        let index = register as usize;
        self.0[index / 64] & (1 << (index % 64)) != 0
    }
    pub(super) fn and(self, other: Registers) -> Registers {
        Registers(std::array::from_fn(|i| self.0[i] & other.0[i]))
    }
}

/// Where the value a general-purpose register (0..16) or the flags (16) holds was defined:
/// `0` on entry, an instruction address, or a merge point's own id.
pub(super) type Definitions = [u64; 17];
pub(super) const FLAGS_DEFINITION: usize = 16;

/// The general-purpose register number of a full register (`rax` = 0 … `r15` = 15).
pub(super) fn gpr_index(register: Register) -> Option<usize> {
    (register as usize)
        .checked_sub(Register::RAX as usize)
        .filter(|&index| index < 16)
}

/// The full register of general-purpose register number `index`.
pub(super) fn gpr(index: usize) -> Register {
    const GPRS: [Register; 16] = [
        Register::RAX,
        Register::RCX,
        Register::RDX,
        Register::RBX,
        Register::RSP,
        Register::RBP,
        Register::RSI,
        Register::RDI,
        Register::R8,
        Register::R9,
        Register::R10,
        Register::R11,
        Register::R12,
        Register::R13,
        Register::R14,
        Register::R15,
    ];
    GPRS[index]
}

/// Registers a call preserves (System V AMD64); everything else, vectors included, may
/// change.
pub(super) const CALL_PRESERVED: &[Register] = &[
    Register::RBX,
    Register::RBP,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];

/// Registers a call may change (System V AMD64).
pub(super) const CALL_CLOBBERED: &[Register] = &[
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

pub(super) fn is_cmov(mnemonic: Mnemonic) -> bool {
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

pub(super) fn reads(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Read | OpAccess::CondRead | OpAccess::ReadWrite | OpAccess::ReadCondWrite
    )
}

pub(super) fn writes(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
    )
}

pub(super) enum Location {
    Stack((Register, i64)),
    Static(u64),
    Other,
}

pub(super) fn slot_or_static(memory: &iced_x86::UsedMemory) -> Location {
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
