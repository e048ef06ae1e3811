//! Writing OCI image layouts byte for byte reproducibly, with the `oci-spec` types.
//!
//! Reproducible means: the same inputs give the same blobs whatever the build directory,
//! user, umask or clock. Tar entries are sorted, every parent directory is explicit, mtimes
//! are `SOURCE_DATE_EPOCH`, owners are numeric only, modes are fixed here (never copied from
//! the input files), gzip carries no timestamp or file name, and JSON objects are written with
//! sorted keys (oci-spec keeps labels and annotations in `HashMap`s, whose order is random).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, Os, PlatformBuilder, RootFsBuilder, SCHEMA_VERSION, Sha256Digest,
};
use serde::Serialize;

// One sha256 helper for dist and images: digests must be computed identically.
pub use crate::dist::sha256_hex;

/// What a layer entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File(Vec<u8>),
    Symlink(String),
}

/// One file-system object of a layer. Paths are relative, `/`-separated, without a leading
/// `/` or a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// The file tree of a single-layer image. Parent directories that are not added explicitly
/// are created as root-owned `0755` directories.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
}

impl Layer {
    pub fn add(&mut self, path: &str, kind: EntryKind, mode: u32, owner: u64) -> Result<()> {
        let path = path.trim_start_matches('/').trim_end_matches('/');
        if path.is_empty()
            || path
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            bail!("layer path {path:?} must be a normal relative path");
        }
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            let existing = self.entries.entry(parent.clone()).or_insert(Entry {
                kind: EntryKind::Directory,
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
            if existing.kind != EntryKind::Directory {
                bail!("layer path {path:?} needs {parent:?} to be a directory");
            }
        }
        let entry = Entry {
            kind,
            mode,
            uid: owner,
            gid: owner,
        };
        // Re-adding a directory (e.g. one created as a parent) only sets its mode and owner.
        if let Some(previous) = self.entries.get(path)
            && !(entry.kind == EntryKind::Directory && previous.kind == EntryKind::Directory)
        {
            bail!("layer path {path:?} added twice");
        }
        self.entries.insert(path.to_owned(), entry);
        Ok(())
    }

    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// The uncompressed tar: entries in byte order of their paths, which puts every
    /// directory before its contents.
    pub fn to_tar(&self, mtime: u64) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mode(entry.mode);
            header.set_uid(entry.uid);
            header.set_gid(entry.gid);
            header.set_mtime(mtime);
            match &entry.kind {
                EntryKind::Directory => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
                }
                EntryKind::File(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, data.as_slice())?;
                }
                EntryKind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)?;
                }
            }
        }
        Ok(builder.into_inner()?)
    }
}

/// Gzip without timestamp or file name, so equal input gives equal bytes.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// JSON with every object's keys sorted, compact. The value goes through `serde_json::Value`
/// and is rebuilt key by key, which is sorted whether or not serde_json's `preserve_order`
/// feature is enabled somewhere in the build.
pub fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>> {
    fn sort(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sort(serde_json::to_value(value)?))?)
}

/// The runtime settings and labels of one image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Ref name in `index.json` (`org.opencontainers.image.ref.name`).
    pub tag: String,
    pub layer: Layer,
    /// Go `GOARCH` name, e.g. `amd64`.
    pub architecture: Arch,
    /// The image-spec platform variant (`v3` for an x86-64-v3 build), only where the build
    /// is exactly that standard level; `None` for the baseline and for CPU-specific builds.
    pub platform_variant: Option<String>,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    /// Annotations of the image manifest.
    pub annotations: BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH`: tar mtimes; `created` is derived from it.
    pub source_date_epoch: u64,
}

/// A nested image index in the layout: a multi-platform tag whose entries are images of the
/// same layout, each descriptor carrying its platform, so a client picks by platform.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    /// Ref name in `index.json`.
    pub tag: String,
    /// Tags of the images it lists; each must be in the layout with a distinct platform.
    pub images: Vec<String>,
    /// Annotations of the nested index.
    pub annotations: BTreeMap<String, String>,
}

/// A written image: its manifest's digest and what it costs to pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenImage {
    pub tag: String,
    pub manifest_digest: String,
    /// Manifest + config + compressed layer.
    pub compressed_size: u64,
    pub uncompressed_layer_size: u64,
}

/// RFC 3339 UTC time of a Unix timestamp, e.g. `2026-11-22T00:00:00Z`.
pub fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch))
        .to_string()
}

/// Writes an OCI image layout holding `images` and the multi-platform `indexes` over them to
/// `dir`, which must not exist yet.
pub fn write_layout(
    dir: &Path,
    images: &[ImageSpec],
    indexes: &[IndexSpec],
) -> Result<Vec<WrittenImage>> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    fs::write(dir.join("oci-layout"), canonical_json(&layout)?)?;

    let mut written = Vec::new();
    let mut index_entries = Vec::new();
    let mut by_tag = BTreeMap::new();
    for image in images {
        let (descriptor, summary) = write_image(&blobs, image)?;
        if by_tag
            .insert(image.tag.clone(), descriptor.clone())
            .is_some()
        {
            bail!("two images are tagged {:?}", image.tag);
        }
        index_entries.push(descriptor);
        written.push(summary);
    }
    for nested in indexes {
        index_entries.push(write_nested_index(&blobs, nested, &by_tag)?);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(index_entries)
        .build()?;
    fs::write(dir.join("index.json"), canonical_json(&index)?)?;
    Ok(written)
}

/// The nested index blob of `spec` and its descriptor for `index.json`.
fn write_nested_index(
    blobs: &Path,
    spec: &IndexSpec,
    by_tag: &BTreeMap<String, Descriptor>,
) -> Result<Descriptor> {
    let mut platforms = BTreeMap::new();
    let mut manifests = Vec::new();
    for tag in &spec.images {
        let mut descriptor = by_tag
            .get(tag)
            .with_context(|| {
                format!(
                    "index {:?} lists {tag:?}, which is no image of the layout",
                    spec.tag
                )
            })?
            .clone();
        let platform = descriptor
            .platform()
            .clone()
            .with_context(|| format!("image {tag:?} has no platform"))?;
        let key = (
            platform.architecture().to_string(),
            platform.variant().clone().unwrap_or_default(),
        );
        if let Some(other) = platforms.insert(key, tag.clone()) {
            bail!(
                "index {:?}: {other:?} and {tag:?} have the same platform; a client could not \
                 choose between them",
                spec.tag
            );
        }
        // Inside the index the tag is meaningless; the platform is what selects.
        descriptor.set_annotations(None);
        manifests.push(descriptor);
    }
    let mut builder = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests);
    if !spec.annotations.is_empty() {
        builder = builder.annotations(
            spec.annotations
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        );
    }
    let index = write_blob(
        blobs,
        MediaType::ImageIndex,
        &canonical_json(&builder.build()?)?,
    )?;
    let mut annotations: HashMap<String, String> = spec.annotations.clone().into_iter().collect();
    annotations.insert(ANNOTATION_REF_NAME.to_owned(), spec.tag.clone());
    Ok(DescriptorBuilder::default()
        .media_type(MediaType::ImageIndex)
        .digest(index.digest().clone())
        .size(index.size())
        .annotations(annotations)
        .build()?)
}

/// Writes `data` as a blob (once: blobs are content-addressed); returns its descriptor.
pub(crate) fn write_blob(blobs: &Path, media_type: MediaType, data: &[u8]) -> Result<Descriptor> {
    let hex = sha256_hex(data);
    let path: PathBuf = blobs.join(&hex);
    if !path.exists() {
        fs::write(&path, data).with_context(|| format!("writing blob {}", path.display()))?;
    }
    let digest: Sha256Digest = hex.parse()?;
    Ok(Descriptor::new(media_type, data.len() as u64, digest))
}

fn write_image(blobs: &Path, image: &ImageSpec) -> Result<(Descriptor, WrittenImage)> {
    let tar = image.layer.to_tar(image.source_date_epoch)?;
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let layer = write_blob(blobs, MediaType::ImageLayerGzip, &gzip(&tar)?)?;

    let created = rfc3339(image.source_date_epoch);
    let labels: HashMap<String, String> = image.labels.clone().into_iter().collect();
    let runtime = ConfigBuilder::default()
        .user(image.user.clone())
        .env(image.env.clone())
        .entrypoint(image.entrypoint.clone())
        .working_dir(image.working_dir.clone())
        .labels(labels)
        .build()?;
    let mut config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(image.architecture.clone())
        .os(Os::Linux);
    if let Some(variant) = &image.platform_variant {
        config = config.variant(variant.clone());
    }
    let config = config
        .config(runtime)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(created)
                .created_by("cargo xtask image")
                .build()?,
        ])
        .build()?;
    let config = write_blob(blobs, MediaType::ImageConfig, &canonical_json(&config)?)?;

    let mut manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config.clone())
        .layers(vec![layer.clone()]);
    if !image.annotations.is_empty() {
        manifest = manifest.annotations(
            image
                .annotations
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        );
    }
    let manifest = manifest.build()?;
    let manifest_json = canonical_json(&manifest)?;
    let manifest = write_blob(blobs, MediaType::ImageManifest, &manifest_json)?;

    // The variant only for an exact standard level: `amd64/v4` on a znver4 build would let
    // an x86-64-v4 host without SSE4A pick it.
    let mut platform = PlatformBuilder::default()
        .architecture(image.architecture.clone())
        .os(Os::Linux);
    if let Some(variant) = &image.platform_variant {
        platform = platform.variant(variant.clone());
    }
    let platform = platform.build()?;
    let descriptor = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(manifest.digest().clone())
        .size(manifest.size())
        .platform(platform)
        .annotations(HashMap::from([(
            ANNOTATION_REF_NAME.to_owned(),
            image.tag.clone(),
        )]))
        .build()?;
    let summary = WrittenImage {
        tag: image.tag.clone(),
        manifest_digest: manifest.digest().to_string(),
        compressed_size: manifest.size() + config.size() + layer.size(),
        uncompressed_layer_size: tar.len() as u64,
    };
    Ok((descriptor, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_explicit_and_entries_sorted() {
        let mut layer = Layer::default();
        layer
            .add(
                "usr/local/bin/tool",
                EntryKind::File(b"x".to_vec()),
                0o755,
                0,
            )
            .unwrap();
        layer
            .add("etc/passwd", EntryKind::File(b"p".to_vec()), 0o644, 0)
            .unwrap();
        layer
            .add("usr/local-x", EntryKind::Directory, 0o700, 7)
            .unwrap();
        let paths: Vec<&str> = layer.entries().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/passwd",
                "usr",
                "usr/local",
                "usr/local-x",
                "usr/local/bin",
                "usr/local/bin/tool"
            ]
        );
    }

    #[test]
    fn bad_paths_and_conflicts_are_refused() {
        let mut layer = Layer::default();
        assert!(layer.add("../x", EntryKind::Directory, 0o755, 0).is_err());
        assert!(layer.add("a//b", EntryKind::Directory, 0o755, 0).is_err());
        layer.add("a", EntryKind::File(vec![]), 0o644, 0).unwrap();
        assert!(layer.add("a/b", EntryKind::File(vec![]), 0o644, 0).is_err());
        layer.add("d/e", EntryKind::File(vec![]), 0o644, 0).unwrap();
        assert!(layer.add("d", EntryKind::File(vec![]), 0o644, 0).is_err());
        layer.add("d", EntryKind::Directory, 0o700, 0).unwrap();
        assert!(layer.add("a", EntryKind::File(vec![]), 0o644, 0).is_err());
    }

    #[test]
    fn tar_headers_are_normalized() {
        let mut layer = Layer::default();
        layer
            .add("home/nonroot", EntryKind::Directory, 0o700, 65532)
            .unwrap();
        layer
            .add("bin/tool", EntryKind::File(b"#!".to_vec()), 0o755, 0)
            .unwrap();
        layer
            .add("bin/link", EntryKind::Symlink("tool".into()), 0o777, 0)
            .unwrap();
        let tar = layer.to_tar(1_700_000_000).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 1_700_000_000);
            assert_eq!(header.username().unwrap(), Some(""));
            assert_eq!(header.groupname().unwrap(), Some(""));
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            seen.push((
                path,
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.entry_type(),
            ));
        }
        assert_eq!(
            seen,
            [
                ("bin/".to_owned(), 0o755, 0, tar::EntryType::Directory),
                ("bin/link".to_owned(), 0o777, 0, tar::EntryType::Symlink),
                ("bin/tool".to_owned(), 0o755, 0, tar::EntryType::Regular),
                ("home/".to_owned(), 0o755, 0, tar::EntryType::Directory),
                (
                    "home/nonroot/".to_owned(),
                    0o700,
                    65532,
                    tar::EntryType::Directory
                ),
            ]
        );
    }

    #[test]
    fn gzip_has_no_timestamp() {
        let compressed = gzip(b"same").unwrap();
        assert_eq!(&compressed[4..8], &[0, 0, 0, 0], "MTIME field");
        assert_eq!(compressed[3] & 0x08, 0, "no FNAME flag");
        assert_eq!(compressed, gzip(b"same").unwrap());
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": 1, "a": {"z": 1, "m": [{"y": 1, "x": 2}]}});
        assert_eq!(
            String::from_utf8(canonical_json(&value).unwrap()).unwrap(),
            r#"{"a":{"m":[{"x":2,"y":1}],"z":1},"b":1}"#
        );
    }

    #[test]
    fn rfc3339_of_source_date_epoch() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_763_769_600), "2025-11-22T00:00:00Z");
    }
}
