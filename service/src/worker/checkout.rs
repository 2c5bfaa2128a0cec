//! [`CheckoutError`]: why a repository could not be checked out, as clients see it (a short
//! category, never git's own text). Below the source policy, git and the repository rows, which
//! all produce it.

use std::time::Duration;

use queue::FailureKind;

/// Why a repository could not be checked out. Each message starts with a short category
/// ([`CheckoutError::category`]) and says nothing git printed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The location or the ref is not well-formed.
    #[error("invalid_request: {0}")]
    Invalid(String),
    /// The location is well-formed but the policy does not allow it.
    #[error("refused: {0}")]
    Refused(String),
    /// The host is, or resolves to, a non-public address, and private networks are not allowed.
    #[error("blocked_address: {host} is or resolves to a loopback, private or link-local address (REPOSITORY_ALLOW_PRIVATE_NETWORKS)")]
    BlockedAddress {
        /// The host as given.
        host: String,
    },
    /// DNS gave no address for the host.
    #[error("unresolvable: the host {host} could not be resolved")]
    Unresolvable {
        /// The host as given.
        host: String,
    },
    /// The server could not be reached, or dropped the connection.
    #[error("unreachable: the repository's server could not be reached")]
    Unreachable,
    /// git ran past the checkout's wall-clock limit and was killed.
    #[error("timeout: the checkout did not finish within {} s; git was stopped", limit.as_secs())]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// The transfer stayed under the low-speed limit.
    #[error("too_slow: the transfer stayed under the low-speed limit and was aborted")]
    TooSlow,
    /// The fetch or the checkout is over the size cap.
    #[error("too_large: the repository is over the {limit}-byte limit")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The server refused access (credentials in URLs are never used).
    #[error("auth_failed: the server refused access")]
    AuthFailed,
    /// No repository at that location.
    #[error("not_found: no repository at that location")]
    NotFound,
    /// The repository has no such branch, tag or commit.
    #[error("unknown_ref: the repository has no such branch, tag or commit")]
    UnknownRef,
    /// `git` could not be run at all.
    #[error("git_unavailable: git could not be run")]
    Spawn(#[source] std::io::Error),
    /// git failed in a way not classified above (its text is in the service's log).
    #[error("git_failed: git {command} failed")]
    Git {
        /// Which git command.
        command: &'static str,
    },
}

impl CheckoutError {
    /// The short category clients see, e.g. `timeout` or `unknown_ref`.
    pub fn category(&self) -> &'static str {
        match self {
            CheckoutError::Invalid(_) => "invalid_request",
            CheckoutError::Refused(_) => "refused",
            CheckoutError::BlockedAddress { .. } => "blocked_address",
            CheckoutError::Unresolvable { .. } => "unresolvable",
            CheckoutError::Unreachable => "unreachable",
            CheckoutError::Timeout { .. } => "timeout",
            CheckoutError::TooSlow => "too_slow",
            CheckoutError::TooLarge { .. } => "too_large",
            CheckoutError::AuthFailed => "auth_failed",
            CheckoutError::NotFound => "not_found",
            CheckoutError::UnknownRef => "unknown_ref",
            CheckoutError::Spawn(_) => "git_unavailable",
            CheckoutError::Git { .. } => "git_failed",
        }
    }

    /// Network trouble may pass (retry); a refused, missing, oversized or too slow to fetch
    /// repository will not (a timeout would only hold a worker that long again).
    pub(super) fn kind(&self) -> FailureKind {
        match self {
            CheckoutError::Unresolvable { .. }
            | CheckoutError::Unreachable
            | CheckoutError::TooSlow
            | CheckoutError::Spawn(_)
            | CheckoutError::Git { .. } => FailureKind::Transient,
            _ => FailureKind::Permanent,
        }
    }
}
