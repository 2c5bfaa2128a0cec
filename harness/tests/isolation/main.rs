//! The harness's promise, tested: parallel environments on shared servers never see each other,
//! cleanup survives panics and kills, and the isolation checker catches the mistakes.

mod assertions;
mod checker;
mod cleanup;
mod helpers;
mod inline;
mod schema;
mod seed_race;
mod session;
mod sweep;
mod waits;
