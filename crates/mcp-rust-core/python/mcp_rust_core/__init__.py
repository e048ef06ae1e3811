"""Rust-accelerated kernels, learning store and path confinement of mcp-foundry.

Everything is implemented in the native extension built from the ``mcp-rust-core`` crate;
this package loads the build of it that suits this CPU and re-exports it.

An installation holds the baseline build, ``mcp_rust_core/mcp_rust_core.abi3.so``, which
loads on any CPU of its architecture, and may hold faster builds of the same module in
``mcp_rust_core/_variants/<variant>/``. On import the baseline module checks this CPU and
names the variants it can run, best first (the rule of mcp-foundry's launcher, from the
same table in the project's Cargo.toml); the best one installed is loaded.

``MCP_RUST_CORE_VARIANT=<variant>`` forces a variant: it is an ``ImportError``, never a
crash, when this CPU lacks a feature that variant needs or the installation lacks it;
``auto`` (or unset) restores the choice. ``MCP_RUST_CORE_KERNELS`` does the same for the
instruction set of the vector kernels inside a build. :func:`build_info` reports what was
loaded and why.
"""

import importlib.machinery as _machinery
import importlib.util as _importlib_util
import os as _os

from . import mcp_rust_core as _baseline

_VARIANTS_DIR = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "_variants")


def _installed_variants(file_name):
    """Variants with a build of the native module under ``_variants/``, sorted."""
    try:
        entries = _os.listdir(_VARIANTS_DIR)
    except FileNotFoundError:
        return []
    return sorted(
        name for name in entries if _os.path.isfile(_os.path.join(_VARIANTS_DIR, name, file_name))
    )


# Native modules loaded so far, by variant: a shared library initializes once per process.
_loaded = {}


def _load_extension(variant, path):
    if variant in _loaded:
        return _loaded[variant]
    # The loader finds the init function by the last component of the name, so every build
    # keeps the name ``mcp_rust_core``; the prefix only keeps the builds apart.
    safe = "".join(c if c.isalnum() else "_" for c in variant)
    name = f"{__name__}._variants.{safe}.mcp_rust_core"
    loader = _machinery.ExtensionFileLoader(name, path)
    spec = _importlib_util.spec_from_file_location(name, path, loader=loader)
    module = _importlib_util.module_from_spec(spec)
    loader.exec_module(module)
    _loaded[variant] = module
    return module


def _load_native():
    """The native module to use, and the facts of the choice for build_info()."""
    plan = _baseline._select_variant()  # ImportError for a variant this CPU cannot run
    file_name = _os.path.basename(_baseline.__file__)
    baseline_variant = _baseline.build_info()["variant"]
    _loaded[baseline_variant] = _baseline
    installed = _installed_variants(file_name)
    facts = {
        "variant_request": plan["request"],
        "variants_runnable": [v["name"] for v in plan["variants"] if not v["missing_features"]],
        "variants_installed": sorted(set(installed) | {baseline_variant}),
    }
    for variant in plan["candidates"]:
        if variant == baseline_variant:
            return _baseline, facts
        path = _os.path.join(_VARIANTS_DIR, variant, file_name)
        if variant in installed:
            return _load_extension(variant, path), facts
        if plan["forced"]:
            raise ImportError(
                f"mcp_rust_core: MCP_RUST_CORE_VARIANT={variant}, but this installation has no "
                f"{variant} build ({path} is missing; installed: "
                f"{', '.join(facts['variants_installed'])}); unset MCP_RUST_CORE_VARIANT or "
                f"install a wheel that contains it"
            )
    # A development build of a variant outside the table (e.g. a custom target-cpu) with
    # nothing else installed: it is already loaded and running, so it is the answer.
    return _baseline, facts


_native, _selection = _load_native()

ConfinementError = _native.ConfinementError
MemoryStore = _native.MemoryStore
PanicException = _native.PanicException
SnapshotError = _native.SnapshotError
__version__ = _native.__version__
confine_path = _native.confine_path
cosine_topk = _native.cosine_topk
dot = _native.dot
embed_text = _native.embed_text
norms = _native.norms
_Kernels = _native._Kernels


def _load_variant(variant):
    """The native module of ``variant``, loaded next to the chosen one (for benchmarks and
    tests). ``ImportError`` when this CPU cannot run it or the installation lacks it."""
    _baseline._select_variant(variant)  # ImportError: unknown, or this CPU lacks a feature
    if variant in _loaded:
        return _loaded[variant]
    path = _os.path.join(_VARIANTS_DIR, variant, _os.path.basename(_baseline.__file__))
    if not _os.path.isfile(path):
        raise ImportError(f"mcp_rust_core: this installation has no {variant} build ({path})")
    return _load_extension(variant, path)


def build_info():
    """Which build is loaded and why.

    The native module's facts (crate version, ``variant``, target-cpu, target features,
    rustc version, git commit, profile, ``kernels`` and ``kernels_supported``) plus the
    choice: ``variant_request`` (``auto`` or the forced name), ``variants_runnable`` (what
    this CPU can run) and ``variants_installed`` (what this installation holds).
    """
    info = _native.build_info()
    info.update({key: list(value) if isinstance(value, list) else value
                 for key, value in _selection.items()})
    return info


__all__ = [
    "ConfinementError",
    "MemoryStore",
    "PanicException",
    "SnapshotError",
    "__version__",
    "build_info",
    "confine_path",
    "cosine_topk",
    "dot",
    "embed_text",
    "norms",
]
