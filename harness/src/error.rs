//! The harness's errors: each says what to set or check.

/// What can go wrong while provisioning, waiting or cleaning up.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// PostgreSQL could not be reached or refused a statement.
    #[error("PostgreSQL ({context}): {source}. Is it running? Set DATABASE_URL to point at it.")]
    Postgres {
        /// What the harness was doing.
        context: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Qdrant could not be reached or refused a request.
    #[error("Qdrant ({context}): {source}. Set QDRANT_URL to a reachable Qdrant gRPC endpoint, or unset it for the embedded one.")]
    Qdrant {
        /// What the harness was doing.
        context: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A wait ran out; the message carries a dump of the environment's state.
    #[error("timed out after {timeout:?} waiting for {what}\n{dump}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: std::time::Duration,
        /// The queue's rows by status, last errors and recent log lines.
        dump: String,
    },
    /// The environment's namespace was taken from it while the test ran: its session's
    /// connection dropped and another process reaped or took the namespace before the session
    /// came back. The test's queue rows and data may be gone.
    #[error("test environment {namespace} lost its namespace: {reason}; the test cannot be trusted, rerun it")]
    NamespaceLost {
        /// The namespace.
        namespace: String,
        /// What happened.
        reason: String,
    },
    /// A condition a test waited for ([`crate::wait_for`]) could not be checked.
    #[error("checking {what}: {source}")]
    Check {
        /// What was awaited.
        what: String,
        /// Why the check failed.
        #[source]
        source: BoxError,
    },
    /// An assertion of the test failed (e.g. [`crate::TestEnv::assert_enqueued`]); the message
    /// says what was expected and what was found.
    #[error("{0}")]
    Assertion(String),
    /// The test broke isolation.
    #[error("isolation broken: {0}")]
    Isolation(String),
    /// An option that cannot work.
    #[error("harness configuration: {0}")]
    Config(String),
    /// Serving an app failed.
    #[error("serving the app: {0}")]
    App(#[source] std::io::Error),
}

impl HarnessError {
    pub(crate) fn pg(
        context: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> HarnessError {
        move |source| HarnessError::Postgres { context, source }
    }

    pub(crate) fn qdrant(
        context: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> HarnessError {
        move |source| HarnessError::Qdrant { context, source }
    }
}

/// Any error, boxed: what a [`crate::wait_for`] check may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Boxes any error for [`HarnessError`]'s sources.
pub(crate) fn boxed<E: std::error::Error + Send + Sync + 'static>(
    e: E,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}
