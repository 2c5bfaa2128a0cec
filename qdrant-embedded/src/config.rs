//! Server configuration: where to listen, where to keep data, and how large the logs may grow.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Default [`Config::wal_capacity_mb`]: Qdrant's own default `wal_capacity_mb`.
pub const DEFAULT_WAL_CAPACITY_MB: usize = 32;

/// How to start an embedded Qdrant.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free ephemeral port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Directory holding the collections. `None` uses a fresh temporary directory that is
    /// removed when the server stops; a given directory is kept and reopened on restart.
    pub data_dir: Option<PathBuf>,
    /// Size in MiB of one write-ahead log segment of a new collection, and how much of its
    /// operation log accumulates before a checkpoint flushes the collection and empties its logs.
    /// A collection's logs stay within about five times this. Default
    /// [`DEFAULT_WAL_CAPACITY_MB`]; at least 1.
    pub wal_capacity_mb: usize,
    /// Strict-tenant mode, for test runs: a search, query, count, scroll or delete by filter on
    /// a collection with a tenant index (a keyword payload index with `is_tenant: true`) is
    /// refused unless each of its filters has a `must` match on that field. Default off.
    pub strict_tenants: bool,
    /// In strict-tenant mode, requests carrying this API key (`api-key` metadata) are not
    /// checked: a test harness's own upkeep (emptying a collection it reuses) has no tenant.
    pub tenant_exempt_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            data_dir: None,
            wal_capacity_mb: DEFAULT_WAL_CAPACITY_MB,
            strict_tenants: false,
            tenant_exempt_key: None,
        }
    }
}

impl Config {
    /// Listen on the given loopback port (0 = ephemeral).
    pub fn with_port(mut self, port: u16) -> Self {
        self.listen.set_port(port);
        self
    }

    /// Keep data in `dir` (created if missing) instead of a temporary directory.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Turn [`Config::strict_tenants`] on or off.
    pub fn with_strict_tenants(mut self, strict: bool) -> Self {
        self.strict_tenants = strict;
        self
    }

    /// Set [`Config::wal_capacity_mb`].
    pub fn with_wal_capacity_mb(mut self, mb: usize) -> Self {
        self.wal_capacity_mb = mb;
        self
    }

    /// The capacity in bytes, never below 1 MiB.
    pub(crate) fn wal_capacity_bytes(&self) -> usize {
        self.wal_capacity_mb.max(1).saturating_mul(1024 * 1024)
    }
}
