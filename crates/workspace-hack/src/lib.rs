//! Empty on purpose: this crate exists for its `[dependencies]`, which cargo-hakari generates
//! (`cargo hakari generate`) so that every member builds each third-party crate with the same
//! features, whichever members are built together.
