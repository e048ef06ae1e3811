//! Signing and verifying a small dist with a throwaway ed25519 key, with the real ssh-keygen.

use super::*;

/// A throwaway key pair and the `allowed_signers` file trusting it as `identity`.
fn throwaway_key(dir: &Path, identity: &str) -> (PathBuf, PathBuf) {
    let key = dir.join("key");
    process::output(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "throwaway", "-f"])
            .arg(&key),
    )
    .unwrap();
    let public = fs::read_to_string(dir.join("key.pub")).unwrap();
    let signers = dir.join("allowed_signers");
    fs::write(&signers, format!("{identity} {public}")).unwrap();
    (key, signers)
}

fn small_dist(dir: &Path) -> PathBuf {
    let dist = dir.join("dist");
    fs::create_dir_all(dist.join("generic/bin")).unwrap();
    fs::create_dir_all(dist.join("generic/sbom/bin")).unwrap();
    fs::write(dist.join("generic/bin/devops"), b"\x7fELF...").unwrap();
    fs::write(dist.join("generic/sbom/bin/devops.cdx.json"), b"{}\n").unwrap();
    fs::write(dist.join("manifest.json"), b"{}\n").unwrap();
    dist
}

#[test]
fn a_signed_dist_verifies_and_any_change_or_other_signer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dist = small_dist(dir.path());
    let (key, signers) = throwaway_key(dir.path(), "release@example.org");
    sign(&dist, &key).unwrap();
    let sums = fs::read_to_string(dist.join(SUMS)).unwrap();
    assert_eq!(sums.lines().count(), 3);
    assert!(
        sums.contains("  generic/sbom/bin/devops.cdx.json\n"),
        "{sums}"
    );
    assert_eq!(verify(&dist, &signers, "release@example.org").unwrap(), 3);
    // The documented commands work as written: sha256sum -c in dist/.
    let check = Command::new("sha256sum")
        .args(["-c", "--quiet", SUMS])
        .current_dir(&dist)
        .status()
        .unwrap();
    assert!(check.success());

    // Another identity does not pass, nor the same key's signature in another namespace.
    assert!(verify(&dist, &signers, "mallory@example.org").is_err());
    fs::remove_file(dist.join(SIGNATURE)).unwrap();
    process::output(
        Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "git", "-f"])
            .arg(&key)
            .arg(dist.join(SUMS)),
    )
    .unwrap();
    assert!(verify(&dist, &signers, "release@example.org").is_err());
    sign(&dist, &key).unwrap();
    // A changed artifact fails the checksums even though the signature is good.
    fs::write(dist.join("generic/bin/devops"), b"\x7fELF!!!").unwrap();
    let err = verify(&dist, &signers, "release@example.org").unwrap_err();
    assert!(format!("{err:#}").contains("generic/bin/devops"), "{err:#}");
    // Re-signed, then an added file is refused too.
    sign(&dist, &key).unwrap();
    verify(&dist, &signers, "release@example.org").unwrap();
    fs::write(dist.join("generic/bin/extra"), b"x").unwrap();
    assert!(verify(&dist, &signers, "release@example.org").is_err());
    fs::remove_file(dist.join("generic/bin/extra")).unwrap();
    // Edited sums (an attacker's own hashes) break the signature.
    fs::write(dist.join(SUMS), sums.replace("generic", "generik")).unwrap();
    assert!(verify(&dist, &signers, "release@example.org").is_err());
    // A key signed by someone else: a second key is not in allowed_signers.
    sign(&dist, &key).unwrap();
    let other = tempfile::tempdir().unwrap();
    let (other_key, _) = throwaway_key(other.path(), "release@example.org");
    sign(&dist, &other_key).unwrap();
    assert!(verify(&dist, &signers, "release@example.org").is_err());
}

#[test]
fn missing_keys_and_empty_dists_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = sign(dir.path(), &dir.path().join("nope")).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let (key, _) = throwaway_key(dir.path(), "a");
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let err = sign(&empty, &key).unwrap_err();
    assert!(err.to_string().contains("cargo xtask dist"), "{err}");
}

/// The shell block after the `verify-commands` marker in docs/supply-chain.md.
fn documented_verify_commands() -> String {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/supply-chain.md");
    let text = fs::read_to_string(&doc).unwrap();
    let (_, after) = text
        .split_once("<!-- verify-commands:")
        .expect("docs/supply-chain.md marks its verify commands");
    let (_, block) = after.split_once("```sh\n").unwrap();
    block.split_once("```").unwrap().0.to_owned()
}

#[test]
fn the_documented_verify_commands_accept_a_signed_dist_and_refuse_a_changed_one() {
    let dir = tempfile::tempdir().unwrap();
    let dist = small_dist(dir.path());
    let (key, _) = throwaway_key(dir.path(), "release@example.org");
    // The names the documentation uses: release_ed25519(.pub) next to dist/.
    fs::copy(
        dir.path().join("key.pub"),
        dir.path().join("release_ed25519.pub"),
    )
    .unwrap();
    sign(&dist, &key).unwrap();
    let script = documented_verify_commands();
    assert!(script.contains("ssh-keygen -Y verify"), "{script}");
    let run = || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let good = run();
    assert!(
        good.status.success(),
        "{}{}",
        String::from_utf8_lossy(&good.stdout),
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("Good \"mcp-foundry-dist\" signature"));
    // A changed artifact: the signature still holds, sha256sum -c fails.
    fs::write(dist.join("generic/bin/devops"), b"\x7fELF!!!").unwrap();
    assert!(!run().status.success());
    // Re-signed by another key: ssh-keygen -Y verify fails.
    let other = tempfile::tempdir().unwrap();
    let (other_key, _) = throwaway_key(other.path(), "release@example.org");
    sign(&dist, &other_key).unwrap();
    assert!(!run().status.success());
}
