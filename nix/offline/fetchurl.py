"""Builder of the substitute `fetchurl`: the offline stand-in for a download.

Two kinds of URL are served, from what this host already holds; any other fails with the
URL, as a download without network would:

- crates (crane's vendoring, buildRustPackage): the .crate file from the host's cargo
  registry cache. The derivation is fixed-output, so Nix itself checks the file against
  the sha256 of Cargo.lock, exactly as for a real download.
- Rust release components (rust-overlay's .tar.xz, fenix's .tar.gz): rebuilt in the
  rust-installer layout from the host's rustup toolchain of that release, whose channel
  manifest must list this very URL with this very sha256 (so the files are those of the
  pinned tarball), from rustup's per-component file lists, with an `install.sh` that
  installs them under `--prefix` as rust-installer's does. Not fixed-output: the repacked
  tar has other bytes than the original, so the hash is checked here instead of by Nix.
- A release's channel manifest (fenix): the published file, which `cargo xtask
  nix-offline` downloads into `hostRustDistCache` beforehand (rustup keeps only a
  re-serialised copy, with other bytes). Fixed-output: Nix checks the pinned hash.
"""

import glob
import hashlib
import os
import re
import sys
import tarfile
import tomllib

out = os.environ["out"]
url = os.environ["url"]
sha256 = os.environ["sha256Hex"]


def fail(message):
    print(f"offline fetchurl {url}: {message}", file=sys.stderr)
    sys.exit(1)


def serve_crate(crate_file):
    cargo_home = os.environ["hostCargoHome"]
    candidates = sorted(glob.glob(os.path.join(cargo_home, "registry/cache/*", crate_file)))
    for candidate in candidates:
        with open(candidate, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() == sha256:
            with open(out, "wb") as f:
                f.write(data)
            return
    fail(
        f"{crate_file} with sha256 {sha256} is not in {cargo_home}/registry/cache; "
        "run `cargo fetch --locked` for the lock file that names it"
    )


def serve_rust_component():
    rustup_home = os.environ["hostRustupHome"]
    for toolchain in sorted(glob.glob(os.path.join(rustup_home, "toolchains/*"))):
        manifest_path = os.path.join(toolchain, "lib/rustlib/multirust-channel-manifest.toml")
        if not os.path.isfile(manifest_path):
            continue
        with open(manifest_path, "rb") as f:
            manifest = tomllib.load(f)
        for pkg_name, pkg in manifest.get("pkg", {}).items():
            for target, entry in pkg.get("target", {}).items():
                for url_key, hash_key in (("xz_url", "xz_hash"), ("url", "hash")):
                    if entry.get(url_key) != url:
                        continue
                    if entry.get(hash_key) != sha256:
                        fail(f"{toolchain} lists it with sha256 {entry.get(hash_key)}, not {sha256}")
                    repack(toolchain, pkg_name, target)
                    return
    fail(
        f"no rustup toolchain in {rustup_home} was installed from this URL; install the "
        "release rust-toolchain.toml names with rustup, with the component and target"
    )


def repack(toolchain, component, target):
    suffix = "" if target == "*" else f"-{target}"
    listing = os.path.join(toolchain, f"lib/rustlib/manifest-{component}{suffix}")
    if not os.path.isfile(listing):
        fail(
            f"{os.path.basename(toolchain)} lacks {component}{suffix}; "
            f"`rustup component add` / `rustup target add` it"
        )
    stem = os.path.basename(url)
    for ext in (".tar.xz", ".tar.gz"):
        stem = stem.removesuffix(ext)
    with open(listing) as f:
        entries = [line.rstrip("\n") for line in f if line.strip()]
    with tarfile.open(out, "w") as tar:

        def add_text(name, text, mode=0o644):
            path = os.path.join(os.environ["TMPDIR"], "member")
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, mode)
            tar.add(path, arcname=f"{stem}/{name}")

        add_text("rust-installer-version", "3\n")
        add_text("install.sh", INSTALL_SH, 0o755)
        add_text("components", f"{component}\n")
        add_text(f"{component}/manifest.in", "".join(e + "\n" for e in entries))
        for entry in entries:
            kind, _, rel = entry.partition(":")
            if kind not in ("file", "dir"):
                fail(f"unexpected entry {entry!r} in {listing}")
            tar.add(os.path.join(toolchain, rel), arcname=f"{stem}/{component}/{rel}")


# rust-installer's `install.sh --prefix=DIR`, for the files listed in manifest.in (what
# fenix runs; rust-overlay copies the listed files itself).
INSTALL_SH = """#!/bin/sh
set -eu
prefix=
for arg in "$@"; do
  case "$arg" in
    --prefix=*) prefix="${arg#--prefix=}" ;;
  esac
done
[ -n "$prefix" ] || { echo "install.sh: --prefix=DIR is required" >&2; exit 1; }
here=$(dirname "$0")
while read -r component; do
  while IFS=: read -r kind rel; do
    mkdir -p "$prefix/$(dirname "$rel")"
    cp -R "$here/$component/$rel" "$prefix/$rel"
  done < "$here/$component/manifest.in"
done < "$here/components"
"""


def serve_channel_manifest():
    cache = os.environ.get("hostRustDistCache", "")
    path = os.path.join(cache, os.path.basename(url))
    if not cache or not os.path.isfile(path):
        fail(
            f"{os.path.basename(url)} is not in the release download cache {cache!r}; "
            "`cargo xtask nix-offline` downloads it there"
        )
    with open(path, "rb") as f:
        data = f.read()
    # Nix checks the hash too (fixed-output); this says which file was wrong.
    if hashlib.sha256(data).hexdigest() != sha256:
        fail(f"{path} has sha256 {hashlib.sha256(data).hexdigest()}, not {sha256}")
    with open(out, "wb") as f:
        f.write(data)


crate_file = os.environ.get("crateFile", "")
if crate_file:
    serve_crate(crate_file)
elif os.environ.get("isRustDist") == "1" and re.search(r"/channel-rust-[^/]*\.toml$", url):
    serve_channel_manifest()
elif os.environ.get("isRustDist") == "1":
    serve_rust_component()
else:
    fail("this offline substitute has no network and serves only crates and Rust releases")
