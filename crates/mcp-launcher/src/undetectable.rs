// Shared by build.rs (through `include!`) and the library, so it must stay plain Rust
// without `use` items or doc comments on the module.

/// Target features that `rustc --print cfg` can report for a variant but that
/// `is_x86_feature_detected!` cannot check, each with the reason skipping it is safe.
///
/// build.rs probes every feature of every variant against `is_x86_feature_detected!` and
/// refuses to build when it finds an unsupported feature that is not listed here: a new
/// CPU feature must get real detection (for example through `cpuid`), never be ignored.
pub const UNDETECTABLE_FEATURES: &[(&str, &str)] = &[(
    "crt-static",
    "links the C runtime statically: a property of the binary, not an instruction set the CPU must have",
)];
