//! Present so that cargo applies the `[build-dependencies]` cargo-hakari generates.

fn main() {}
