//! The reference service's tests, written the way the harness's users write theirs: each test
//! gets a harness environment (its own queue, collection and project on the shared PostgreSQL
//! and Qdrant) and binds the service to it.
//!
//! - [`api`]: end to end over HTTP (real PostgreSQL, Qdrant, model), and handlers through
//!   `router(state).oneshot(..)`.
//! - [`index`]: the indexing pipeline: chunking over a real corpus, embeddings with the real
//!   model, storage and search. The model tests need `scripts/fetch-assets.sh` first.
//! - [`support`]: the service's bindings to the harness (`spawn_app`, `TestIndex`).

mod api;
mod index;
mod support;
