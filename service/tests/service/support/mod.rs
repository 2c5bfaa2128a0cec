//! The reference service's bindings to the harness: what its tests share.

mod app;
mod index;

pub use app::{
    accepted_job_id, env_database_url, spawn_app, spawn_app_with, TestApp, TestResult, ADMIN_TOKEN,
    DEADLINE,
};
pub use index::{embedder, fixture, fixtures_dir, TestIndex};
