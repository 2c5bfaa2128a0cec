//! Conformance suite: the behaviour `qdrant-client` relies on, checked through `qdrant-client`
//! only. By default every test starts its own embedded server; with `QDRANT_URL` set the same
//! tests run against that server (a real Qdrant). Tests in `embedded` always use an embedded
//! server, because they restart it or probe what it leaves unimplemented.

mod collections;
mod concurrency;
mod embedded;
mod errors;
mod filters;
mod health;
mod helpers;
mod payload;
mod points;
mod search;
