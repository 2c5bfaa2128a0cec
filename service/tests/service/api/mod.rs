//! End-to-end tests of the service over HTTP (real PostgreSQL, Qdrant, real model), plus
//! handler tests through `router(state).oneshot(..)`.

mod admin;
mod bad_input;
mod handlers;
mod index_and_search;
mod intake;
mod lifecycle;
mod limits;
mod logs;
mod model;
mod openapi;
mod outage;
mod reindex;
mod repository;
mod repository_policy;
