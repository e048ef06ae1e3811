//! The test harness: functions assembled with iced-x86's code assembler, laid out like a
//! non-PIE executable with one data section, and audited.

use std::collections::BTreeMap;

use iced_x86::BlockEncoderOptions;
use iced_x86::code_asm::*;

use super::super::program::{DataSection, Image};
use super::super::*;

pub const CODE: u64 = 0x1000;
pub const DATA: u64 = 0x20_0000;
/// std_detect's cache, as `is_x86_feature_detected!` reads it.
pub const CACHE: u64 = DATA;
/// A crate's own `cpuid` result cache (cpufeatures-style).
pub const OWN_CACHE: u64 = DATA + 0x100;
/// A static function pointer (memchr-style).
pub const FN_SLOT: u64 = DATA + 0x180;
/// A vtable: drop, size, align, then one method at +24.
pub const VTABLE: u64 = DATA + 0x200;
/// Two tables of kernel pointers (mcp-rust-core's `KERNELS` statics), four slots each.
pub const FAST_TABLE: u64 = DATA + 0x300;
pub const SCALAR_TABLE: u64 = DATA + 0x340;

/// Assembles functions in order; names are labels usable before they are defined.
pub struct Synth {
    pub a: CodeAssembler,
    labels: BTreeMap<&'static str, CodeLabel>,
    order: Vec<&'static str>,
}

impl Synth {
    pub fn new() -> Synth {
        Synth {
            a: CodeAssembler::new(64).unwrap(),
            labels: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    pub fn label(&mut self, name: &'static str) -> CodeLabel {
        let a = &mut self.a;
        *self.labels.entry(name).or_insert_with(|| a.create_label())
    }

    /// Starts function `name`; the next instruction is its first.
    pub fn function(&mut self, name: &'static str) -> &mut CodeAssembler {
        let mut label = self.label(name);
        self.a.set_label(&mut label).unwrap();
        self.labels.insert(name, label);
        self.order.push(name);
        &mut self.a
    }

    pub fn build(mut self) -> Built {
        let result = self
            .a
            .assemble_options(CODE, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
            .unwrap();
        let code = result.inner.code_buffer.clone();
        let end = CODE + code.len() as u64;
        let starts: Vec<(&str, u64)> = self
            .order
            .iter()
            .map(|name| (*name, result.label_ip(&self.labels[name]).unwrap()))
            .collect();
        let symbols = starts
            .iter()
            .enumerate()
            .map(|(n, (name, start))| {
                let next = starts.get(n + 1).map_or(end, |(_, next)| *next);
                (*start, next - start, name.to_string())
            })
            .collect();
        Built {
            code,
            symbols,
            addresses: starts.into_iter().map(|(n, a)| (n.to_owned(), a)).collect(),
        }
    }
}

pub struct Built {
    pub code: Vec<u8>,
    pub symbols: Vec<(u64, u64, String)>,
    pub addresses: BTreeMap<String, u64>,
}

impl Built {
    /// Audits the program with entry `main`; `pointers` are `(slot, function)` in data.
    pub fn audit(&self, level: &Level, pointers: &[(u64, &str)]) -> Audit {
        let image = Image {
            code: vec![(CODE, &self.code)],
            function_symbols: self.symbols.clone(),
            data_sections: vec![DataSection {
                name: ".data".into(),
                address: DATA,
                end: DATA + 0x1000,
                called_by_loader: false,
            }],
            data_contents: Vec::new(),
            data_symbols: vec![
                (CACHE, 16, "std_detect::detect::cache::CACHE".into()),
                (OWN_CACHE, 1, "own::STORAGE".into()),
                (FN_SLOT, 8, "own::FN".into()),
                (VTABLE, 32, "own::VTABLE".into()),
                (FAST_TABLE, 32, "own::avx512::KERNELS".into()),
                (SCALAR_TABLE, 32, "own::scalar::KERNELS".into()),
            ],
            relocations: pointers
                .iter()
                .map(|(slot, name)| (*slot, self.addresses[*name]))
                .collect(),
            entry_points: vec![self.addresses["main"]],
            position_independent: false,
            arch: Default::default(),
            eh_frame: Default::default(),
            mapping: Vec::new(),
            imports: Default::default(),
        };
        let program = Program::from_image(image).unwrap();
        let dispatch = dispatch::analyze(&program);
        super::audit(&program, &dispatch, level, &["own".to_owned()], EXEMPTIONS)
    }
}

/// A reviewed type-state dispatcher for the exemption tests.
pub const EXEMPTIONS: &[CrateDispatch] = &[CrateDispatch {
    crate_name: "typestate",
    mechanism: "new() checks the CPU and stores the kind; update() branches on it",
}];

pub fn generic() -> Level {
    Level::new("generic", ["sse", "sse2"].map(String::from).into())
}

pub fn level_of(target_cpu: &str) -> Level {
    Level::new(
        target_cpu,
        crate::cpu::target_features("x86_64-unknown-linux-gnu", target_cpu).unwrap(),
    )
}

pub fn finding<'a>(audit: &'a Audit, function: &str) -> &'a BeyondLevel {
    audit
        .beyond_level
        .iter()
        .find(|b| b.function == function)
        .unwrap_or_else(|| panic!("no beyond-level finding for {function}: {audit:#?}"))
}

pub fn violations(audit: &Audit) -> Vec<&str> {
    audit.violations().map(|v| v.function.as_str()).collect()
}

/// `kernel_avx512`: one AVX-512F instruction; `kernel_avx2`: one AVX2 instruction (the
/// test names the one it uses: anything nothing references counts as reachable);
/// `scalar`: baseline only; std_detect's slow path fills the cache.
pub fn kernels(s: &mut Synth, fast: &'static str) {
    match fast {
        "own::kernel_avx512" => s.function(fast).vpaddd(zmm0, zmm1, zmm2).unwrap(),
        "own::kernel_avx2" => s.function(fast).vpaddd(ymm0, ymm1, ymm2).unwrap(),
        other => panic!("no kernel {other}"),
    }
    s.a.ret().unwrap();
    s.function("own::scalar").add(rax, rbx).unwrap();
    s.a.ret().unwrap();
    let a = s.function("std_detect::detect::cache::detect_and_initialize");
    a.mov(eax, 7).unwrap();
    a.cpuid().unwrap();
    a.mov(rax, rbx).unwrap();
    a.mov(qword_ptr(CACHE), rax).unwrap();
    a.ret().unwrap();
}

/// Adds [`kernels`] with `fast` and audits the program against the generic level.
pub fn audit_generic(mut s: Synth, fast: &'static str) -> Audit {
    kernels(&mut s, fast);
    s.build().audit(&generic(), &[])
}

/// `is_x86_feature_detected!` as std inlines it once the cache is filled: load the cache,
/// test the feature's bit, jump to `skip` when it is clear.
pub fn skip_unless_detected(a: &mut CodeAssembler, skip: CodeLabel) {
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.bt(rax, 5).unwrap();
    a.jae(skip).unwrap();
}
