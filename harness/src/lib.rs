//! Per-test isolation for queue-and-vector integration tests (see issue 6; grows here).
