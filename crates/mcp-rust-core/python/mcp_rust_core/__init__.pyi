"""Type stubs for the mcp_rust_core package (the native module it loads, re-exported)."""

import os
from typing import Any, Optional, Sequence, Tuple, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str

_PathLike = Union[str, "os.PathLike[str]"]

class ConfinementError(ValueError):
    """A path is outside the allowed roots, does not exist, or a root is invalid."""

class SnapshotError(ValueError):
    """A learning-store snapshot is truncated, corrupt, or not a snapshot at all."""

class PanicException(BaseException):
    """A Rust panic inside a call (a bug in mcp_rust_core); the interpreter keeps running."""

class BuildInfo(TypedDict):
    crate_version: str
    variant: str
    target_cpu: str
    target_features: list[str]
    rustc_version: str
    git_commit: str
    profile: str
    kernels: str
    kernels_supported: list[str]
    variant_request: str
    variants_runnable: list[str]
    variants_installed: list[str]

class Hit(TypedDict):
    id: int
    score: float
    text: str
    metadata: Any

class StoredRecord(TypedDict):
    id: int
    text: str
    embedding: npt.NDArray[np.float32]
    metadata: Any

def cosine_topk(
    matrix: npt.NDArray[np.float32],
    query: npt.NDArray[np.float32],
    k: int,
    row_norms: Optional[npt.NDArray[np.float32]] = None,
) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Top-k cosine similarity of ``query`` (dim,) against the rows of ``matrix`` (rows, dim).

    Returns ``(indices, scores)`` best first; requires float32, C-contiguous, 1 <= k <= rows.
    ``row_norms`` (``norms(matrix)``, computed once) skips recomputing the rows' norms.
    """

def dot(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Dot product of two float32 vectors of the same length."""

def norms(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """L2 norm of every row of a float32 (rows, dim) matrix."""

def embed_text(text: str, dim: int = 256) -> npt.NDArray[np.float32]:
    """L2-normalized hashed character-trigram embedding of ``text``; 1 <= dim <= 2**20."""

def confine_path(path: str, roots: Sequence[_PathLike]) -> str:
    """Canonical path of ``path`` inside ``roots``; raises ConfinementError on escape."""

def build_info() -> BuildInfo:
    """The loaded build (variant, target-cpu, features, rustc, commit, kernels) and why."""

class MemoryStore:
    """Thread-safe store of text records with float32 embeddings, searched by cosine similarity."""

    def __init__(self, dim: int) -> None: ...
    @property
    def dim(self) -> int: ...
    def __len__(self) -> int: ...
    def add(
        self, text: str, embedding: npt.NDArray[np.float32], metadata: Optional[Any] = None
    ) -> int: ...
    def add_text(self, text: str, metadata: Optional[Any] = None) -> int: ...
    def query(self, embedding: npt.NDArray[np.float32], k: int = 5) -> list[Hit]: ...
    def query_text(self, text: str, k: int = 5) -> list[Hit]: ...
    def get(self, id: int) -> Optional[StoredRecord]: ...
    def update(
        self,
        id: int,
        embedding: npt.NDArray[np.float32],
        text: Optional[str] = None,
        metadata: Optional[Any] = None,
    ) -> bool: ...
    def remove(self, id: int) -> bool: ...
    def save(self, path: _PathLike) -> None: ...
    @staticmethod
    def load(path: _PathLike) -> "MemoryStore": ...
