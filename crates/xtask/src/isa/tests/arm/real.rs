//! The audit on the real aarch64 builds of a dist directory.

use super::*;

/// The real aarch64 builds: `MCP_FOUNDRY_AUDIT_DIST` or the workspace's `dist/` (after
/// `cargo xtask dist`). Skipped loudly when there are none; a dist directory named by
/// `MCP_FOUNDRY_AUDIT_DIST` must have them, the workspace's may be a partial dist (e.g.
/// `cargo xtask dist --variant x86-64-v3`).
#[test]
fn the_real_aarch64_builds_pass_or_name_their_leaks() {
    let named = std::env::var_os("MCP_FOUNDRY_AUDIT_DIST").map(std::path::PathBuf::from);
    let explicit = named.is_some();
    let dist = named
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist"));
    let Ok(manifest) = crate::dist::Manifest::load(&dist) else {
        eprintln!(
            "!!! SKIPPED: no dist/manifest.json at {} (run `cargo xtask dist`, or set \
             MCP_FOUNDRY_AUDIT_DIST) !!!",
            dist.display()
        );
        return;
    };
    let level = generic();
    let mut audited = BTreeMap::new();
    for artifact in manifest
        .artifacts
        .iter()
        .filter(|a| a.target.starts_with("aarch64-") && a.kind.is_elf())
    {
        let Some(unstripped) = &artifact.unstripped_path else {
            continue;
        };
        let data = std::fs::read(dist.join(unstripped)).unwrap();
        let audit = audit_elf(&data, &level, &["bash_god".to_owned()]).unwrap();
        let leaks: Vec<String> = audit
            .violations()
            .map(|v| format!("{} ({}): {:?}", v.function, v.crate_name, v.undispatched))
            .collect();
        assert!(leaks.is_empty(), "{}: {leaks:#?}", artifact.path);
        assert!(audit.instructions > 10_000, "{}", artifact.path);
        if artifact.path.ends_with(".so") {
            // The module imports getauxval from the C library: the audit must see its PLT
            // stub (cpufeatures' sha2 check tail-calls it).
            let program = Program::load(&data).unwrap();
            assert!(
                program.functions.iter().any(|f| f.name == "getauxval@plt"),
                "{}: no getauxval@plt",
                artifact.path
            );
        }
        // The unwinder's MTE re-tagging is accepted by the unwind tables alone, not by a
        // review of the crate (zig's libunwind in the Python module has no SME detection).
        for step in audit
            .beyond_level
            .iter()
            .filter(|b| b.function.contains("stepWithDwarf") && b.features.contains_key("MTE"))
        {
            let proven = match &step.evidence {
                Evidence::NoGatingFrames { .. } => true,
                Evidence::CrateExemption { mechanism, .. } => {
                    mechanism.contains("MTE only for unwind frames")
                }
                _ => false,
            };
            assert!(proven, "{}: {step:#?}", artifact.path);
        }
        audited.insert(artifact.path.clone(), audit.beyond_level.len());
    }
    if audited.is_empty() {
        assert!(
            !explicit,
            "the manifest at {} lists no aarch64 build",
            dist.display()
        );
        eprintln!(
            "!!! SKIPPED: the manifest at {} lists no aarch64 build (a partial dist; run \
             `cargo xtask dist`, or set MCP_FOUNDRY_AUDIT_DIST) !!!",
            dist.display()
        );
        return;
    }
    eprintln!("audited: {audited:?}");
}
