//! OCI 1.1 referrers in an image layout: an SBOM or a provenance statement attached to an
//! image manifest, the way the image spec defines it for artifacts — an image manifest whose
//! `artifactType` says what it carries, whose `config` is the empty descriptor, whose one
//! layer is the document, and whose `subject` is the image manifest it describes.
//!
//! An image layout has no referrers API, so the referrer is listed in `index.json` without a
//! ref name (as `oras` and `skopeo copy` of a registry's referrers do); a registry's referrers
//! API finds it by `subject` once the layout is pushed with referrers (`oras cp -r`).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use oci_spec::image::{
    ANNOTATION_TITLE, Descriptor, ImageIndex, ImageManifestBuilder, MediaType, SCHEMA_VERSION,
    Sha256Digest,
};

use crate::image::layout::{WrittenImage, canonical_json, write_blob};
use crate::{provenance, sbom};

/// Annotation of a referrer: the dist path of the artifact its document describes.
pub const ARTIFACT_ANNOTATION: &str = "io.github.mcp-foundry.artifact";

/// The empty JSON config of artifact manifests (image-spec 1.1, "Guidance for an Empty
/// Descriptor").
const EMPTY_JSON: &[u8] = b"{}";

/// One document to attach.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The manifest's `artifactType`, e.g. `application/vnd.cyclonedx+json`.
    pub artifact_type: &'a str,
    /// The layer's media type (the document's own; equal to `artifact_type` for ours).
    pub media_type: &'a str,
    pub content: &'a [u8],
    /// Annotations of the referrer manifest (e.g. `org.opencontainers.image.title`).
    pub annotations: HashMap<String, String>,
}

/// Adds `attachment` to the layout at `layout` as a referrer of `subject` (a manifest
/// descriptor from the same layout) and lists it in `index.json`; returns its descriptor.
/// Attaching the same document twice changes nothing.
pub fn attach(
    layout: &Path,
    subject: &Descriptor,
    attachment: &Attachment<'_>,
) -> Result<Descriptor> {
    let blobs = layout.join("blobs/sha256");
    let Some(subject_hex) = subject.as_digest_sha256() else {
        bail!("the subject {} is not a sha256 digest", subject.digest());
    };
    if !blobs.join(subject_hex).is_file() {
        bail!(
            "the subject manifest {} is not in the layout {}",
            subject.digest(),
            layout.display()
        );
    }
    let config = write_blob(&blobs, MediaType::EmptyJSON, EMPTY_JSON)?;
    let layer = write_blob(
        &blobs,
        MediaType::Other(attachment.media_type.to_owned()),
        attachment.content,
    )?;
    let artifact_type = MediaType::Other(attachment.artifact_type.to_owned());
    // The subject as a plain descriptor: media type, digest and size only.
    let subject = Descriptor::new(
        subject.media_type().clone(),
        subject.size(),
        subject.digest().clone(),
    );
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .artifact_type(artifact_type.clone())
        .config(config)
        .layers(vec![layer])
        .subject(subject)
        .build()?;
    if !attachment.annotations.is_empty() {
        manifest.set_annotations(Some(attachment.annotations.clone()));
    }
    let mut descriptor = write_blob(
        &blobs,
        MediaType::ImageManifest,
        &canonical_json(&manifest)?,
    )?;
    descriptor.set_artifact_type(Some(artifact_type));
    if let Some(annotations) = manifest.annotations() {
        descriptor.set_annotations(Some(annotations.clone()));
    }

    let index_path = layout.join("index.json");
    let mut index = ImageIndex::from_file(&index_path)
        .with_context(|| format!("reading {}", index_path.display()))?;
    if !index
        .manifests()
        .iter()
        .any(|d| d.digest() == descriptor.digest())
    {
        let mut manifests = index.manifests().clone();
        manifests.push(descriptor.clone());
        index.set_manifests(manifests);
        fs::write(&index_path, canonical_json(&index)?)
            .with_context(|| format!("writing {}", index_path.display()))?;
    }
    Ok(descriptor)
}

/// The records `cargo xtask dist` writes for each artifact, as referrer kinds:
/// `(directory, suffix, media type)`.
pub const RECORDS: [(&str, &str, &str); 2] = [
    ("sbom", sbom::SBOM_SUFFIX, sbom::MEDIA_TYPE),
    ("provenance", provenance::SUFFIX, provenance::MEDIA_TYPE),
];

/// Attaches to each image of `images` (written to the layout `layout`) the SBOM and the
/// provenance of every dist artifact it holds: `artifacts[tag]` lists their dist paths
/// (`generic/bin/devops`), read from `dist`. An image's referrers follow its artifacts' order.
pub fn attach_dist_records(
    layout: &Path,
    dist: &Path,
    images: &[WrittenImage],
    artifacts: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<Descriptor>> {
    let mut attached = Vec::new();
    for image in images {
        let Some(paths) = artifacts.get(&image.tag) else {
            continue;
        };
        let digest: Sha256Digest = image
            .manifest_digest
            .trim_start_matches("sha256:")
            .parse()
            .with_context(|| format!("image {}: bad digest", image.tag))?;
        let manifest = layout.join("blobs/sha256").join(digest.digest());
        let size = fs::metadata(&manifest)
            .with_context(|| format!("image {}: reading {}", image.tag, manifest.display()))?
            .len();
        let subject = Descriptor::new(MediaType::ImageManifest, size, digest);
        for path in paths {
            for (kind, suffix, media_type) in RECORDS {
                let record = provenance::record_path(path, kind, suffix);
                let file = dist.join(&record);
                let content = fs::read(&file).with_context(|| {
                    format!(
                        "reading {} (the {kind} of {path} for image {}); rerun `cargo xtask dist`",
                        file.display(),
                        image.tag
                    )
                })?;
                let title = record.rsplit('/').next().unwrap_or(&record).to_owned();
                let annotations = HashMap::from([
                    (ANNOTATION_TITLE.to_owned(), title),
                    (ARTIFACT_ANNOTATION.to_owned(), path.clone()),
                ]);
                attached.push(attach(
                    layout,
                    &subject,
                    &Attachment {
                        artifact_type: media_type,
                        media_type,
                        content: &content,
                        annotations,
                    },
                )?);
            }
        }
    }
    Ok(attached)
}

/// The referrers of `subject_digest` listed in the layout's `index.json`.
pub fn referrers(layout: &Path, subject_digest: &str) -> Result<Vec<Descriptor>> {
    let index = ImageIndex::from_file(layout.join("index.json"))?;
    let mut found = Vec::new();
    // Image indexes (the platform index) are never referrers here.
    for descriptor in index
        .manifests()
        .iter()
        .filter(|d| d.media_type() == &MediaType::ImageManifest)
    {
        let Some(hex) = descriptor.as_digest_sha256() else {
            continue;
        };
        let manifest =
            oci_spec::image::ImageManifest::from_file(layout.join("blobs/sha256").join(hex))?;
        if manifest
            .subject()
            .as_ref()
            .is_some_and(|s| s.digest().to_string() == subject_digest)
        {
            found.push(descriptor.clone());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
