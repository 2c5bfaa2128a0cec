//! Qdrant's own engine (`qdrant-edge`) served behind Qdrant's gRPC API.
//!
//! A stock `qdrant-client` talks to it exactly as it talks to a real Qdrant, so tests and the
//! service's dev default need no Qdrant server or Docker. Start one with [`start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = qdrant_embedded::start(qdrant_embedded::Config::default()).await?;
//! let client = qdrant_client::Qdrant::from_url(&server.url()).build()?;
//! client.health_check().await?;
//! server.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/embedded-qdrant.md` for what differs from a real server.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod convert;
mod error;
mod server;
mod service;
mod storage;

pub use config::{Config, DEFAULT_WAL_CAPACITY_MB};
pub use error::StartError;
pub use server::{start, ServerHandle};

/// Version reported by the health check: the Qdrant release whose gRPC API this server speaks.
/// Kept within one minor of the pinned `qdrant-client` so the client logs no warning.
pub const REPORTED_VERSION: &str = "1.20.0";

/// `tracing` filter directives for a host that embeds this server: they keep two warnings of
/// qdrant-edge 0.7.2 out of a normal start (`Feature flags not initialized!` and
/// `MULTI_MMAP_SUPPORT_CHECK_RESULT should be initialized ...`). Each asks for a process-wide
/// setting that a Qdrant server makes at start, but 0.7.2 keeps both in private modules with no
/// public way to set them, and their defaults are what this server wants. Add them to the host's
/// filter, e.g. `EnvFilter::new(format!("info,{ENGINE_LOG_DIRECTIVES}"))`.
pub const ENGINE_LOG_DIRECTIVES: &str =
    "qdrant_edge::common::flags=error,qdrant_edge::common::mmap::ops=error";

/// Largest gRPC message accepted or sent, as a real Qdrant (tonic's default is 4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;
