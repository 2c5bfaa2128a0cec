//! No code: see Cargo.toml. The service depends on this crate so that its own build and the
//! workspace's test build compile shared crates with the same features.
