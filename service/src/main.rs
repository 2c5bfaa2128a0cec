//! The service binary. The HTTP API and worker pool land with issue 5; until then this says so.

fn main() {
    eprintln!(
        "service: the HTTP API and worker pool are not built yet (issue 5). \
         The queue core is usable as a library: see docs/architecture.md."
    );
    std::process::exit(2);
}
