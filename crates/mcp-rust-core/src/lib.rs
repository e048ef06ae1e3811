//! The mcp-foundry learning store and its vectorized kernels, and the `mcp_rust_core` Python
//! module built from them.
//!
//! - [`store`]: a concurrent (DashMap) store of records with embeddings, queried by cosine
//!   similarity, saved as atomic snapshots; bash-god keeps its command history in it.
//! - [`durable`]: durable whole-file replacement (temporary file, fsync, rename, directory
//!   fsync), for the store's snapshots and bash-god's history journal.
//! - [`kernels`]: the dot-product, norm and top-k cosine kernels the store and the Python module
//!   share, written so the compiler vectorizes them for each CPU variant.
//! - The Python module (cargo feature `python`): `cosine_topk`, `dot`, `norms`, `embed_text`,
//!   `MemoryStore`, `confine_path` and `build_info`, built as one abi3 extension module.

pub mod durable;
pub mod kernels;
#[cfg(feature = "python")]
mod python;
pub mod store;
