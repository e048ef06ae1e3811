"""Writes a docker-archive image: one layer per store path, one customisation layer.

Reproducible like nixpkgs' images: sorted entries, mtime 1 (or `created` for the config),
uid/gid 0, gzip without a timestamp. argv: references-graph file, customisation dir, out.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

graph_file, custom_dir, out = sys.argv[1:4]

with open(graph_file) as f:
    lines = [line.strip() for line in f]
paths, i = [], 0
while i < len(lines):
    if lines[i].startswith("/nix/store/"):
        paths.append(lines[i])
        i += 2  # path, deriver
        count = int(lines[i])
        i += 1 + count
    else:
        i += 1
paths = sorted(set(paths))


def add_tree(tar, root, arcroot):
    info = tar.gettarinfo(root, arcname=arcroot)
    normalise(info)
    if info.isreg():
        with open(root, "rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)
    if os.path.isdir(root) and not os.path.islink(root):
        for entry in sorted(os.listdir(root)):
            add_tree(tar, os.path.join(root, entry), f"{arcroot}/{entry}")


def normalise(info):
    info.mtime = 1
    info.uid = info.gid = 0
    info.uname = info.gname = ""


def layer(build):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    data = buf.getvalue()
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


layers = []
for path in paths:
    def build(tar, path=path):
        for parent in ("nix", "nix/store"):
            info = tarfile.TarInfo(parent)
            info.type = tarfile.DIRTYPE
            info.mode = 0o555
            normalise(info)
            tar.addfile(info)
        add_tree(tar, path, path.lstrip("/"))
    layers.append(layer(build))


def build_custom(tar):
    for entry in sorted(os.listdir(custom_dir)):
        add_tree(tar, os.path.join(custom_dir, entry), entry)


layers.append(layer(build_custom))

config = {
    "created": os.environ["created"],
    "architecture": os.environ["architecture"],
    "os": "linux",
    "config": json.loads(os.environ["imageConfig"]),
    "rootfs": {"type": "layers", "diff_ids": [digest for _, digest in layers]},
    "history": [{"created": os.environ["created"], "comment": "offline substitute"}] * len(layers),
}
config_bytes = json.dumps(config, sort_keys=True).encode()
config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
repo_tag = f"{os.environ['imageName']}:{os.environ['imageTag']}"

raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:

    def add_bytes(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        normalise(info)
        archive.addfile(info, io.BytesIO(data))

    layer_names = []
    for data, digest in layers:
        name = digest.removeprefix("sha256:") + "/layer.tar"
        add_bytes(name, data)
        layer_names.append(name)
    add_bytes(config_name, config_bytes)
    manifest = [{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}]
    add_bytes("manifest.json", json.dumps(manifest).encode())

with open(out, "wb") as f:
    with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
