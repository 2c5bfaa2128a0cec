//! Empty: a build script is what makes `[build-dependencies]` (the proc macros' and build
//! scripts' feature set) part of the build.
fn main() {}
