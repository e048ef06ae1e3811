//! Referrers attached to a real layout written by the image code, read back as the image
//! spec defines them and by skopeo and umoci (when installed).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use oci_spec::image::{Arch, ImageManifest};

use super::*;
use crate::dist::sha256_hex;
use crate::image::{CrateImages, DISPATCH_TAG, VariantBinary, write_crate_images};

/// A fake dist with two builds of `demo` and a launcher, their records, and the layout.
struct Fixture {
    _dir: tempfile::TempDir,
    dist: PathBuf,
    layout: PathBuf,
    images: Vec<WrittenImage>,
    records: BTreeMap<String, Vec<String>>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    let file = |relative: &str, content: &str| -> PathBuf {
        let path = dist.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    };
    let mut records = BTreeMap::new();
    let mut binaries = Vec::new();
    for variant in ["generic", "znver4"] {
        let artifact = format!("{variant}/bin/demo");
        binaries.push(VariantBinary {
            variant: variant.to_owned(),
            target_cpu: variant.to_owned(),
            path: file(&artifact, &format!("{variant} build")),
        });
        records.insert(variant.to_owned(), vec![artifact]);
    }
    let launcher = file("generic/bin/mcp-launcher", "launcher build");
    records.insert(
        DISPATCH_TAG.to_owned(),
        vec![
            "generic/bin/demo".to_owned(),
            "znver4/bin/demo".to_owned(),
            "generic/bin/mcp-launcher".to_owned(),
        ],
    );
    for paths in records.values() {
        for path in paths {
            for (kind, suffix, _) in RECORDS {
                file(
                    &provenance::record_path(path, kind, suffix),
                    &format!("{{\"{kind}\": \"{path}\"}}\n"),
                );
            }
        }
    }
    let request = CrateImages {
        crate_name: "demo".to_owned(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        architecture: Arch::Amd64,
        variant_binaries: binaries,
        foreign_baselines: Vec::new(),
        launcher: Some(launcher),
        programs: Vec::new(),
        program_cache: PathBuf::from("/nonexistent/image-programs"),
        source_date_epoch: 1_700_000_000,
    };
    let layout = dist.join("images/demo");
    let images = write_crate_images(&request, &layout).unwrap();
    Fixture {
        _dir: dir,
        dist,
        layout,
        images,
        records,
    }
}

fn blob(layout: &Path, descriptor: &Descriptor) -> Vec<u8> {
    fs::read(
        layout
            .join("blobs/sha256")
            .join(descriptor.as_digest_sha256().unwrap()),
    )
    .unwrap()
}

#[test]
fn every_image_gets_its_artifacts_sbom_and_provenance_as_referrers() {
    let f = fixture();
    let tags_before = index_tags(&f.layout);
    let attached = attach_dist_records(&f.layout, &f.dist, &f.images, &f.records).unwrap();
    // generic and znver4: 2 records each; latest: 3 artifacts × 2.
    assert_eq!(attached.len(), 2 + 2 + 6);
    // Idempotent: the same documents are not listed twice.
    assert_eq!(
        attach_dist_records(&f.layout, &f.dist, &f.images, &f.records).unwrap(),
        attached
    );
    for image in &f.images {
        let Some(paths) = f.records.get(&image.tag) else {
            continue;
        };
        let found = referrers(&f.layout, &image.manifest_digest).unwrap();
        assert_eq!(found.len(), paths.len() * RECORDS.len(), "{}", image.tag);
        for descriptor in &found {
            let bytes = blob(&f.layout, descriptor);
            // Every blob hashes to its descriptor.
            assert_eq!(sha256_hex(&bytes), descriptor.as_digest_sha256().unwrap());
            assert_eq!(bytes.len() as u64, descriptor.size());
            let manifest = ImageManifest::from_reader(bytes.as_slice()).unwrap();
            let subject = manifest.subject().as_ref().unwrap();
            assert_eq!(subject.digest().to_string(), image.manifest_digest);
            assert_eq!(subject.media_type(), &MediaType::ImageManifest);
            let subject_bytes = blob(&f.layout, subject);
            assert_eq!(subject_bytes.len() as u64, subject.size());
            assert_eq!(manifest.config().media_type(), &MediaType::EmptyJSON);
            assert_eq!(blob(&f.layout, manifest.config()), b"{}");
            let artifact_type = manifest.artifact_type().as_ref().unwrap().to_string();
            assert_eq!(
                descriptor.artifact_type().as_ref().unwrap().to_string(),
                artifact_type
            );
            let annotations = manifest.annotations().as_ref().unwrap();
            let artifact = &annotations[ARTIFACT_ANNOTATION];
            assert!(paths.contains(artifact), "{artifact} not in {}", image.tag);
            let (kind, suffix, media_type) = RECORDS
                .into_iter()
                .find(|(_, _, media)| *media == artifact_type)
                .unwrap();
            let layer = &manifest.layers()[0];
            assert_eq!(layer.media_type().to_string(), media_type);
            let document = blob(&f.layout, layer);
            assert_eq!(sha256_hex(&document), layer.as_digest_sha256().unwrap());
            let record = provenance::record_path(artifact, kind, suffix);
            assert_eq!(document, fs::read(f.dist.join(&record)).unwrap());
            assert_eq!(
                annotations[ANNOTATION_TITLE],
                record.rsplit('/').next().unwrap()
            );
        }
    }
    // The tags still name the same images.
    assert_eq!(index_tags(&f.layout), tags_before);
    for tool in ["skopeo", "umoci"] {
        readers_accept(tool, &f.layout, &f.images);
    }
}

#[test]
fn a_missing_record_is_an_error_that_says_to_rerun_dist() {
    let f = fixture();
    fs::remove_file(f.dist.join("znver4/provenance/bin/demo.intoto.json")).unwrap();
    let err = attach_dist_records(&f.layout, &f.dist, &f.images, &f.records).unwrap_err();
    assert!(
        format!("{err:#}").contains("rerun `cargo xtask dist`"),
        "{err:#}"
    );
    // A subject that is not in the layout is refused.
    let stranger = Descriptor::new(
        MediaType::ImageManifest,
        8,
        sha256_hex(b"stranger").parse::<Sha256Digest>().unwrap(),
    );
    let attachment = Attachment {
        artifact_type: sbom::MEDIA_TYPE,
        media_type: sbom::MEDIA_TYPE,
        content: b"{}",
        annotations: HashMap::new(),
    };
    assert!(attach(&f.layout, &stranger, &attachment).is_err());
}

/// `(tag, digest)` of every tagged entry of `index.json`.
fn index_tags(layout: &Path) -> Vec<(String, String)> {
    ImageIndex::from_file(layout.join("index.json"))
        .unwrap()
        .manifests()
        .iter()
        .filter_map(|d| {
            let tag = d
                .annotations()
                .as_ref()?
                .get(oci_spec::image::ANNOTATION_REF_NAME)?;
            Some((tag.clone(), d.digest().to_string()))
        })
        .collect()
}

/// skopeo reads each tag's manifest bytes; umoci lists the tags. Skipped loudly when the
/// tool is not installed (`cargo xtask ci` installs both: prereq `ImageSmoke`).
fn readers_accept(tool: &str, layout: &Path, images: &[WrittenImage]) {
    if Command::new(tool).arg("--version").output().is_err() {
        eprintln!("SKIPPED: {tool} is not installed; the layout was not checked with it");
        return;
    }
    if tool == "umoci" {
        let out = stdout_of(Command::new("umoci").args(["ls", "--layout"]).arg(layout));
        let mut listed: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        listed.sort();
        // Every tag (the images and the platform index), and no referrer.
        let mut tags: Vec<String> = index_tags(layout).into_iter().map(|(t, _)| t).collect();
        tags.sort();
        assert!(tags.len() > images.len());
        assert_eq!(listed, tags);
        return;
    }
    for image in images {
        let out = stdout_of(
            Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!("oci:{}:{}", layout.display(), image.tag)),
        );
        assert_eq!(
            format!("sha256:{}", sha256_hex(&out)),
            image.manifest_digest
        );
    }
}

/// The standard output of `command`, which must succeed.
fn stdout_of(command: &mut Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
