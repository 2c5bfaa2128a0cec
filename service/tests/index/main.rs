//! Indexing pipeline tests: chunking over a real corpus, embeddings with the real model, and
//! storage and search against the embedded Qdrant (or any Qdrant at `QDRANT_URL`).
//!
//! The model tests need the assets: run `scripts/fetch-assets.sh` first.

mod chunking;
mod embedding;
mod helpers;
mod search;
