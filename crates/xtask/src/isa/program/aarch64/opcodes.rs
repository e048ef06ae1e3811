//! What one decoded aarch64 instruction needs and touches, by opcode: which memory access
//! class it is (loads, stores, the LSE atomics), the system registers it names, and the
//! extensions beyond armv8-a + fp + neon it needs, as rustc names them.

use yaxpeax_arm::armv8::a64::{Instruction, Opcode, Operand, SIMDSizeCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Operands `0..destinations` are loaded registers.
    Load {
        destinations: usize,
    },
    /// `status`: operand 0 is the exclusive store's status register.
    Store {
        status: bool,
    },
    /// Loads and stores; operand `destination` receives the old value.
    Atomic {
        destination: usize,
    },
    None,
}

pub(super) fn access(opcode: Opcode) -> Access {
    use Opcode as O;
    match opcode {
        O::LDP | O::LDPSW | O::LDNP | O::LDXP | O::LDAXP => Access::Load { destinations: 2 },
        O::LDR
        | O::LDRB
        | O::LDRSB
        | O::LDRSW
        | O::LDRSH
        | O::LDRH
        | O::LDTR
        | O::LDTRB
        | O::LDTRH
        | O::LDTRSB
        | O::LDTRSH
        | O::LDTRSW
        | O::LDUR
        | O::LDURB
        | O::LDURSB
        | O::LDURSW
        | O::LDURSH
        | O::LDURH
        | O::LDAR
        | O::LDLAR
        | O::LDARB
        | O::LDLARB
        | O::LDARH
        | O::LDLARH
        | O::LDAXR
        | O::LDAXRB
        | O::LDAXRH
        | O::LDXR
        | O::LDXRB
        | O::LDXRH
        | O::LDAPR
        | O::LDAPRB
        | O::LDAPRH
        | O::LDAPUR
        | O::LDAPURB
        | O::LDAPURH
        | O::LDAPURSB
        | O::LDAPURSH
        | O::LDAPURSW
        | O::LDRAA
        | O::LDRAB
        | O::LD1
        | O::LD2
        | O::LD3
        | O::LD4
        | O::LD1R
        | O::LD2R
        | O::LD3R
        | O::LD4R
        | O::LDG
        | O::LDGM => Access::Load { destinations: 1 },
        O::STXR | O::STXRB | O::STXRH | O::STXP | O::STLXR | O::STLXRB | O::STLXRH | O::STLXP => {
            Access::Store { status: true }
        }
        O::STR
        | O::STRB
        | O::STRH
        | O::STRW
        | O::STUR
        | O::STURB
        | O::STURH
        | O::STTR
        | O::STTRB
        | O::STTRH
        | O::STP
        | O::STNP
        | O::STLR
        | O::STLLR
        | O::STLRB
        | O::STLLRB
        | O::STLRH
        | O::STLLRH
        | O::STLUR
        | O::STLURB
        | O::STLURH
        | O::ST1
        | O::ST2
        | O::ST3
        | O::ST4
        | O::STG
        | O::STZG
        | O::ST2G
        | O::STZ2G
        | O::STGM
        | O::STZGM => Access::Store { status: false },
        O::CAS(_) | O::CASB(_) | O::CASH(_) | O::CASP(_) => Access::Atomic { destination: 0 },
        O::SWP(_)
        | O::SWPB(_)
        | O::SWPH(_)
        | O::LDADD(_)
        | O::LDADDB(_)
        | O::LDADDH(_)
        | O::LDCLR(_)
        | O::LDCLRB(_)
        | O::LDCLRH(_)
        | O::LDEOR(_)
        | O::LDEORB(_)
        | O::LDEORH(_)
        | O::LDSET(_)
        | O::LDSETB(_)
        | O::LDSETH(_)
        | O::LDSMAX(_)
        | O::LDSMAXB(_)
        | O::LDSMAXH(_)
        | O::LDSMIN(_)
        | O::LDSMINB(_)
        | O::LDSMINH(_)
        | O::LDUMAX(_)
        | O::LDUMAXB(_)
        | O::LDUMAXH(_)
        | O::LDUMIN(_)
        | O::LDUMINB(_)
        | O::LDUMINH(_) => Access::Atomic { destination: 1 },
        _ => Access::None,
    }
}

/// `mrs` of an ID register (op0 = 3, op1 = 0, CRn = 0: MIDR_EL1, ID_AA64ISAR0_EL1, ...).
pub(super) fn reads_id_register(word: u32) -> bool {
    let is_mrs = word & 0xFFF0_0000 == 0xD530_0000;
    is_mrs && matches!(system_register(word), Some((3, 0, 0, _, _)))
}

/// The system register of an `mrs`/`msr` (register form), as `(op0, op1, CRn, CRm, op2)`.
pub(super) fn system_register(word: u32) -> Option<(u32, u32, u32, u32, u32)> {
    (word & 0xFFD0_0000 == 0xD510_0000).then(|| {
        (
            2 + ((word >> 19) & 1),
            (word >> 16) & 7,
            (word >> 12) & 0xF,
            (word >> 8) & 0xF,
            (word >> 5) & 7,
        )
    })
}

/// Extensions beyond armv8-a + fp + neon one decoded instruction needs (rustc's names).
pub(super) fn features(instruction: &Instruction, word: u32) -> &'static [&'static str] {
    use Opcode as O;
    match system_register(word) {
        // TPIDR2_EL0, SVCR
        Some((3, 3, 13, 0, 5)) | Some((3, 3, 4, 2, 2)) => return &["sme"],
        // RNDR, RNDRRS
        Some((3, 3, 2, 4, 0 | 1)) => return &["rand"],
        _ => {}
    }
    // msr svcrsm/svcrza/svcrsmza, #imm (smstart/smstop): MSR (immediate), op1 = 3, op2 = 3,
    // CRn = 4.
    if word & 0xFFF8_F01F == 0xD500_401F && (word >> 16) & 7 == 3 && (word >> 5) & 7 == 3 {
        return &["sme"];
    }
    match instruction.opcode {
        // The atomic memory operations are exactly FEAT_LSE.
        opcode if matches!(access(opcode), Access::Atomic { .. }) => &["lse"],
        O::AESE | O::AESD | O::AESMC | O::AESIMC => &["aes"],
        // The 64-bit polynomial forms (size = 0b11) are FEAT_PMULL, rustc's `aes`; the
        // 8-bit ones are plain NEON.
        O::PMULL | O::PMULL2 if (word >> 22) & 3 == 3 => &["aes"],
        O::SHA1C
        | O::SHA1P
        | O::SHA1M
        | O::SHA1H
        | O::SHA1SU0
        | O::SHA1SU1
        | O::SHA256H
        | O::SHA256H2
        | O::SHA256SU0
        | O::SHA256SU1 => &["sha2"],
        O::SHA512H
        | O::SHA512H2
        | O::SHA512SU0
        | O::SHA512SU1
        | O::RAX1
        | O::EOR3
        | O::XAR
        | O::BCAX => &["sha3"],
        O::SM3TT1A
        | O::SM3TT1B
        | O::SM3TT2A
        | O::SM3TT2B
        | O::SM3PARTW1
        | O::SM3PARTW2
        | O::SM3SS1
        | O::SM4E
        | O::SM4EKEY => &["sm4"],
        O::CRC32B
        | O::CRC32H
        | O::CRC32W
        | O::CRC32X
        | O::CRC32CB
        | O::CRC32CH
        | O::CRC32CW
        | O::CRC32CX => &["crc"],
        O::SDOT | O::UDOT => &["dotprod"],
        O::SQRDMLAH | O::SQRDMLSH => &["rdm"],
        O::LDAPR | O::LDAPRB | O::LDAPRH => &["rcpc"],
        O::LDAPUR
        | O::LDAPURB
        | O::LDAPURH
        | O::LDAPURSB
        | O::LDAPURSH
        | O::LDAPURSW
        | O::STLUR
        | O::STLURB
        | O::STLURH => &["rcpc2"],
        O::FJCVTZS => &["jsconv"],
        O::FCMLA | O::FCADD => &["fcma"],
        O::FMLAL | O::FMLAL2 | O::FMLSL | O::FMLSL2 => &["fhm"],
        O::FRINT32Z | O::FRINT32X | O::FRINT64Z | O::FRINT64X => &["frintts"],
        O::BFCVT => &["bf16"],
        O::SETF8 | O::SETF16 | O::RMIF => &["flagm"],
        O::SB => &["sb"],
        O::LDG
        | O::LDGM
        | O::STG
        | O::STZG
        | O::ST2G
        | O::STZ2G
        | O::STGM
        | O::STZGM
        | O::IRG
        | O::GMI
        | O::SUBP
        | O::SUBPS => &["mte"],
        O::PACGA => &["pacg"],
        O::LDRAA
        | O::LDRAB
        | O::BLRAA
        | O::BLRAAZ
        | O::BLRAB
        | O::BLRABZ
        | O::BRAA
        | O::BRAAZ
        | O::BRAB
        | O::BRABZ
        | O::RETAA
        | O::RETAB
        | O::ERETAA
        | O::ERETAB
        | O::PACIA
        | O::PACIB
        | O::PACDA
        | O::PACDB
        | O::AUTIA
        | O::AUTIB
        | O::AUTDA
        | O::AUTDB
        | O::PACIZA
        | O::PACIZB
        | O::PACDZA
        | O::PACDZB
        | O::AUTIZA
        | O::AUTIZB
        | O::AUTDZA
        | O::AUTDZB
        | O::XPACI
        | O::XPACD => &["paca"],
        opcode if is_half_precision_arithmetic(opcode, instruction) => &["fp16"],
        _ => &[],
    }
}

/// Floating-point arithmetic on half-precision values (FEAT_FP16); conversions to and from
/// half precision (`fcvt`, `fcvtl`, `fcvtn`) are baseline.
fn is_half_precision_arithmetic(opcode: Opcode, instruction: &Instruction) -> bool {
    use Opcode as O;
    let arithmetic = matches!(
        opcode,
        O::FADD
            | O::FSUB
            | O::FMUL
            | O::FDIV
            | O::FMADD
            | O::FMSUB
            | O::FNMADD
            | O::FNMSUB
            | O::FNMUL
            | O::FMLA
            | O::FMLS
            | O::FABS
            | O::FNEG
            | O::FSQRT
            | O::FMAX
            | O::FMIN
            | O::FMAXNM
            | O::FMINNM
            | O::FCMP
            | O::FCMPE
            | O::FCMEQ
            | O::FCMGE
            | O::FCMGT
            | O::FABD
            | O::FADDP
            | O::FMULX
            | O::FRECPE
            | O::FRSQRTE
            | O::FRINTN
            | O::FRINTP
            | O::FRINTM
            | O::FRINTZ
            | O::FRINTA
            | O::FRINTX
            | O::FRINTI
    );
    arithmetic
        && instruction.operands.iter().any(|operand| {
            matches!(
                operand,
                Operand::SIMDRegister(SIMDSizeCode::H, _)
                    | Operand::SIMDRegisterElements(_, _, SIMDSizeCode::H)
                    | Operand::SIMDRegisterElementsLane(_, _, SIMDSizeCode::H, _)
            )
        })
}
