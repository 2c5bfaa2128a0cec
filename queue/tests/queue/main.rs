//! Queue core against a real PostgreSQL; every test in its own `queue_id`.

mod helpers;

mod claim;
mod cluster;
mod control;
mod enqueue;
mod lease;
mod maintenance;
mod migrate;
mod namespace;
mod notify;
mod outage;
mod retention;
mod retry;
mod vacuum;
mod worker;
