"""Rust-accelerated kernels, learning store and path confinement of mcp-foundry.

Everything is implemented in the native extension ``mcp_rust_core.mcp_rust_core`` (built
from the ``mcp-rust-core`` crate with its ``python`` feature); this package re-exports it.
Call :func:`build_info` to see which CPU variant of the extension was imported.
"""

from .mcp_rust_core import (
    ConfinementError,
    MemoryStore,
    PanicException,
    SnapshotError,
    __version__,
    build_info,
    confine_path,
    cosine_topk,
    dot,
    embed_text,
    norms,
)

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
