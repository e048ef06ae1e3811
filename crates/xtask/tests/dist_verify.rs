//! dist + verify end to end for the Python module in every variant: real release builds
//! (into the same per-variant target directories `cargo xtask dist` uses, so a later
//! `cargo xtask dist` reuses them), a real instruction audit, and the proof that a znver4
//! build passed off as generic fails the audit.

use xtask::dist::{self, ArtifactKind, DistRequest, Manifest, SourceInfo};
use xtask::metadata::{Role, Workspace};
use xtask::verify;
use xtask::wheel::elf::{Libc, Linkage};

#[test]
fn dist_and_verify_the_python_module_in_every_variant() {
    let workspace = Workspace::load().unwrap();
    let module = workspace
        .crates
        .iter()
        .find(|c| c.role == Role::PythonModule)
        .expect("the workspace has a python-module crate");
    let out = tempfile::tempdir().unwrap();
    let request = DistRequest {
        workspace: &workspace,
        variants: workspace.variants.iter().collect(),
        crates: vec![module],
        architectures: vec![std::env::consts::ARCH.to_owned()],
        out: out.path().to_owned(),
        target_base: workspace.target_dir.join("dist"),
        source: SourceInfo::collect(&workspace.root).unwrap(),
    };
    let manifest = dist::build(&request).unwrap();
    // Each variant's build stays in its own target directory, so a later dist (ci's dist
    // step after this test) reuses every one, not only the variant built last.
    let module_file = format!("lib{}.so", module.name.replace('-', "_"));
    let libraries: Vec<_> = manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::SharedLibrary)
        .collect();
    assert_eq!(libraries.len(), workspace.variants.len());
    for library in libraries {
        let kept = request
            .target_base
            .join(&library.variant)
            .join(&library.target)
            .join("audit")
            .join(&module_file);
        assert!(kept.is_file(), "{} was not kept", kept.display());
    }

    // Layout and manifest.
    assert_eq!(Manifest::load(out.path()).unwrap(), manifest);
    let module_name = module.python_module.as_deref().unwrap();
    for variant in &manifest.variants {
        let python = out
            .path()
            .join(&variant.name)
            .join("python")
            .join(module_name);
        assert!(python.join("__init__.py").is_file());
        assert!(python.join(format!("{module_name}.abi3.so")).is_file());
        assert!(
            out.path()
                .join(&variant.name)
                .join(format!("lib/lib{module_name}.so"))
                .is_file()
        );
    }
    // Linked against glibc's floor (zig's glibc 2.17), not this machine's glibc: the wheel
    // installs on every manylinux2014 system.
    let floor: u32 = xtask::cross::GLIBC_FLOOR
        .strip_prefix("2.")
        .unwrap()
        .parse()
        .unwrap();
    for artifact in &manifest.artifacts {
        if artifact.kind == ArtifactKind::PythonExtension {
            let data = std::fs::read(out.path().join(&artifact.path)).unwrap();
            let libc = Linkage::read(&data).unwrap().libc().unwrap();
            assert!(
                matches!(libc, Libc::Glibc { minor } if minor <= floor),
                "{} needs {libc:?}, beyond glibc {}",
                artifact.path,
                xtask::cross::GLIBC_FLOOR
            );
        }
    }
    assert!(
        !out.path().join(".staging").exists(),
        "staging directory left behind"
    );
    for artifact in &manifest.artifacts {
        let (sha256, size) = dist::hash_file(&out.path().join(&artifact.path)).unwrap();
        assert_eq!(
            (sha256.as_str(), size),
            (artifact.sha256.as_str(), artifact.size)
        );
        assert_eq!(artifact.git_commit, request.source.git_commit);
    }

    // The real artifacts pass every rule.
    let report = verify::audit(&workspace, out.path(), &manifest).unwrap();
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    // Their SBOMs, provenance and embedded dependency lists agree (issue 14).
    let records = xtask::provenance::check::dist_records(out.path(), &manifest);
    assert!(records.is_empty(), "{records:#?}");
    let library = |variant: &str| {
        report
            .artifacts
            .iter()
            .find(|a| a.variant == variant && a.kind == ArtifactKind::SharedLibrary)
            .unwrap()
    };
    assert_eq!(
        library("generic").exports.as_deref(),
        Some(&[format!("PyInit_{module_name}")][..])
    );
    if manifest.variants.iter().any(|v| v.name == "znver4") {
        assert!(
            library("znver4")
                .audit
                .as_ref()
                .is_some_and(|audit| audit.own_top_class > 0),
            "znver4 kernels have no AVX-512"
        );

        // A znver4 build labelled generic (what a leaked `-C target-cpu=native` on an
        // AVX-512 machine produces) must fail the audit. The audit's level comes from the
        // rustflags recorded for the artifact, so the label is generic's: no flags.
        let mut mislabelled = manifest.clone();
        for artifact in &mut mislabelled.artifacts {
            if artifact.variant == "znver4" {
                artifact.target_cpu = "generic".into();
                artifact.rustflags = Vec::new();
            }
        }
        let report = verify::audit(&workspace, out.path(), &mislabelled).unwrap();
        assert!(
            report
                .failures
                .iter()
                .any(|f| f.artifact.starts_with("znver4/lib/")
                    && f.message.contains("AVX512F")
                    && f.message.contains("beyond target-cpu=generic")),
            "{:#?}",
            report.failures
        );
    }

    // A second, narrower run (cargo has nothing to rebuild) leaves nothing of the first:
    // not what was made from its artifacts (server.json, images, reports), not the variants
    // it no longer builds. Its manifest says what it left out.
    for stale in [
        "mcp-registry/devops/server.json",
        "images/devops/index.json",
        "report.md",
    ] {
        let path = out.path().join(stale);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "from the first run").unwrap();
    }
    let baseline = workspace
        .variants
        .iter()
        .find(|v| v.target_cpu == dist::BASELINE_CPU)
        .unwrap();
    let narrower = DistRequest {
        variants: vec![baseline],
        ..request.clone()
    };
    let second = dist::build(&narrower).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [baseline.name.as_str(), "manifest.json", "wheels"]);
    let selection = second.selection.unwrap();
    assert!(!selection.is_complete());
    for variant in workspace
        .variants
        .iter()
        .filter(|v| v.name != baseline.name)
    {
        let entry = format!("variant {}", variant.name);
        assert!(selection.left_out.contains(&entry), "{selection:?}");
    }
}
