//! Benchmarks and examples live beside this crate.
