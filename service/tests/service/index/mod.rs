//! Indexing pipeline tests: chunking over a real corpus, embeddings with the real model, and
//! storage and search against the run's Qdrant.
//!
//! The model tests need the assets: run `scripts/fetch-assets.sh` first.

mod chunking;
mod embedding;
mod search;
