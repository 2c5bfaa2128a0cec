//! Settings: one typed tree, read once from CLI flags and environment variables (clap), with
//! defaults that make `cargo run -p service` work on a newcomer's machine.
//!
//! Every flag has an environment variable; `service --help` lists both. Tests build
//! [`Settings`] in code, starting from [`Settings::default`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser};
use queue::maintenance::{MaintenanceConfig, Retention};
use queue::worker::WorkerConfig;
use queue::{QueueConfig, RetryPolicy};

use crate::index::EmbedderConfig;
use crate::telemetry::LogFormat;
use crate::worker::source::{
    self, RepositoryPolicy, Scheme, DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_SCHEMES,
    DEFAULT_GIT_TIMEOUT_SECS, DEFAULT_LOW_SPEED_BYTES_PER_SEC, DEFAULT_LOW_SPEED_SECS,
    DEFAULT_MAX_BYTES,
};
use crate::worker::IndexConfig;

pub use crate::redact::redact_url;

/// Default of `INTAKE_MAX_BYTES`: request bodies of `POST /index*` in process at once.
pub const DEFAULT_INTAKE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The whole configuration of the service.
#[derive(Clone, Debug, Default, Parser)]
#[command(
    name = "service",
    version,
    about = "Reference queue-and-vector service: HTTP API and indexing workers over a PostgreSQL queue"
)]
pub struct Settings {
    /// HTTP server.
    #[command(flatten)]
    pub server: ServerSettings,
    /// PostgreSQL.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// The queue this instance enqueues on and works.
    #[command(flatten)]
    pub queue: QueueSettings,
    /// The worker pool.
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// Qdrant (external or embedded).
    #[command(flatten)]
    pub qdrant: QdrantSettings,
    /// The embedding model's assets.
    #[command(flatten)]
    pub embedding: EmbeddingSettings,
    /// Which repositories `POST /index/repository` accepts, and git's limits.
    #[command(flatten)]
    pub repository: RepositorySettings,
    /// Log lines.
    #[command(flatten)]
    pub log: LogSettings,
    /// Bearer token of the admin API; without one, every admin request is refused (401).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<SecretString>,
    /// Bearer token of the data endpoints (`/index*`, `/jobs`, `/search`, `/projects`); unset,
    /// they are open. Health, readiness, metrics and the OpenAPI document stay open either way.
    #[arg(long, env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Option<SecretString>,
}

/// How the service logs (which lines: `RUST_LOG`, default [`crate::telemetry::default_filter`]).
#[derive(Clone, Debug, Default, Args)]
pub struct LogSettings {
    /// Log line format on stdout: `text` (coloured only on a terminal) or `json` (one object per
    /// line, spans included).
    #[arg(
        long = "log-format",
        env = "LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::default()
    )]
    pub format: LogFormat,
}

/// Where and how the HTTP server listens.
#[derive(Clone, Debug, Args)]
pub struct ServerSettings {
    /// Address to bind.
    #[arg(long = "host", env = "HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (the bound port is logged and returned by `Application::port`).
    #[arg(long = "port", env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Largest accepted request body in bytes; larger ones get 413.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// Most bytes of `POST /index` and `POST /index/repository` bodies in process at once (a body
    /// without Content-Length counts as BODY_LIMIT_BYTES); a request over it gets 503 with
    /// Retry-After, before its body is read.
    #[arg(long, env = "INTAKE_MAX_BYTES", default_value_t = DEFAULT_INTAKE_MAX_BYTES)]
    pub intake_max_bytes: usize,
    /// Most files in one `POST /index` request.
    #[arg(long, env = "MAX_FILES_PER_REQUEST", default_value_t = 1000)]
    pub max_files_per_request: usize,
    /// Time limit of a request (admin drain excepted), in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight work before releasing its leases, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            body_limit_bytes: 8 * 1024 * 1024,
            intake_max_bytes: DEFAULT_INTAKE_MAX_BYTES,
            max_files_per_request: 1000,
            request_timeout_secs: 30,
            shutdown_timeout_secs: 30,
        }
    }
}

impl ServerSettings {
    /// The socket address to bind.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The request time limit.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    /// The shutdown grace period.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// How to reach PostgreSQL.
#[derive(Clone, Debug, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL; the database is created if missing.
    #[arg(id = "database_url", long = "database-url", env = "DATABASE_URL", default_value = queue::db::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub url: SecretString,
    /// Connections in the pool.
    #[arg(
        long = "database-max-connections",
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10
    )]
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection.
    #[arg(
        long = "database-acquire-timeout-secs",
        env = "DATABASE_ACQUIRE_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub acquire_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from(queue::db::database_url_from_env()),
            max_connections: 10,
            acquire_timeout_secs: 10,
        }
    }
}

/// The queue and its timing.
#[derive(Clone, Debug, Args)]
pub struct QueueSettings {
    /// The queue id this instance enqueues on and works (tests use one each).
    #[arg(long = "queue-id", env = "QUEUE_ID", default_value = "index")]
    pub queue_id: String,
    /// Seconds a claim stays owned without a heartbeat.
    #[arg(long = "lease-secs", env = "QUEUE_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
    /// Milliseconds an idle worker waits for a notification before polling anyway.
    #[arg(
        long = "poll-interval-ms",
        env = "QUEUE_POLL_INTERVAL_MS",
        default_value_t = 2000
    )]
    pub poll_interval_ms: u64,
    /// Attempts per row before it goes to the dead-letter queue.
    #[arg(long = "max-attempts", env = "QUEUE_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: i32,
    /// Milliseconds before the first retry of a transient failure (doubling after).
    #[arg(
        long = "retry-base-ms",
        env = "QUEUE_RETRY_BASE_MS",
        default_value_t = 1000
    )]
    pub retry_base_ms: u64,
    /// Seconds a completed row stays in the queue table before it is pruned.
    #[arg(
        long = "retain-completed-secs",
        env = "QUEUE_RETAIN_COMPLETED_SECS",
        default_value_t = Retention::default().completed_for.as_secs()
    )]
    pub retain_completed_secs: u64,
    /// Most completed rows kept (the newest), whatever their age; unset: only the age counts.
    #[arg(long = "retain-completed-count", env = "QUEUE_RETAIN_COMPLETED_COUNT")]
    pub retain_completed_count: Option<u64>,
    /// Seconds a dead row (with its errors) stays before it is pruned.
    #[arg(
        long = "retain-dead-secs",
        env = "QUEUE_RETAIN_DEAD_SECS",
        default_value_t = Retention::default().dead_for.as_secs()
    )]
    pub retain_dead_secs: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            queue_id: "index".into(),
            lease_secs: 30,
            poll_interval_ms: 2000,
            max_attempts: 5,
            retry_base_ms: 1000,
            retain_completed_secs: Retention::default().completed_for.as_secs(),
            retain_completed_count: Retention::default().completed_keep,
            retain_dead_secs: Retention::default().dead_for.as_secs(),
        }
    }
}

impl QueueSettings {
    /// How long finished rows stay.
    pub fn retention(&self) -> Retention {
        Retention {
            completed_for: Duration::from_secs(self.retain_completed_secs),
            completed_keep: self.retain_completed_count,
            dead_for: Duration::from_secs(self.retain_dead_secs),
        }
    }

    /// The queue core's timing config.
    pub fn queue_config(&self) -> QueueConfig {
        QueueConfig {
            lease: Duration::from_secs(self.lease_secs.max(1)),
            retry: RetryPolicy {
                base: Duration::from_millis(self.retry_base_ms),
                ..RetryPolicy::default()
            },
            poll_interval: Duration::from_millis(self.poll_interval_ms.max(10)),
            // A file row's content is indexed by then, and its results are in the service's
            // own tables; a dead row keeps it for redrive.
            drop_on_complete: vec!["content".to_owned()],
        }
    }
}

/// The worker pool.
#[derive(Clone, Debug, Args)]
pub struct WorkerSettings {
    /// Files indexed at once; 0 runs the API without workers.
    #[arg(long = "workers", env = "WORKER_CONCURRENCY", default_value_t = 3)]
    pub concurrency: usize,
    /// Where repository checkouts are made (a temporary folder each); default: the system temp dir.
    #[arg(long = "scratch-dir", env = "WORKER_SCRATCH_DIR")]
    pub scratch_dir: Option<PathBuf>,
    /// Largest file indexed, in bytes; a larger one fails permanently (or is skipped in a repository).
    #[arg(long = "max-file-bytes", env = "WORKER_MAX_FILE_BYTES", default_value_t = 1024 * 1024)]
    pub max_file_bytes: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 3,
            scratch_dir: None,
            max_file_bytes: 1024 * 1024,
        }
    }
}

impl WorkerSettings {
    /// The worker runtime's config for a queue with the given lease: heartbeats three times a
    /// lease; expired leases rescued and the queue table checked for bloat once a lease.
    pub fn worker_config(&self, queue: &QueueSettings, shutdown_timeout: Duration) -> WorkerConfig {
        let lease = queue.queue_config().lease;
        WorkerConfig {
            concurrency: self.concurrency.max(1),
            heartbeat_interval: (lease / 3).max(Duration::from_millis(100)),
            shutdown_timeout,
            name: format!("service-{}", std::process::id()),
            maintenance: Some(MaintenanceConfig {
                rescue_interval: Some(lease),
                vacuum_interval: Some(lease),
                prune_interval: Some(lease),
                retention: queue.retention(),
            }),
            ..WorkerConfig::default()
        }
    }

    /// What the indexing handler needs to know.
    pub fn index_config(&self, repository: &RepositorySettings) -> IndexConfig {
        IndexConfig {
            scratch_dir: self.scratch_dir.clone(),
            max_file_bytes: self.max_file_bytes,
            repository: repository.policy(),
        }
    }
}

/// Where repositories may come from (`POST /index/repository`) and how long and large a
/// checkout may be. Local sources and private networks are off by default.
#[derive(Clone, Debug, Args)]
pub struct RepositorySettings {
    /// Accept absolute local paths and file:// URLs (any repository readable by the service).
    #[arg(long = "repository-allow-local", env = "REPOSITORY_ALLOW_LOCAL")]
    pub allow_local: bool,
    /// Network schemes accepted: comma-separated from https, http, ssh.
    #[arg(
        long = "repository-allowed-schemes",
        env = "REPOSITORY_ALLOWED_SCHEMES",
        value_delimiter = ',',
        default_value = DEFAULT_ALLOWED_SCHEMES
    )]
    pub allowed_schemes: Vec<Scheme>,
    /// Hosts accepted, comma-separated: `example.com`, `*.example.com` (and its subdomains), an
    /// IP address, or `*` for any host.
    #[arg(
        long = "repository-allowed-hosts",
        env = "REPOSITORY_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = DEFAULT_ALLOWED_HOSTS
    )]
    pub allowed_hosts: Vec<String>,
    /// Accept hosts that are, or resolve to, loopback, private, link-local or other non-public
    /// addresses.
    #[arg(
        long = "repository-allow-private-networks",
        env = "REPOSITORY_ALLOW_PRIVATE_NETWORKS"
    )]
    pub allow_private_networks: bool,
    /// Wall-clock limit of one checkout, in seconds; git (and its children) are killed at it.
    #[arg(long = "repository-git-timeout-secs", env = "REPOSITORY_GIT_TIMEOUT_SECS", default_value_t = DEFAULT_GIT_TIMEOUT_SECS)]
    pub git_timeout_secs: u64,
    /// An http(s) transfer under this many bytes per second for REPOSITORY_LOW_SPEED_SECS is aborted.
    #[arg(long = "repository-low-speed-bytes-per-sec", env = "REPOSITORY_LOW_SPEED_BYTES_PER_SEC", default_value_t = DEFAULT_LOW_SPEED_BYTES_PER_SEC)]
    pub low_speed_bytes_per_sec: u32,
    /// See REPOSITORY_LOW_SPEED_BYTES_PER_SEC (ssh: how long an unanswered server is kept).
    #[arg(long = "repository-low-speed-secs", env = "REPOSITORY_LOW_SPEED_SECS", default_value_t = DEFAULT_LOW_SPEED_SECS)]
    pub low_speed_secs: u64,
    /// Most bytes fetched, and most bytes of files checked out, per repository.
    #[arg(long = "repository-max-bytes", env = "REPOSITORY_MAX_BYTES", default_value_t = DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,
}

impl Default for RepositorySettings {
    fn default() -> Self {
        let policy = RepositoryPolicy::default();
        Self {
            allow_local: policy.allow_local,
            allowed_schemes: policy.schemes,
            allowed_hosts: source::parse_list(DEFAULT_ALLOWED_HOSTS)
                .map(str::to_owned)
                .collect(),
            allow_private_networks: policy.allow_private_networks,
            git_timeout_secs: DEFAULT_GIT_TIMEOUT_SECS,
            low_speed_bytes_per_sec: DEFAULT_LOW_SPEED_BYTES_PER_SEC,
            low_speed_secs: DEFAULT_LOW_SPEED_SECS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl RepositorySettings {
    /// The policy the API and the workers apply.
    pub fn policy(&self) -> RepositoryPolicy {
        RepositoryPolicy {
            allow_local: self.allow_local,
            schemes: self.allowed_schemes.clone(),
            hosts: self
                .allowed_hosts
                .iter()
                .map(|host| host.trim().to_owned())
                .filter(|host| !host.is_empty())
                .collect(),
            allow_private_networks: self.allow_private_networks,
            git_timeout: Duration::from_secs(self.git_timeout_secs.max(1)),
            low_speed_bytes_per_sec: self.low_speed_bytes_per_sec,
            low_speed_time: Duration::from_secs(self.low_speed_secs.max(1)),
            max_bytes: self.max_bytes,
        }
    }
}

/// Qdrant: an external server, or the embedded one with data in a local folder.
#[derive(Clone, Debug, Args)]
pub struct QdrantSettings {
    /// gRPC URL of a Qdrant server (e.g. http://127.0.0.1:6334); unset = embedded Qdrant.
    #[arg(id = "qdrant_url", long = "qdrant-url", env = "QDRANT_URL")]
    pub url: Option<String>,
    /// Data folder of the embedded Qdrant (used when QDRANT_URL is unset).
    #[arg(
        long = "qdrant-data-dir",
        env = "QDRANT_DATA_DIR",
        default_value = ".data/qdrant"
    )]
    pub data_dir: PathBuf,
    /// Collection holding the chunks of every project.
    #[arg(
        long = "qdrant-collection",
        env = "QDRANT_COLLECTION",
        default_value = "code_chunks"
    )]
    pub collection: String,
}

impl Default for QdrantSettings {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from(".data/qdrant"),
            collection: "code_chunks".into(),
        }
    }
}

/// Where the embedding model and ONNX Runtime are (fetched by `scripts/fetch-assets.sh`).
#[derive(Clone, Debug, Default, Args)]
pub struct EmbeddingSettings {
    /// Folder holding model.onnx and the tokenizer files; default: .assets/model.
    #[arg(long = "model-dir", env = "QV_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Absolute path of libonnxruntime.so (1.24+); default: .assets/onnxruntime/.
    #[arg(long = "ort-dylib-path", env = "ORT_DYLIB_PATH")]
    pub ort_dylib_path: Option<PathBuf>,
}

impl EmbeddingSettings {
    /// The embedder config: the given paths, else the repository's `.assets/` folder.
    pub fn embedder_config(&self) -> EmbedderConfig {
        let defaults = EmbedderConfig::from_env();
        EmbedderConfig::new(
            self.model_dir.clone().unwrap_or(defaults.model_dir),
            self.ort_dylib_path
                .clone()
                .unwrap_or(defaults.ort_dylib_path),
        )
    }
}

/// A string that never shows up in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// The secret itself, for the one place that needs it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl FromStr for SecretString {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let secret = SecretString::from("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn the_log_format_is_text_unless_json_is_asked_for() {
        let settings = Settings::try_parse_from(["service"]).expect("flags parse");
        assert_eq!(settings.log.format, LogFormat::Text);
        let settings =
            Settings::try_parse_from(["service", "--log-format", "json"]).expect("flags parse");
        assert_eq!(settings.log.format, LogFormat::Json);
        assert!(Settings::try_parse_from(["service", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn the_cli_parses_with_defaults() {
        let settings = Settings::try_parse_from(["service", "--port", "0", "--workers", "2"])
            .expect("flags parse");
        assert_eq!(settings.server.port, 0);
        assert_eq!(settings.worker.concurrency, 2);
        // The flags' defaults are the code's defaults.
        assert_eq!(
            settings.repository.policy(),
            RepositorySettings::default().policy()
        );
        assert_eq!(
            settings.repository.policy(),
            crate::worker::RepositoryPolicy::default()
        );
        assert_eq!(
            settings.server.intake_max_bytes,
            ServerSettings::default().intake_max_bytes
        );
        assert!(settings.api_token.is_none());
    }

    #[test]
    fn repository_policy_flags_parse() {
        let settings = Settings::try_parse_from([
            "service",
            "--repository-allow-local",
            "--repository-allowed-schemes",
            "https,ssh",
            "--repository-allowed-hosts",
            "git.example.com, *.corp.example",
        ])
        .expect("flags parse");
        let policy = settings.repository.policy();
        assert!(policy.allow_local);
        assert!(!policy.allow_private_networks);
        assert_eq!(policy.schemes, vec![Scheme::Https, Scheme::Ssh]);
        assert_eq!(policy.hosts, vec!["git.example.com", "*.corp.example"]);
        assert!(
            Settings::try_parse_from(["service", "--repository-allowed-schemes", "ftp"]).is_err()
        );
    }
}
