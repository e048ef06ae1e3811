//! An x86-64 or aarch64 ELF file as the audit needs it: its functions (from the symbol
//! table), what instructions each one uses, and every reference between code and data —
//! direct calls and jumps, addresses taken, memory operands, and function pointers stored in
//! data — so that [`super::dispatch`] can ask how each function can be reached. x86-64 code
//! is decoded here with iced-x86, aarch64 code in [`aarch64`].

pub mod aarch64;
pub mod plt;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind};
use object::{
    Object, ObjectKind, ObjectSection, ObjectSymbol, ObjectSymbolTable, RelocationTarget,
    SectionKind, SymbolKind,
};

use super::eh_frame::EhFrame;
use super::features::{Arch, FeatureList, is_architectural, runs_on_baseline};

/// Name given to code that no function symbol covers.
pub const NO_SYMBOL: &str = "<no symbol>";

/// One decoded ELF file.
#[derive(Debug)]
pub struct Program<'data> {
    /// Sorted by address, non-overlapping; code no symbol covers is a `<no symbol>` function.
    pub functions: Vec<Function>,
    /// Non-code sections that can hold pointers, sorted by address.
    pub data_sections: Vec<DataSection>,
    /// Pointers stored in data, to code or to data: `(slot address, target address)`,
    /// sorted by slot.
    pub data_pointers: Vec<(u64, u64)>,
    /// Data symbols (statics), `(address, size, demangled name)`, sorted by address.
    pub data_symbols: Vec<(u64, u64, String)>,
    /// Where execution starts: the ELF entry point and the exported functions.
    pub entry_points: Vec<u64>,
    pub arch: Arch,
    /// The CIEs of `.eh_frame` (none when the file has no such section).
    pub eh_frame: EhFrame,
    /// aarch64 mapping symbols, sorted (see [`Image::mapping`]).
    mapping: Vec<(u64, bool)>,
    code: Vec<CodeSection<'data>>,
}

#[derive(Debug)]
struct CodeSection<'data> {
    address: u64,
    bytes: &'data [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSection {
    pub name: String,
    pub address: u64,
    pub end: u64,
    /// `.init_array` and friends: the loader calls every pointer in them.
    pub called_by_loader: bool,
}

/// One function symbol's code (or a stretch of code without a symbol).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Function {
    /// Demangled, without the hash suffix.
    pub name: String,
    pub address: u64,
    pub end: u64,
    pub instructions: u64,
    /// Instructions that need a feature beyond the architectural baseline, with those
    /// features (iced's list for the instruction, or the aarch64 decoder's).
    pub extended: Vec<(u64, FeatureList)>,
    /// Words the decoder cannot read (aarch64: data in code, or encodings newer than the
    /// decoder): not audited, and reported as such.
    pub undecodable: u64,
    /// References from this function's code to other code or to data.
    pub references: Vec<Reference>,
    /// Executes `cpuid` or `xgetbv`: asks the CPU (or OS) what it supports.
    pub queries_cpu: bool,
    /// aarch64: has a `ret` or an indirect jump, so it may return other than by a tail call
    /// (a function without, whose tail calls all go to such functions, never returns).
    pub returns_directly: bool,
}

impl Function {
    pub fn contains(&self, address: u64) -> bool {
        (self.address..self.end).contains(&address)
    }
}

/// A reference from the instruction at `site` to `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    pub site: u64,
    pub target: u64,
    pub kind: ReferenceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceKind {
    Call,
    /// A jump leaving the function (a tail call), conditional or not.
    Jump,
    /// An address materialized (`lea`, or an immediate in a non-PIE file).
    Address,
    /// A memory operand reads or writes `target`.
    Memory,
}

/// The parts of an ELF file the audit reads; [`Program::from_image`] decodes them. Tests
/// build one directly from assembled code.
#[derive(Debug, Default)]
pub struct Image<'data> {
    /// `(address, bytes)` of each code section.
    pub code: Vec<(u64, &'data [u8])>,
    /// `(address, size, raw name)` of each function symbol.
    pub function_symbols: Vec<(u64, u64, String)>,
    pub data_sections: Vec<DataSection>,
    /// `(address, bytes)` of data sections with contents, scanned for raw pointers.
    pub data_contents: Vec<(u64, &'data [u8])>,
    /// `(address, size, raw name)` of each data symbol.
    pub data_symbols: Vec<(u64, u64, String)>,
    /// aarch64 mapping symbols: `(address, true)` where data in code starts (`$d`),
    /// `(address, false)` where instructions start again (`$x`).
    pub mapping: Vec<(u64, bool)>,
    /// `(slot, target)` of every dynamic relocation that resolves to an address.
    pub relocations: Vec<(u64, u64)>,
    /// Slot → name of every dynamic relocation to an imported (undefined) symbol: the GOT
    /// slots PLT stubs jump through.
    pub imports: BTreeMap<u64, String>,
    pub entry_points: Vec<u64>,
    /// PIE or shared library: absolute addresses only appear through relocations.
    pub position_independent: bool,
    pub arch: Arch,
    pub eh_frame: EhFrame,
}

impl<'data> Image<'data> {
    /// Reads an x86-64 or aarch64 ELF file.
    pub fn parse(data: &'data [u8]) -> Result<Image<'data>> {
        let file = object::File::parse(data).context("not an ELF/object file object can read")?;
        let arch = match file.architecture() {
            object::Architecture::X86_64 => Arch::X86_64,
            object::Architecture::Aarch64 => Arch::Aarch64,
            other => bail!("instruction audit supports x86_64 and aarch64, this file is {other:?}"),
        };
        let mut image = Image {
            position_independent: file.kind() != ObjectKind::Executable,
            arch,
            ..Image::default()
        };
        for section in file.sections() {
            let name = section.name().unwrap_or("").to_owned();
            match section.kind() {
                SectionKind::Text => {
                    image.code.push((
                        section.address(),
                        section.data().context("reading a code section")?,
                    ));
                    let stubs = plt::stubs(arch, &name, section.address(), section.size());
                    image.function_symbols.extend(stubs);
                }
                SectionKind::Data
                | SectionKind::ReadOnlyData
                | SectionKind::ReadOnlyDataWithRel
                | SectionKind::UninitializedData
                | SectionKind::Tls
                | SectionKind::Other
                | SectionKind::Unknown
                    if section.address() != 0 && section.size() > 0 =>
                {
                    if let Ok(bytes) = section.data()
                        && !bytes.is_empty()
                    {
                        image.data_contents.push((section.address(), bytes));
                    }
                    image.data_sections.push(DataSection {
                        called_by_loader: matches!(
                            name.as_str(),
                            ".init_array" | ".fini_array" | ".preinit_array" | ".ctors" | ".dtors"
                        ),
                        address: section.address(),
                        end: section.address() + section.size(),
                        name,
                    })
                }
                _ => {}
            }
        }
        if let Some(section) = file.section_by_name(".eh_frame") {
            let bytes = section.data().context("reading .eh_frame")?;
            image.eh_frame = super::eh_frame::parse(bytes, file.is_little_endian())
                .context("walking the CIEs of .eh_frame")?;
        }
        for symbol in file.symbols() {
            if arch == Arch::Aarch64
                && let Ok(name) = symbol.name()
                && let Some(kind) = mapping_symbol(name)
            {
                image.mapping.push((symbol.address(), kind));
            }
            if symbol.size() == 0 || symbol.section_index().is_none() {
                continue;
            }
            let Ok(name) = symbol.name() else { continue };
            let entry = (symbol.address(), symbol.size(), name.to_owned());
            match symbol.kind() {
                SymbolKind::Text => image.function_symbols.push(entry),
                SymbolKind::Data | SymbolKind::Tls => image.data_symbols.push(entry),
                _ => {}
            }
        }
        if let Some(relocations) = file.dynamic_relocations()
            && let Some(dynamic_symbols) = file.dynamic_symbol_table()
        {
            for (slot, relocation) in relocations {
                let target = match relocation.target() {
                    RelocationTarget::Absolute => relocation.addend() as u64,
                    // Dynamic relocations index the dynamic symbol table, not `.symtab`.
                    RelocationTarget::Symbol(index) => match dynamic_symbols.symbol_by_index(index)
                    {
                        Ok(symbol) if symbol.address() != 0 => {
                            symbol.address().wrapping_add(relocation.addend() as u64)
                        }
                        Ok(symbol) if symbol.is_undefined() => {
                            if let Ok(name) = symbol.name() {
                                image.imports.insert(slot, name.to_owned());
                            }
                            continue;
                        }
                        _ => continue,
                    },
                    _ => continue,
                };
                image.relocations.push((slot, target));
            }
        }
        image.entry_points.push(file.entry());
        if let Ok(exports) = file.exports() {
            image
                .entry_points
                .extend(exports.filter_map(|export| match export.ok()?.target() {
                    object::read::ExportTarget::Address { address } => Some(address),
                    _ => None,
                }));
        }
        image.entry_points.retain(|&address| address != 0);
        Ok(image)
    }
}

impl<'data> Program<'data> {
    /// Decodes every function of an ELF file. Needs the symbol table (audit before
    /// stripping).
    pub fn load(data: &'data [u8]) -> Result<Program<'data>> {
        Program::from_image(Image::parse(data)?)
    }

    pub fn from_image(image: Image<'data>) -> Result<Program<'data>> {
        let mut symbols: BTreeMap<u64, (String, u64)> = BTreeMap::new();
        for (address, size, raw) in &image.function_symbols {
            let name = demangle(raw);
            // Aliases share code: keep the shortest name.
            symbols
                .entry(*address)
                .and_modify(|existing| {
                    if name.len() < existing.0.len() {
                        existing.0 = name.clone();
                    }
                    existing.1 = existing.1.max(*size);
                })
                .or_insert((name, *size));
        }
        if symbols.is_empty() {
            bail!("the file has no function symbols; audit the unstripped copy");
        }
        let mut code: Vec<CodeSection> = image
            .code
            .iter()
            .map(|&(address, bytes)| CodeSection { address, bytes })
            .collect();
        code.sort_by_key(|c| c.address);
        let pic = image.position_independent;
        let arch = image.arch;
        let mut mapping = image.mapping.clone();
        mapping.sort_unstable();

        let mut functions = Vec::new();
        for section in &code {
            let end = section.address + section.bytes.len() as u64;
            let mut covered_until = section.address;
            for (&address, (name, size)) in symbols.range(section.address..end) {
                let function_end = (address + size).min(end);
                if function_end <= covered_until {
                    continue; // inside the previous symbol
                }
                if address > covered_until {
                    functions.push(section.decode(
                        arch,
                        &mapping,
                        NO_SYMBOL,
                        covered_until,
                        address,
                        pic,
                    ));
                }
                let from = address.max(covered_until);
                functions.push(section.decode(arch, &mapping, name, from, function_end, pic));
                covered_until = function_end;
            }
            if covered_until < end {
                functions.push(section.decode(arch, &mapping, NO_SYMBOL, covered_until, end, pic));
            }
        }

        plt::name_stubs(&mut functions, &image.imports);

        let mut data_sections = image.data_sections;
        data_sections.sort_by_key(|d| d.address);
        let mut data_symbols: Vec<(u64, u64, String)> = image
            .data_symbols
            .iter()
            .map(|(address, size, raw)| (*address, *size, demangle(raw)))
            .collect();
        data_symbols.sort();
        let mut program = Program {
            functions,
            data_sections,
            data_pointers: Vec::new(),
            data_symbols,
            entry_points: image.entry_points,
            arch,
            eh_frame: image.eh_frame,
            mapping,
            code,
        };
        let raw_contents: &[(u64, &[u8])] = if pic { &[] } else { &image.data_contents };
        program.data_pointers = program.pointers_in_data(&image.relocations, raw_contents);
        Ok(program)
    }

    /// Index of the function whose code contains `address`.
    pub fn function_at(&self, address: u64) -> Option<usize> {
        let index = self
            .functions
            .partition_point(|f| f.address <= address)
            .checked_sub(1)?;
        self.functions[index].contains(address).then_some(index)
    }

    /// Whether `address` lies in a data section.
    pub fn data_section_at(&self, address: u64) -> Option<&DataSection> {
        let index = self
            .data_sections
            .partition_point(|s| s.address <= address)
            .checked_sub(1)?;
        let section = &self.data_sections[index];
        (address < section.end).then_some(section)
    }

    /// The data symbol covering `address`, as `(start, end)`.
    pub fn data_symbol_at(&self, address: u64) -> Option<(u64, u64)> {
        let index = self
            .data_symbols
            .partition_point(|s| s.0 <= address)
            .checked_sub(1)?;
        let (start, size, _) = &self.data_symbols[index];
        (address < start + size).then_some((*start, start + size))
    }

    /// Every x86-64 instruction of `function`, decoded again (only the analyses that need
    /// control flow ask for them, so pass one keeps no instruction lists).
    pub fn instructions(&self, function: &Function) -> Vec<Instruction> {
        if self.arch != Arch::X86_64 {
            return Vec::new();
        }
        let bytes = self.bytes(function);
        let mut decoder = Decoder::with_ip(64, bytes, function.address, DecoderOptions::NONE);
        decoder.iter().filter(|i| !i.is_invalid()).collect()
    }

    /// Every aarch64 instruction of `function`, decoded again (see [`Program::instructions`]).
    pub fn aarch64_instructions(&self, function: &Function) -> Vec<aarch64::Insn> {
        if self.arch != Arch::Aarch64 {
            return Vec::new();
        }
        aarch64::decode_all(self.bytes(function), function.address, &self.mapping)
    }

    fn bytes(&self, function: &Function) -> &'data [u8] {
        self.code
            .iter()
            .find(|s| (s.address..s.address + s.bytes.len() as u64).contains(&function.address))
            .map_or(&[][..], |section| {
                section.slice(function.address, function.end)
            })
    }

    /// Pointers stored in data: dynamic relocations (PIE and shared libraries), and in
    /// `contents` (non-PIE executables, which have no relocations) aligned 8-byte values that
    /// are a function's first byte or a data address.
    fn pointers_in_data(
        &self,
        relocations: &[(u64, u64)],
        contents: &[(u64, &[u8])],
    ) -> Vec<(u64, u64)> {
        let is_address = |address: u64| {
            self.function_at(address).is_some() || self.data_section_at(address).is_some()
        };
        let mut pointers: Vec<(u64, u64)> = relocations
            .iter()
            .copied()
            .filter(|&(_, target)| is_address(target))
            .collect();
        for &(base, bytes) in contents {
            for (offset, chunk) in bytes.chunks_exact(8).enumerate() {
                let value = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                let slot = base + 8 * offset as u64;
                let function_start = self
                    .function_at(value)
                    .is_some_and(|index| self.functions[index].address == value);
                if function_start || self.data_section_at(value).is_some() {
                    pointers.push((slot, value));
                }
            }
        }
        pointers.sort_unstable();
        pointers.dedup();
        pointers
    }
}

impl<'data> CodeSection<'data> {
    fn slice(&self, from: u64, to: u64) -> &'data [u8] {
        &self.bytes[(from - self.address) as usize..(to - self.address) as usize]
    }

    /// Pass one over `[from, to)`: feature counts, references, CPU queries.
    fn decode(
        &self,
        arch: Arch,
        mapping: &[(u64, bool)],
        name: &str,
        from: u64,
        to: u64,
        position_independent: bool,
    ) -> Function {
        let mut function = Function {
            name: name.to_owned(),
            address: from,
            end: to,
            ..Function::default()
        };
        if arch == Arch::Aarch64 {
            aarch64::record_all(&mut function, self.slice(from, to), mapping);
            return function;
        }
        let mut decoder = Decoder::with_ip(64, self.slice(from, to), from, DecoderOptions::NONE);
        let mut instruction = Instruction::default();
        while decoder.can_decode() {
            decoder.decode_out(&mut instruction);
            if instruction.is_invalid() {
                // Data or padding inside .text (alignment) decodes as garbage; it executes
                // nowhere, so it does not count.
                continue;
            }
            function.instructions += 1;
            function.record(&instruction, position_independent);
        }
        function
    }
}

impl Function {
    fn record(&mut self, instruction: &Instruction, position_independent: bool) {
        let ip = instruction.ip();
        if matches!(instruction.mnemonic(), Mnemonic::Cpuid | Mnemonic::Xgetbv) {
            self.queries_cpu = true;
        }
        let features = instruction.cpuid_features();
        if !runs_on_baseline(instruction.mnemonic())
            && features.iter().any(|&f| !is_architectural(f))
        {
            self.extended.push((ip, FeatureList::X86(features)));
        }
        match instruction.flow_control() {
            FlowControl::Call
            | FlowControl::UnconditionalBranch
            | FlowControl::ConditionalBranch
                if is_near_branch(instruction) =>
            {
                let target = instruction.near_branch_target();
                let kind = if instruction.flow_control() == FlowControl::Call {
                    ReferenceKind::Call
                } else {
                    ReferenceKind::Jump
                };
                if kind == ReferenceKind::Call || !self.contains(target) {
                    self.references.push(Reference {
                        site: ip,
                        target,
                        kind,
                    });
                }
            }
            _ => {}
        }
        if instruction.is_ip_rel_memory_operand() {
            let kind = if instruction.mnemonic() == Mnemonic::Lea {
                ReferenceKind::Address
            } else {
                ReferenceKind::Memory
            };
            let target = instruction.ip_rel_memory_address();
            self.references.push(Reference {
                site: ip,
                target,
                kind,
            });
        } else if !position_independent {
            // Absolute addresses: `[disp32]` operands and address-sized immediates.
            for operand in 0..instruction.op_count() {
                let target = match instruction.op_kind(operand) {
                    OpKind::Memory
                        if instruction.memory_base() == iced_x86::Register::None
                            && instruction.memory_index() == iced_x86::Register::None =>
                    {
                        (instruction.memory_displacement64(), ReferenceKind::Memory)
                    }
                    OpKind::Immediate32to64 | OpKind::Immediate64 | OpKind::Immediate32 => {
                        (instruction.immediate(operand), ReferenceKind::Address)
                    }
                    _ => continue,
                };
                if target.0 >= 0x1000 {
                    self.references.push(Reference {
                        site: ip,
                        target: target.0,
                        kind: target.1,
                    });
                }
            }
        }
    }
}

fn is_near_branch(instruction: &Instruction) -> bool {
    matches!(
        instruction.op0_kind(),
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
    )
}

/// An aarch64 mapping symbol (`$d`, `$x`, `$d.12`): `Some(true)` where data starts.
fn mapping_symbol(name: &str) -> Option<bool> {
    let kind = name.strip_prefix('$')?;
    let (kind, suffix) = kind.split_once('.').unwrap_or((kind, ""));
    if !suffix.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    match kind {
        "d" => Some(true),
        "x" => Some(false),
        _ => None,
    }
}

/// `memchr::arch::x86_64::avx2::memchr::One::find_raw` (no hash) for Rust symbols, the raw
/// name otherwise.
pub fn demangle(raw: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(raw))
}

mod owners;
pub use owners::{crate_of, owning_crates};

#[cfg(test)]
mod tests;
