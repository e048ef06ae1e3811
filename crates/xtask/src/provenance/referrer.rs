//! OCI 1.1 referrers in an image layout: an SBOM or a provenance statement attached to an
//! image manifest, the way the image spec defines it for artifacts — an image manifest whose
//! `artifactType` says what it carries, whose `config` is the empty descriptor, whose one
//! layer is the document, and whose `subject` is the image manifest it describes.
//!
//! An image layout has no referrers API, so the referrer is listed in `index.json` without a
//! ref name (as `oras` and `skopeo copy` of a registry's referrers do); a registry's referrers
//! API finds it by `subject` once the layout is pushed with referrers (`oras cp -r`).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use oci_spec::image::{
    Descriptor, ImageIndex, ImageManifestBuilder, MediaType, SCHEMA_VERSION, Sha256Digest,
};

use crate::dist::sha256_hex;
use crate::image::layout::canonical_json;

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

/// The referrers of `subject_digest` listed in the layout's `index.json`.
pub fn referrers(layout: &Path, subject_digest: &str) -> Result<Vec<Descriptor>> {
    let index = ImageIndex::from_file(layout.join("index.json"))?;
    let mut found = Vec::new();
    for descriptor in index.manifests() {
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

fn write_blob(blobs: &Path, media_type: MediaType, data: &[u8]) -> Result<Descriptor> {
    let hex = sha256_hex(data);
    let path = blobs.join(&hex);
    if !path.exists() {
        fs::write(&path, data).with_context(|| format!("writing blob {}", path.display()))?;
    }
    let digest: Sha256Digest = hex.parse()?;
    Ok(Descriptor::new(media_type, data.len() as u64, digest))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::Command;

    use super::*;
    use crate::image::layout::{EntryKind, ImageSpec, Layer, write_layout};

    #[test]
    fn an_sbom_attached_to_an_image_is_found_by_its_subject_and_the_image_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("oci");
        let mut layer = Layer::default();
        layer
            .add(
                "usr/local/bin/tool",
                EntryKind::File(b"x".to_vec()),
                0o755,
                0,
            )
            .unwrap();
        let written = write_layout(
            &layout,
            &[ImageSpec {
                tag: "tool".into(),
                layer,
                architecture: oci_spec::image::Arch::Amd64,
                entrypoint: vec!["/usr/local/bin/tool".into()],
                env: vec![],
                user: "65532".into(),
                working_dir: "/".into(),
                labels: BTreeMap::new(),
                source_date_epoch: 1_700_000_000,
            }],
        )
        .unwrap();
        let index = ImageIndex::from_file(layout.join("index.json")).unwrap();
        let subject = index.manifests()[0].clone();
        assert_eq!(subject.digest().to_string(), written[0].manifest_digest);

        let sbom = br#"{"bomFormat":"CycloneDX"}"#;
        let attachment = Attachment {
            artifact_type: crate::sbom::MEDIA_TYPE,
            media_type: crate::sbom::MEDIA_TYPE,
            content: sbom,
            annotations: HashMap::from([(
                "org.opencontainers.image.title".to_owned(),
                "tool.cdx.json".to_owned(),
            )]),
        };
        let referrer = attach(&layout, &subject, &attachment).unwrap();
        assert_eq!(attach(&layout, &subject, &attachment).unwrap(), referrer);
        let found = referrers(&layout, subject.digest().as_ref()).unwrap();
        assert_eq!(found, std::slice::from_ref(&referrer));
        let manifest = oci_spec::image::ImageManifest::from_file(
            layout
                .join("blobs/sha256")
                .join(referrer.as_digest_sha256().unwrap()),
        )
        .unwrap();
        assert_eq!(
            manifest.artifact_type().as_ref().unwrap().to_string(),
            crate::sbom::MEDIA_TYPE
        );
        assert_eq!(manifest.config().media_type(), &MediaType::EmptyJSON);
        let layer_blob = layout
            .join("blobs/sha256")
            .join(manifest.layers()[0].as_digest_sha256().unwrap());
        assert_eq!(fs::read(layer_blob).unwrap(), sbom);
        // The tagged image is still what `tool` names, for a real OCI reader.
        if let Ok(out) = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:tool", layout.display()))
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(sha256_hex(&out.stdout), subject.as_digest_sha256().unwrap());
        }
        // A subject that is not in the layout is refused.
        let stranger = Descriptor::new(
            MediaType::ImageManifest,
            2,
            sha256_hex(b"{}").parse::<Sha256Digest>().unwrap(),
        );
        let other = tempfile::tempdir().unwrap();
        fs::create_dir_all(other.path().join("blobs/sha256")).unwrap();
        assert!(attach(other.path(), &stranger, &attachment).is_err());
    }
}
