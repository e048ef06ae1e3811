//! Which crate each function of a program belongs to: from its demangled name, and for
//! code without one (assembly's local labels) from the crates that reference it.

use std::collections::BTreeSet;

use super::{Program, ReferenceKind};

/// Non-Rust symbols whose prefix names their crate, `(prefix, crate)`: ring's C and
/// assembly (`ring_core_<version>__`); LLVM's libunwind (C++ names rustc-demangle leaves
/// alone, and its C entry points); compiler-rt's aarch64 outline atomics, linked through
/// compiler_builtins.
const SYMBOL_PREFIXES: &[(&str, &str)] = &[
    ("ring_core_", "ring"),
    ("_ZN9libunwind", "libunwind"),
    ("__libunwind_", "libunwind"),
    ("__unw_", "libunwind"),
    ("unw_", "libunwind"),
    ("_Unwind_", "libunwind"),
    ("__aarch64_", "compiler_builtins"),
];

/// The crate a demangled Rust function name belongs to: the first path segment, looking
/// inside `<Type as Trait>` at the type; a [`SYMBOL_PREFIXES`] prefix names the crate of
/// non-Rust code; other non-Rust names (libc, assembly) are `<C>`.
pub fn crate_of(function: &str) -> &str {
    let name = function.trim_start_matches(['<', '&', '*', ' ']);
    let name = name
        .strip_prefix("mut ")
        .or_else(|| name.strip_prefix("dyn "))
        .or_else(|| name.strip_prefix("const "))
        .unwrap_or(name)
        .trim_start_matches(['<', '&', '*', ' ', '(', '[']);
    if let Some((_, crate_name)) = SYMBOL_PREFIXES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
    {
        return crate_name;
    }
    match name.find("::") {
        Some(end) if name[..end].chars().all(|c| c.is_alphanumeric() || c == '_') && end > 0 => {
            &name[..end]
        }
        _ => "<C>",
    }
}

/// The crate of each function of `program` (indexed like `functions`): [`crate_of`] its name,
/// and for unattributed code (`<C>`: e.g. an assembly file's local labels such as
/// `_aesni_encrypt4`), the one crate whose functions reference it, if there is exactly one
/// besides other unattributed code (repeated, so a chain of local labels inherits its entry
/// point's crate); unreferenced code, the crate of its neighbours on both sides.
pub fn owning_crates(program: &Program) -> Vec<String> {
    let mut owners: Vec<String> = program
        .functions
        .iter()
        .map(|f| crate_of(&f.name).to_owned())
        .collect();
    let mut referrers: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); program.functions.len()];
    for (from, function) in program.functions.iter().enumerate() {
        for reference in &function.references {
            if reference.kind == ReferenceKind::Memory {
                continue;
            }
            if let Some(to) = program.function_at(reference.target)
                && to != from
            {
                referrers[to].insert(from);
            }
        }
    }
    loop {
        let mut changed = false;
        for index in 0..owners.len() {
            if owners[index] != "<C>" || referrers[index].is_empty() {
                continue;
            }
            // Unattributed referrers (other local labels of the same file) do not vote.
            let crates: BTreeSet<&str> = referrers[index]
                .iter()
                .map(|&r| owners[r].as_str())
                .filter(|&c| c != "<C>")
                .collect();
            if crates.len() == 1
                && let Some(&only) = crates.iter().next()
            {
                owners[index] = only.to_owned();
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Code nothing references (an assembly file's unused local routines) sits inside its
    // object's code: it belongs to a crate when the nearest attributed functions on both
    // sides do.
    for index in 0..owners.len() {
        if owners[index] != "<C>" || !referrers[index].is_empty() {
            continue;
        }
        let before = owners[..index].iter().rev().find(|c| *c != "<C>");
        let after = owners[index + 1..].iter().find(|c| *c != "<C>");
        if let (Some(before), Some(after)) = (before, after)
            && before == after
        {
            owners[index] = before.clone();
        }
    }
    owners
}
