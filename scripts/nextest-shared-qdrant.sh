#!/usr/bin/env bash
# nextest setup script of this repository: one embedded Qdrant shared by every test process of
# the run, in strict-tenant mode, exported to the tests as QDRANT_URL (a QDRANT_URL already set,
# e.g. a real Qdrant, wins). It runs the `nextest-setup` of the qdrant-embedded binary the test
# build made; a user of the harness runs the installed binary the same way (docs/harness.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
binary="$target/debug/qdrant-embedded"
if [ ! -x "$binary" ]; then
    # Not built yet (a filtered run): build it, as the test build would.
    (cd "$root" && cargo build -q --workspace --bin qdrant-embedded)
fi
exec "$binary" nextest-setup --strict-tenants --state-dir "$target/shared-qdrant"
