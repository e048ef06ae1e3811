//! One dist job: its cargo invocation, then its artifacts stripped and staged with their
//! SBOM and provenance ([`JobContext::run`], called by [`super::schedule`]'s workers).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;
use indicatif::ProgressBar;

use super::cargo::{self, Invocation, Toolchain};
use super::collect::{self, Built};
use super::{BuildOptions, DistRequest, Job, out_dir};
use crate::metadata::Role;
use crate::timing::{Steps, human, measure};
use crate::{provenance, sbom};

/// What every job of one run shares.
pub(super) struct JobContext<'a> {
    pub request: &'a DistRequest<'a>,
    pub options: &'a BuildOptions,
    pub toolchain: &'a Toolchain,
    pub rustc_verbose: &'a str,
    pub progress: &'a ProgressBar,
    pub jobserver: &'a jobserver::Client,
    pub steps: &'a Mutex<Steps>,
    pub count: usize,
}

impl JobContext<'_> {
    /// Times `step` as a row of the dist steps table.
    fn time<T>(&self, name: String, step: impl FnOnce() -> Result<T>) -> Result<T> {
        let (result, outcome, elapsed) = measure(step);
        self.steps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .record(name, outcome, elapsed);
        result
    }

    /// Builds job `index` and stages its artifacts.
    pub fn run(&self, index: usize, job: &Job<'_>) -> Result<Vec<Built>> {
        let request = self.request;
        let progress = self.progress;
        let label = job.label();
        progress.suspend(|| eprintln!("==> [{}/{}] building {label}", index + 1, self.count));
        // One target directory per variant: cargo keeps the variant's flags in its
        // fingerprints, not in file names, so variants sharing a directory overwrite each
        // other's builds and every variant after the first rebuilt from scratch on the next
        // run (and `cargo xtask ci`'s dist never reused the dist test's builds).
        let target_dir = request.target_base.join(&job.variant.name);
        let invocation = Invocation {
            root: &request.workspace.root,
            target_dir: &target_dir,
            toolchain: self.toolchain,
            source: &request.source,
            cargo_config: &self.options.cargo_config,
            log_path: request.target_base.join("logs").join(format!(
                "{}-{}-{}.log",
                job.variant.name, job.target, job.profile
            )),
            jobserver: Some(self.jobserver),
        };
        let started = Instant::now();
        let name = format!("{} × {}", job.variant.name, job.target);
        let outputs = self
            .time(format!("build {label}"), || {
                invocation.run(job, &mut |unit| {
                    progress.set_message(format!("{name}: compiled {unit}"));
                })
            })
            .inspect_err(|_| progress.suspend(|| eprintln!("    {label} failed")))?;
        progress.suspend(|| {
            eprintln!("    {label}: built in {}", human(started.elapsed()));
            for spec in &job.specs {
                if let Some(ready) = outputs.get(&spec.manifest_path).and_then(|o| o.ready_after) {
                    eprintln!("      {:<16} ready after {}", spec.name, human(ready));
                }
            }
        });
        progress.set_message(format!("{name}: stripping and staging"));
        let built = self.time(format!("stage {name}"), || {
            self.stage(job, &outputs, &invocation)
        })?;
        progress.inc(1);
        Ok(built)
    }

    /// Strips and stages one job's artifacts with their SBOM and provenance.
    fn stage(
        &self,
        job: &Job<'_>,
        outputs: &BTreeMap<PathBuf, cargo::CargoOutputs>,
        invocation: &Invocation<'_>,
    ) -> Result<Vec<Built>> {
        let request = self.request;
        let staging = request.out.join(out_dir::STAGING_DIR);
        let mut built = Vec::new();
        // What each crate links, from cargo's resolution for this job's target and
        // features: embedded in the artifact, and its SBOM (crate::sbom).
        let features = job_features(job);
        let resolved = sbom::resolve(&request.workspace.root, &job.target, &features)?;
        for spec in &job.specs {
            let crate_outputs = outputs
                .get(&spec.manifest_path)
                .cloned()
                .unwrap_or_default();
            let linked = sbom::LinkedCrates::of(&resolved, &spec.name)?;
            let items = collect::collect(
                job,
                spec,
                self.toolchain,
                &request.source,
                &staging,
                &crate_outputs,
                &invocation.log_path,
                &linked.section_bytes()?,
            )?;
            let repository = resolved
                .metadata
                .workspace_packages()
                .into_iter()
                .find(|p| p.name.as_str() == spec.name)
                .and_then(|p| p.repository.clone())
                .unwrap_or_default();
            let facts = provenance::BuildFacts {
                source: &request.source,
                rustc_verbose: self.rustc_verbose,
                repository: &repository,
                features: &features,
            };
            provenance::write_records(
                &staging,
                items.iter().map(|b| &b.artifact),
                &linked,
                &facts,
            )?;
            built.extend(items);
        }
        Ok(built)
    }
}

/// The cargo features a job enables (`package/feature`): the Python module's bindings.
fn job_features(job: &Job<'_>) -> Vec<String> {
    job.specs
        .iter()
        .filter(|spec| spec.role == Role::PythonModule)
        .filter_map(|spec| {
            let feature = spec.python_feature.as_deref()?;
            Some(format!("{}/{feature}", spec.name))
        })
        .collect()
}
