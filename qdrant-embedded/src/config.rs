//! Server configuration: where to listen and where to keep data.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// How to start an embedded Qdrant.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free ephemeral port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Directory holding the collections. `None` uses a fresh temporary directory that is
    /// removed when the server stops; a given directory is kept and reopened on restart.
    pub data_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            data_dir: None,
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
}
