//! One `cargo build` of a dist job: the command (profile, target, flags, environment), and
//! what cargo's JSON messages say it produced.

use std::collections::BTreeMap;
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Message, TargetKind};

use super::{Job, SourceInfo};
use crate::metadata::{CrateSpec, Role, VariantSpec};
use crate::process;

/// Where remapped source paths point, so no build machine path ends up in an artifact.
const REMAPPED_WORKSPACE: &str = "/mcp-foundry";

/// Paths of the Rust toolchain dist needs.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The toolchain's own `rust-objcopy` (strips the shipped copies).
    pub objcopy: PathBuf,
    pub cargo_home: PathBuf,
    pub rustup_home: PathBuf,
    /// Where the `rust-src` component puts the standard library's sources.
    pub rust_src: PathBuf,
    /// `commit-hash` of `rustc -vV`: the standard library's sources are `/rustc/<hash>/…`
    /// in the prebuilt std. None for a compiler built without one.
    pub rustc_commit_hash: Option<String>,
}

impl Toolchain {
    pub fn detect(root: &Path) -> Result<Toolchain> {
        let sysroot = process::rustc_sysroot(root)?;
        let verbose = process::output(Command::new("rustc").arg("-vV").current_dir(root))?;
        // sysroot and host are known here: no second round of rustc calls.
        let host = verbose
            .lines()
            .find_map(|line| line.strip_prefix("host: "))
            .context("`rustc -vV` printed no host line")?;
        let objcopy = dep_list::objcopy_of(&sysroot, host)?;
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cargo"));
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".rustup"));
        let rustc_commit_hash = verbose
            .lines()
            .find_map(|line| line.strip_prefix("commit-hash: "))
            .filter(|hash| *hash != "unknown")
            .map(str::to_owned);
        Ok(Toolchain {
            objcopy,
            cargo_home,
            rustup_home,
            rust_src: sysroot.join("lib/rustlib/src/rust"),
            rustc_commit_hash,
        })
    }

    /// The `--remap-path-prefix` pairs of a build of `root` into `target_dir`, least
    /// specific first.
    ///
    /// With `rust-src` installed, rustc turns the std's `/rustc/<hash>/library/…` paths back
    /// into local paths (then remapped with the rustup home) in the panic locations of std
    /// code it instantiates in our crates, and leaves them alone without it: the same commit
    /// built differently on machines with and without rust-src, and on one machine once
    /// rust-src was added (nix-offline adds it for the dev shell). rustc skips that
    /// translation when a remap's target is exactly `/rustc/<hash>` ("don't translate away
    /// /rustc/$hash if we're still remapping to it", rustc_metadata), so the rust-src
    /// directory mapped there keeps artifacts independent of the component, whatever the
    /// order of the other remaps.
    pub fn remaps(&self, root: &Path, target_dir: &Path) -> Vec<(PathBuf, String)> {
        let mut remaps = vec![
            (self.rustup_home.clone(), "/rustup".to_owned()),
            (self.cargo_home.clone(), "/cargo".to_owned()),
        ];
        if let Some(hash) = &self.rustc_commit_hash {
            remaps.push((self.rust_src.clone(), format!("/rustc/{hash}")));
        }
        remaps.push((root.to_owned(), REMAPPED_WORKSPACE.to_owned()));
        remaps.push((
            target_dir.to_owned(),
            format!("{REMAPPED_WORKSPACE}/target"),
        ));
        remaps
    }
}

/// The rustflags of one variant build: the variant's own flags plus path remapping.
/// Later `--remap-path-prefix` flags win in rustc, so the most specific prefix comes last.
pub fn rustflags(variant: &VariantSpec, remaps: &[(PathBuf, String)]) -> Vec<String> {
    let mut flags = variant.rustflags.clone();
    for (from, to) in remaps {
        flags.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    flags
}

/// Files cargo produced for one crate.
#[derive(Debug, Default, Clone)]
pub struct CargoOutputs {
    pub executables: Vec<(String, PathBuf)>,
    pub cdylib: Option<PathBuf>,
    /// When the crate's last final artifact was reported, from the start of the job.
    pub ready_after: Option<Duration>,
}

impl CargoOutputs {
    pub fn is_complete(&self, spec: &CrateSpec) -> bool {
        match spec.role {
            Role::PythonModule => self.cdylib.is_some(),
            _ => spec
                .bin_targets
                .iter()
                .all(|bin| self.executables.iter().any(|(name, _)| name == bin)),
        }
    }
}

/// `SOURCE_DATE_EPOCH` of every dist compilation: a constant (nixpkgs' stdenv default,
/// 1980-01-01, as in the Nix packages), not the commit time. The cc crate's build scripts
/// declare `rerun-if-env-changed=SOURCE_DATE_EPOCH`, so a per-commit value made each new
/// commit recompile every C dependency (ring, psm, the tree-sitter grammars) and all that
/// depends on them, in every variant: a warm `cargo xtask ci` dist took 55 min instead of
/// minutes. No Rust code reads it; C code only through `__DATE__`/`__TIME__`, which a
/// constant keeps reproducible. The commit time stays in the manifest (image mtimes).
pub const COMPILE_SOURCE_DATE_EPOCH: u64 = 315_532_800;

/// Everything one job's cargo invocation depends on besides the job itself.
pub struct Invocation<'a> {
    pub root: &'a Path,
    pub target_dir: &'a Path,
    pub toolchain: &'a Toolchain,
    pub source: &'a SourceInfo,
    /// `--config` values (e.g. `profile.dist-server.lto="thin"`), for profile experiments.
    pub cargo_config: &'a [String],
    /// Where cargo's stderr goes.
    pub log_path: PathBuf,
    /// A jobserver shared with other cargo invocations running at the same time.
    pub jobserver: Option<&'a jobserver::Client>,
}

impl Invocation<'_> {
    /// The `cargo build` command of `job`.
    pub fn command(&self, job: &Job<'_>) -> Command {
        let remaps = self.toolchain.remaps(self.root, self.target_dir);
        let mut flags = rustflags(job.variant, &remaps);
        flags.extend(job.rustflags.iter().cloned());

        let mut command =
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
        command.current_dir(self.root).args([
            "build",
            "--locked",
            "--profile",
            job.profile,
            "--target",
            &job.target,
            "--message-format",
            "json-render-diagnostics",
        ]);
        for config in self.cargo_config {
            command.args(["--config", config]);
        }
        for spec in &job.specs {
            command.args(["--package", &spec.name]);
        }
        if job.specs.iter().all(|spec| spec.role == Role::PythonModule) {
            let features: Vec<String> = job
                .specs
                .iter()
                .map(|spec| {
                    format!(
                        "{}/{}",
                        spec.name,
                        spec.python_feature.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            command.args(["--lib", "--features", &features.join(",")]);
            // pyo3 >= 0.26 links libpython (NEEDED + RPATH into this interpreter) unless
            // told that this is an extension module: the abi3 module must load in any CPython.
            command.env("PYO3_BUILD_EXTENSION_MODULE", "1");
        } else {
            command.arg("--bins");
        }
        command
            .env("CARGO_TARGET_DIR", self.target_dir)
            // With `--target`, these flags reach only the artifacts, never build scripts or
            // proc-macros (which run here and must not contain e.g. AVX-512; cargo#4423).
            // cargo records these flags in its fingerprints, not in file names, so each
            // variant gets its own target directory (`dist::build`).
            .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
            .env_remove("RUSTFLAGS")
            .env("MCP_FOUNDRY_VARIANT", &job.variant.name)
            .env("MCP_FOUNDRY_GIT_COMMIT", &self.source.git_commit)
            .env("SOURCE_DATE_EPOCH", COMPILE_SOURCE_DATE_EPOCH.to_string())
            .env("PYO3_PYTHON", &self.source.pyo3_python)
            .envs(job.env.iter().map(|(key, value)| (key, value)));
        command
    }

    /// Runs the build; `on_compiling` hears the name of each target cargo finishes.
    pub fn run(
        &self,
        job: &Job<'_>,
        on_compiling: &mut dyn FnMut(&str),
    ) -> Result<BTreeMap<PathBuf, CargoOutputs>> {
        if let Some(parent) = self.log_path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let log = fs::File::create(&self.log_path)
            .with_context(|| format!("creating {}", self.log_path.display()))?;
        let mut command = self.command(job);
        if let Some(jobserver) = self.jobserver {
            jobserver.configure(&mut command);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let shown = process::display(&command);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start `{shown}`"))?;

        let mut outputs: BTreeMap<PathBuf, CargoOutputs> = BTreeMap::new();
        let stdout = child.stdout.take().context("cargo's stdout is piped")?;
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let Message::CompilerArtifact(artifact) =
                message.context("reading cargo's JSON messages")?
            else {
                continue;
            };
            on_compiling(&artifact.target.name);
            let manifest_path = artifact.manifest_path.into_std_path_buf();
            let Some(spec) = job
                .specs
                .iter()
                .find(|spec| spec.manifest_path == manifest_path)
            else {
                continue;
            };
            let outputs = outputs.entry(manifest_path).or_default();
            if artifact.target.is_kind(TargetKind::Bin) {
                if let Some(executable) = artifact.executable {
                    outputs
                        .executables
                        .push((artifact.target.name, executable.into_std_path_buf()));
                }
            } else if artifact.target.is_kind(TargetKind::CDyLib) {
                outputs.cdylib = artifact
                    .filenames
                    .into_iter()
                    .find(|f| f.extension() == Some("so"))
                    .map(|f| f.into_std_path_buf());
            }
            if outputs.is_complete(spec) && outputs.ready_after.is_none() {
                outputs.ready_after = Some(started.elapsed());
            }
        }
        let status = child.wait().context("waiting for cargo")?;
        if !status.success() {
            let log_text = fs::read_to_string(&self.log_path).unwrap_or_default();
            // Crates whose final artifacts cargo never reported are the ones that failed.
            let failed: Vec<&str> = job
                .specs
                .iter()
                .filter(|spec| {
                    !outputs
                        .get(&spec.manifest_path)
                        .is_some_and(|o| o.is_complete(spec))
                })
                .map(|spec| spec.name.as_str())
                .collect();
            bail!(
                "building `{}` for variant `{}` ({}) failed ({status}).\ncommand: {shown}\n\
                 cargo's output (full log: {}):\n{}",
                failed.join("`, `"),
                job.variant.name,
                job.target,
                self.log_path.display(),
                tail_without_progress(&log_text, 120)
            );
        }
        Ok(outputs)
    }
}

/// The last `max_lines` lines of cargo's stderr without its `Compiling x` progress lines.
pub fn tail_without_progress(log: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| {
            let trimmed = line.trim_start();
            ![
                "Compiling ",
                "Downloaded ",
                "Downloading ",
                "Fresh ",
                "Blocking waiting",
                "Updating ",
            ]
            .iter()
            .any(|prefix| trimmed.starts_with(prefix))
        })
        .collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant() -> VariantSpec {
        VariantSpec {
            name: "znver4".into(),
            description: "Zen 4".into(),
            target_cpu: "znver4".into(),
            rustflags: vec!["-C".into(), "target-cpu=znver4".into()],
            architectures: vec!["x86_64".into()],
            ci_crates: None,
        }
    }

    #[test]
    fn rustflags_keep_variant_flags_and_remap_most_specific_last() {
        let flags = rustflags(
            &variant(),
            &[
                (PathBuf::from("/work/main"), "/mcp-foundry".into()),
                (
                    PathBuf::from("/work/main/target/dist"),
                    "/mcp-foundry/target".into(),
                ),
            ],
        );
        assert_eq!(
            flags,
            [
                "-C",
                "target-cpu=znver4",
                "--remap-path-prefix=/work/main=/mcp-foundry",
                "--remap-path-prefix=/work/main/target/dist=/mcp-foundry/target",
            ]
        );
    }

    #[test]
    fn failure_output_drops_progress_lines() {
        let log = "   Compiling foo v1\nerror[E0308]: mismatched types\n  --> src/lib.rs:1:1\n   Compiling bar v2\nerror: aborting";
        assert_eq!(
            tail_without_progress(log, 2),
            "  --> src/lib.rs:1:1\nerror: aborting"
        );
    }

    #[test]
    fn the_command_builds_the_job_for_its_target_profile_and_flags() {
        let variant = variant();
        let server = CrateSpec {
            name: "bash-god".into(),
            role: Role::Server,
            ..CrateSpec::default()
        };
        let job = Job {
            specs: vec![&server],
            variant: &variant,
            target: "x86_64-unknown-linux-musl".into(),
            profile: "dist-server",
            env: vec![("CC_x86_64_unknown_linux_musl".into(), "/z/cc".into())],
            rustflags: vec!["-Clinker=/z/ld".into()],
        };
        let toolchain = Toolchain {
            objcopy: PathBuf::from("/t/rust-objcopy"),
            cargo_home: PathBuf::from("/home/u/.cargo"),
            rustup_home: PathBuf::from("/home/u/.rustup"),
            rust_src: PathBuf::from("/home/u/.rustup/toolchains/t/lib/rustlib/src/rust"),
            rustc_commit_hash: Some("5980".into()),
        };
        let source = SourceInfo {
            git_commit: "abc".into(),
            git_dirty: false,
            source_date_epoch: 7,
            rustc_version: "rustc".into(),
            cargo_lock_sha256: String::new(),
            pyo3_python: "python3".into(),
        };
        let config = ["profile.dist-server.lto=\"thin\"".to_owned()];
        let invocation = Invocation {
            root: Path::new("/ws"),
            target_dir: Path::new("/ws/target/dist"),
            toolchain: &toolchain,
            source: &source,
            cargo_config: &config,
            log_path: PathBuf::from("/ws/target/dist/logs/x.log"),
            jobserver: None,
        };
        let command = invocation.command(&job);
        let shown = process::display(&command);
        assert!(
            shown.ends_with(
                "build --locked --profile dist-server --target x86_64-unknown-linux-musl \
                 --message-format json-render-diagnostics \
                 --config \"profile.dist-server.lto=\\\"thin\\\"\" --package bash-god --bins"
            ),
            "{shown}"
        );
        let env: BTreeMap<String, String> = command
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .collect();
        assert_eq!(env["CARGO_TARGET_DIR"], "/ws/target/dist");
        // Not the commit time (7): a per-commit value reruns every cc build script.
        assert_eq!(env["SOURCE_DATE_EPOCH"], "315532800");
        assert_eq!(env["MCP_FOUNDRY_VARIANT"], "znver4");
        assert_eq!(env["CC_x86_64_unknown_linux_musl"], "/z/cc");
        let flags: Vec<&str> = env["CARGO_ENCODED_RUSTFLAGS"].split('\x1f').collect();
        assert_eq!(&flags[..2], ["-C", "target-cpu=znver4"]);
        assert_eq!(
            &flags[flags.len() - 2..],
            [
                "--remap-path-prefix=/ws/target/dist=/mcp-foundry/target",
                "-Clinker=/z/ld"
            ]
        );
        // Exactly the std's prefix, no trailing slash: rustc compares the remap target
        // with it to keep std paths untranslated.
        assert!(
            flags.contains(
                &"--remap-path-prefix=/home/u/.rustup/toolchains/t/lib/rustlib/src/rust=/rustc/5980"
            ),
            "{flags:?}"
        );
        // RUSTFLAGS from the caller's environment would reach build scripts: removed.
        assert!(
            command
                .get_envs()
                .any(|(k, v)| k == "RUSTFLAGS" && v.is_none())
        );
    }

    /// Compiles `source` (a library) to an object file with the sysroot `sysroot` and the
    /// remaps of `toolchain`, as dist would, and returns the object's bytes.
    fn compile_with(toolchain: &Toolchain, sysroot: &Path, source: &Path) -> Vec<u8> {
        let out = source.with_extension(format!(
            "{}.o",
            sysroot.file_name().unwrap().to_string_lossy()
        ));
        let dir = source.parent().unwrap();
        let flags = rustflags(&variant(), &toolchain.remaps(dir, &dir.join("target")));
        let mut command = Command::new("rustc");
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("--sysroot")
            .arg(sysroot)
            .args(["--crate-type=lib", "-O", "--emit=obj", "-o"])
            .arg(&out)
            .arg(source)
            // The variant's target-cpu is not the point here.
            .args(flags.iter().filter(|f| f.starts_with("--remap")));
        process::run(&mut command).unwrap();
        fs::read(&out).unwrap()
    }

    /// A real rustc, a sysroot with and one without rust-src: dist's remaps keep the object
    /// identical, and without the rust-src remap it is not (the hazard is real).
    #[test]
    fn installing_rust_src_does_not_change_what_dist_builds() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let real_sysroot = process::rustc_sysroot(root).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rustup_home = dir.path().join("rustup");
        let sysroot = |name: &str, with_rust_src: bool| {
            let sysroot = rustup_home.join("toolchains").join(name);
            let rustlib = sysroot.join("lib/rustlib");
            fs::create_dir_all(&rustlib).unwrap();
            for entry in fs::read_dir(real_sysroot.join("lib/rustlib")).unwrap() {
                let entry = entry.unwrap();
                if entry.file_name() != "src" {
                    std::os::unix::fs::symlink(entry.path(), rustlib.join(entry.file_name()))
                        .unwrap();
                }
            }
            if with_rust_src {
                // The file by which rustc recognises an installed rust-src.
                let lib_rs = rustlib.join("src/rust/library/std/src/lib.rs");
                fs::create_dir_all(lib_rs.parent().unwrap()).unwrap();
                fs::write(lib_rs, "").unwrap();
            }
            sysroot
        };
        let without = sysroot("without", false);
        let with = sysroot("with", true);
        // std code instantiated here carries std paths in its panic locations.
        let source = dir.path().join("lib.rs");
        fs::write(
            &source,
            "pub fn f(s: &str, p: &str) -> usize { s.split(p).count() + s.matches(p).count() }\n\
             pub fn g(s: &mut String, i: usize, t: &str) { s.insert_str(i, t); s.truncate(i) }\n",
        )
        .unwrap();
        let detected = Toolchain::detect(root).unwrap();
        assert!(detected.rustc_commit_hash.is_some(), "{detected:?}");
        let toolchain = |sysroot: &Path| Toolchain {
            rustup_home: rustup_home.clone(),
            rust_src: sysroot.join("lib/rustlib/src/rust"),
            ..detected.clone()
        };

        let reference = compile_with(&toolchain(&without), &without, &source);
        assert!(
            reference.windows(7).any(|w| w == b"/rustc/"),
            "the test code must carry a std path"
        );
        assert_eq!(
            compile_with(&toolchain(&with), &with, &source),
            reference,
            "rust-src changed the object despite the remap"
        );
        let unmapped = Toolchain {
            rustc_commit_hash: None,
            ..toolchain(&with)
        };
        assert_ne!(
            compile_with(&unmapped, &with, &source),
            reference,
            "without the rust-src remap, rust-src should change the object"
        );
    }
}
