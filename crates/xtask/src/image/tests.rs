//! Tests of the image layouts: written from a small fake dist, read back with oci-spec.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_LICENSES, ANNOTATION_REVISION, ANNOTATION_SOURCE,
    ANNOTATION_TITLE, ANNOTATION_VERSION, Arch, ImageConfiguration, ImageIndex, ImageManifest,
};

use super::*;
use crate::metadata::{CrateSpec, Role};

const EPOCH: u64 = 1_763_769_600;

const SERVER_NAME: &str = "io.github.example/demo-server";

/// Stand-in binaries in `dir`: their bytes differ per variant, their paths are arbitrary.
fn inputs(dir: &Path, with_launcher: bool) -> CrateImages {
    let write = |name: &str, content: &str| -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, content).unwrap();
        path
    };
    let binary = |variant: &str, file: &str| VariantBinary {
        variant: variant.to_owned(),
        target_cpu: variant.to_owned(),
        path: write(file, &format!("{variant} build")),
    };
    CrateImages {
        crate_name: "demo-server".to_owned(),
        labels: BTreeMap::from([
            (ANNOTATION_TITLE.to_owned(), "demo-server".to_owned()),
            (ANNOTATION_CREATED.to_owned(), layout::rfc3339(EPOCH)),
            (ANNOTATION_REVISION.to_owned(), "0123abcd".to_owned()),
            (SERVER_NAME_KEY.to_owned(), SERVER_NAME.to_owned()),
        ]),
        annotations: BTreeMap::from([(SERVER_NAME_KEY.to_owned(), SERVER_NAME.to_owned())]),
        architecture: Arch::Amd64,
        variant_binaries: vec![
            binary("generic", "a-generic"),
            binary("x86-64-v3", "b-v3"),
            binary("x86-64-v4", "c-v4"),
            binary("znver4", "d-znver4"),
        ],
        foreign_baselines: Vec::new(),
        launcher: with_launcher.then(|| write("launcher", "launcher build")),
        programs: Vec::new(),
        program_cache: PathBuf::from("/nonexistent/image-programs"),
        source_date_epoch: EPOCH,
    }
}

fn index(dir: &Path) -> ImageIndex {
    ImageIndex::from_file(dir.join("index.json")).unwrap()
}

fn blob(dir: &Path, digest: &oci_spec::image::Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().as_ref())
        .join(digest.digest())
}

fn tags(index: &ImageIndex) -> Vec<String> {
    index
        .manifests()
        .iter()
        .filter(|m| m.media_type() == &oci_spec::image::MediaType::ImageManifest)
        .map(|m| m.annotations().as_ref().unwrap()[oci_spec::image::ANNOTATION_REF_NAME].clone())
        .collect()
}

/// The nested platform index of the layout in `dir` and its `index.json` descriptor.
fn platform_index(dir: &Path) -> (oci_spec::image::Descriptor, ImageIndex) {
    let top = index(dir);
    let descriptor = top
        .manifests()
        .iter()
        .find(|m| m.media_type() == &oci_spec::image::MediaType::ImageIndex)
        .expect("a nested index")
        .clone();
    let nested = ImageIndex::from_file(blob(dir, descriptor.digest())).unwrap();
    (descriptor, nested)
}

/// A layer entry as `(path, mode, uid, kind)`.
type EntryRow = (String, u32, u64, String);

/// `(tag, manifest, config, layer entries)` of every image in the layout.
fn read_images(dir: &Path) -> Vec<(String, ImageManifest, ImageConfiguration, Vec<EntryRow>)> {
    let index = index(dir);
    tags(&index)
        .into_iter()
        .zip(index.manifests())
        .map(|(tag, descriptor)| {
            let manifest = ImageManifest::from_file(blob(dir, descriptor.digest())).unwrap();
            let config =
                ImageConfiguration::from_file(blob(dir, manifest.config().digest())).unwrap();
            let layer = fs::read(blob(dir, manifest.layers()[0].digest())).unwrap();
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(layer.as_slice())
                .read_to_end(&mut tar)
                .unwrap();
            let entries = tar::Archive::new(tar.as_slice())
                .entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let h = e.header();
                    let kind = match h.entry_type() {
                        tar::EntryType::Symlink => {
                            format!("-> {}", h.link_name().unwrap().unwrap().display())
                        }
                        tar::EntryType::Directory => "dir".to_owned(),
                        _ => format!("{} bytes", h.size().unwrap()),
                    };
                    (
                        e.path().unwrap().display().to_string(),
                        h.mode().unwrap(),
                        h.uid().unwrap(),
                        kind,
                    )
                })
                .collect();
            (tag, manifest, config, entries)
        })
        .collect()
}

#[test]
fn building_twice_from_different_directories_gives_identical_digests() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fs::create_dir(second.path().join("elsewhere")).unwrap();
    let a = write_crate_images(
        &inputs(first.path(), true),
        &first.path().join("out/demo-server"),
    )
    .unwrap();
    let b = write_crate_images(
        &inputs(&second.path().join("elsewhere"), true),
        &second.path().join("images/x/demo-server"),
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        fs::read(first.path().join("out/demo-server/index.json")).unwrap(),
        fs::read(second.path().join("images/x/demo-server/index.json")).unwrap()
    );
    // And the digests do depend on the content.
    let third = tempfile::tempdir().unwrap();
    let mut changed = inputs(third.path(), true);
    changed.source_date_epoch += 1;
    let c = write_crate_images(&changed, &third.path().join("demo-server")).unwrap();
    assert_ne!(a[0].manifest_digest, c[0].manifest_digest);
}

#[test]
fn tags_are_the_variants_and_latest_with_platform_variants_only_for_levels() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-server");
    write_crate_images(&inputs(dir.path(), true), &out).unwrap();
    let written = index(&out);
    assert_eq!(
        tags(&written),
        ["generic", "x86-64-v3", "x86-64-v4", "znver4", "latest"]
    );
    for descriptor in written
        .manifests()
        .iter()
        .filter(|m| m.media_type() == &oci_spec::image::MediaType::ImageManifest)
    {
        let platform = descriptor.platform().as_ref().unwrap();
        assert_eq!(platform.architecture(), &Arch::Amd64);
        let tag = &descriptor.annotations().as_ref().unwrap()[oci_spec::image::ANNOTATION_REF_NAME];
        let expected = match tag.as_str() {
            "x86-64-v3" => Some("v3"),
            "x86-64-v4" => Some("v4"),
            // znver4 is not v4 (SSE4A), the dispatch image is every level at once.
            _ => None,
        };
        assert_eq!(platform.variant().as_deref(), expected, "{tag}");
    }

    let without_launcher = tempfile::tempdir().unwrap();
    let out = without_launcher.path().join("demo-server");
    write_crate_images(&inputs(without_launcher.path(), false), &out).unwrap();
    assert_eq!(
        tags(&index(&out)),
        ["generic", "x86-64-v3", "x86-64-v4", "znver4"]
    );
}

/// [`inputs`] with a baseline build for arm64 too, written as the layout `dir/demo-server`:
/// the request, the layout's directory and its images.
fn with_arm64_baseline(
    dir: &Path,
    with_launcher: bool,
) -> (CrateImages, PathBuf, Vec<WrittenImage>) {
    let mut request = inputs(dir, with_launcher);
    fs::write(dir.join("arm"), "arm64 build").unwrap();
    request.foreign_baselines.push((
        Arch::ARM64,
        VariantBinary {
            variant: "generic".into(),
            target_cpu: "generic".into(),
            path: dir.join("arm"),
        },
    ));
    let out = dir.join("demo-server");
    let written = write_crate_images(&request, &out).unwrap();
    (request, out, written)
}

/// The manifest digest of the image tagged `tag` in `written`.
fn digest_of(written: &[WrittenImage], tag: &str) -> String {
    written
        .iter()
        .find(|image| image.tag == tag)
        .unwrap()
        .manifest_digest
        .clone()
}

#[test]
fn the_platform_index_lists_standard_platforms_and_names_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out, written) = with_arm64_baseline(dir.path(), true);
    let (descriptor, nested) = platform_index(&out);
    let top_annotations = descriptor.annotations().as_ref().unwrap();
    assert_eq!(
        top_annotations[oci_spec::image::ANNOTATION_REF_NAME],
        "platforms"
    );
    assert_eq!(top_annotations[SERVER_NAME_KEY], SERVER_NAME);
    assert_eq!(
        nested.annotations().as_ref().unwrap()[SERVER_NAME_KEY],
        SERVER_NAME
    );
    let entries: Vec<(String, Option<String>, String)> = nested
        .manifests()
        .iter()
        .map(|m| {
            let platform = m.platform().as_ref().unwrap();
            assert_eq!(platform.os(), &oci_spec::image::Os::Linux);
            assert!(m.annotations().is_none(), "no tags inside the index");
            (
                platform.architecture().to_string(),
                platform.variant().clone(),
                m.digest().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("amd64".into(), None, digest_of(&written, "generic")),
            (
                "amd64".into(),
                Some("v3".into()),
                digest_of(&written, "x86-64-v3")
            ),
            (
                "amd64".into(),
                Some("v4".into()),
                digest_of(&written, "x86-64-v4")
            ),
            ("arm64".into(), None, digest_of(&written, "generic-arm64")),
        ],
        "znver4 and latest are not in the platform index"
    );
    // Every image manifest carries the annotation, every config the label.
    for (tag, manifest, config, _) in read_images(&out) {
        assert_eq!(
            manifest.annotations().as_ref().unwrap()[SERVER_NAME_KEY],
            SERVER_NAME,
            "{tag}"
        );
        let labels = config.config().as_ref().unwrap().labels().as_ref().unwrap();
        assert_eq!(labels[SERVER_NAME_KEY], SERVER_NAME, "{tag}");
    }
}

/// The proof that clients select by platform: skopeo, as an amd64 v1/v3/v4 and an arm64
/// client, copies exactly that platform's manifest out of the `platforms` index.
#[test]
fn skopeo_selects_each_platform_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (request, out, written) = with_arm64_baseline(dir.path(), false);
    let selections: Vec<platform::Selection> = platform_entries(&request)
        .into_iter()
        .map(|(tag, architecture, variant)| platform::Selection {
            manifest_digest: digest_of(&written, &tag),
            tag,
            architecture,
            variant,
        })
        .collect();
    assert_eq!(selections.len(), 4);
    let report = platform::check_selection(&out, &selections).unwrap();
    assert!(report.contains("linux/amd64/v3->x86-64-v3"), "{report}");
    // And the check can fail: a wrong expectation is caught.
    let mut wrong = selections[1].clone();
    wrong.manifest_digest = selections[2].manifest_digest.clone();
    let error = platform::check_selection(&out, &[wrong])
        .unwrap_err()
        .to_string();
    assert!(error.contains("not the x86-64-v3 image"), "{error}");
}

#[test]
fn config_runs_the_server_as_the_non_root_user_with_labels() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-server");
    write_crate_images(&inputs(dir.path(), true), &out).unwrap();
    for (tag, manifest, config, _) in read_images(&out) {
        assert_eq!(config.architecture(), &Arch::Amd64);
        let expected_variant = match tag.as_str() {
            "x86-64-v3" => Some("v3"),
            "x86-64-v4" => Some("v4"),
            _ => None,
        };
        assert_eq!(config.variant().as_deref(), expected_variant, "{tag}");
        assert_eq!(config.created().as_deref(), Some("2025-11-22T00:00:00Z"));
        let runtime = config.config().as_ref().unwrap();
        assert_eq!(runtime.user().as_deref(), Some("65532:65532"));
        assert_eq!(
            runtime.entrypoint().as_deref(),
            Some(&["/usr/local/bin/demo-server".to_owned()][..])
        );
        assert_eq!(runtime.working_dir().as_deref(), Some("/work"));
        let labels = runtime.labels().as_ref().unwrap();
        assert_eq!(labels[ANNOTATION_TITLE], "demo-server");
        assert_eq!(labels[ANNOTATION_REVISION], "0123abcd");
        let expected_label = if tag == "latest" {
            "dispatch"
        } else {
            tag.as_str()
        };
        assert_eq!(labels[VARIANT_LABEL], expected_label);
        assert_eq!(manifest.layers().len(), 1);
        assert_eq!(config.rootfs().diff_ids().len(), 1);
    }
}

#[test]
fn layers_hold_the_user_files_and_the_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-server");
    write_crate_images(&inputs(dir.path(), true), &out).unwrap();
    let images = read_images(&out);
    let entries = |tag: &str| images.iter().find(|(t, ..)| t == tag).unwrap().3.clone();
    let base = [
        ("etc/", 0o755, 0, "dir"),
        ("etc/group", 0o644, 0, "27 bytes"),
        ("etc/passwd", 0o644, 0, "94 bytes"),
        ("home/", 0o755, 0, "dir"),
        ("home/nonroot/", 0o755, 65532, "dir"),
    ];
    let owned = |rows: &[(&str, u32, u64, &str)]| -> Vec<EntryRow> {
        rows.iter()
            .map(|(p, m, u, k)| ((*p).to_owned(), *m, *u, (*k).to_owned()))
            .collect()
    };
    let mut generic = owned(&base);
    generic.extend(owned(&[
        ("tmp/", 0o1777, 0, "dir"),
        ("usr/", 0o755, 0, "dir"),
        ("usr/local/", 0o755, 0, "dir"),
        ("usr/local/bin/", 0o755, 0, "dir"),
        ("usr/local/bin/demo-server", 0o755, 0, "13 bytes"),
        ("work/", 0o755, 65532, "dir"),
    ]));
    assert_eq!(entries("generic"), generic);

    let mut latest = owned(&base);
    latest.extend(owned(&[
        ("opt/", 0o755, 0, "dir"),
        ("opt/mcp/", 0o755, 0, "dir"),
        ("opt/mcp/generic/", 0o755, 0, "dir"),
        ("opt/mcp/generic/demo-server", 0o755, 0, "13 bytes"),
        ("opt/mcp/x86-64-v3/", 0o755, 0, "dir"),
        ("opt/mcp/x86-64-v3/demo-server", 0o755, 0, "15 bytes"),
        ("opt/mcp/x86-64-v4/", 0o755, 0, "dir"),
        ("opt/mcp/x86-64-v4/demo-server", 0o755, 0, "15 bytes"),
        ("opt/mcp/znver4/", 0o755, 0, "dir"),
        ("opt/mcp/znver4/demo-server", 0o755, 0, "12 bytes"),
        ("tmp/", 0o1777, 0, "dir"),
        ("usr/", 0o755, 0, "dir"),
        ("usr/local/", 0o755, 0, "dir"),
        ("usr/local/bin/", 0o755, 0, "dir"),
        ("usr/local/bin/demo-server", 0o777, 0, "-> mcp-launcher"),
        ("usr/local/bin/mcp-launcher", 0o755, 0, "14 bytes"),
        ("work/", 0o755, 65532, "dir"),
    ]));
    assert_eq!(entries("latest"), latest);
}

#[test]
fn every_image_ships_the_programs_its_server_runs_on_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-server");
    let request = CrateImages {
        programs: vec!["bash".to_owned()],
        ..inputs(dir.path(), true)
    };
    write_crate_images(&request, &out).unwrap();
    let bash_size = fs::metadata(programs::STATIC_PROGRAMS[0].host_path)
        .unwrap()
        .len();
    let images = read_images(&out);
    assert_eq!(images.len(), 5, "four variants and latest");
    for (tag, _, config, entries) in images {
        let bash = entries.iter().find(|(path, ..)| path == "usr/bin/bash");
        assert_eq!(
            bash,
            Some(&(
                "usr/bin/bash".to_owned(),
                0o755,
                0,
                format!("{bash_size} bytes")
            )),
            "{tag}"
        );
        let env = config.config().as_ref().unwrap().env().clone().unwrap();
        assert!(
            env.iter()
                .any(|e| e.starts_with("PATH=") && e.split(':').any(|d| d == "/usr/bin")),
            "{tag}: {env:?}"
        );
    }
}

#[test]
fn passwd_and_group_define_the_image_user() {
    let layer = base_layer().unwrap();
    let file = |name: &str| match &layer.entries().find(|(p, _)| *p == name).unwrap().1.kind {
        EntryKind::File(data) => String::from_utf8(data.clone()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(
        file("etc/passwd").contains("nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    );
    assert!(file("etc/group").contains("nonroot:x:65532:\n"));
}

/// The real tools must accept the layout: skopeo reads every tag, umoci unpacks it into a
/// bundle whose process is the entrypoint as uid 65532 (umoci resolves the user through
/// the image's own /etc/passwd).
#[test]
fn skopeo_and_umoci_accept_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-server");
    write_crate_images(&inputs(dir.path(), true), &out).unwrap();
    for tag in ["generic", "x86-64-v3", "znver4", "latest"] {
        let reference = format!("{}:{tag}", out.display());
        let inspected = smoke::skopeo_inspect(&reference).unwrap();
        assert_eq!(inspected["Architecture"], "amd64");
        assert_eq!(
            inspected["Labels"][VARIANT_LABEL],
            if tag == "latest" { "dispatch" } else { tag }
        );
        let bundle = dir.path().join(format!("bundle-{tag}"));
        let process = smoke::umoci_unpack(&reference, &bundle).unwrap();
        assert_eq!(process.args, ["/usr/local/bin/demo-server"]);
        assert_eq!(
            (process.uid, process.gid, process.cwd.as_str()),
            (65532, 65532, "/work")
        );
        assert!(
            process
                .env
                .iter()
                .any(|e| e == "PATH=/usr/local/bin:/usr/bin"),
            "{:?}",
            process.env
        );
        let server = fs::read_to_string(bundle.join("rootfs/opt/mcp/generic/demo-server"));
        assert_eq!(server.is_ok(), tag == "latest");
    }
}

#[test]
fn labels_carry_the_crate_facts_and_the_commit() {
    let spec = CrateSpec {
        name: "a".into(),
        version: "1.2.3".into(),
        description: "the a server".into(),
        license: Some("MIT".into()),
        repository: Some("https://example.invalid/a".into()),
        role: Role::Server,
        ..CrateSpec::default()
    };
    let labels = image_labels(&spec, "abc123", 0);
    assert_eq!(labels[ANNOTATION_TITLE], "a");
    assert_eq!(labels[ANNOTATION_VERSION], "1.2.3");
    assert_eq!(labels[ANNOTATION_REVISION], "abc123");
    assert_eq!(labels[ANNOTATION_LICENSES], "MIT");
    assert_eq!(labels[ANNOTATION_SOURCE], "https://example.invalid/a");
    assert_eq!(labels[ANNOTATION_CREATED], "1970-01-01T00:00:00Z");
    let bare = image_labels(&CrateSpec::default(), "abc123", 0);
    assert!(!bare.contains_key(ANNOTATION_LICENSES) && !bare.contains_key(ANNOTATION_SOURCE));
}
