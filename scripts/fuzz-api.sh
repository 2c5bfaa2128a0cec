#!/usr/bin/env bash
# Fuzzes the service's HTTP API from its own OpenAPI document with schemathesis (from PyPI, into
# a virtualenv in the cache folder): every operation, every check (no 5xx, every answer matches
# the document, valid requests accepted and invalid ones refused, ...), a bounded number of
# examples per operation and a bounded time.
#
# The service runs from its binary on a free port, with a database, a queue id and an embedded
# Qdrant data folder of its own (JSON logs, so the run also shows they parse); all are removed at
# the end. The semantic rules a JSON Schema cannot state are in scripts/fuzz-api/hooks.py.
#
# Usage: scripts/fuzz-api.sh [SERVICE_BINARY]   (default: the debug build, built if needed)
#   FUZZ_EXAMPLES  examples per operation and phase (default 30)
#   FUZZ_SEED      hypothesis seed (default fixed, so CI runs are reproducible)
#   FUZZ_TIMEOUT   seconds before the whole run is stopped and fails (default 900)
# The JUnit report is left in $CARGO_TARGET_DIR/fuzz-api-report.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/queue-vector"
target="${CARGO_TARGET_DIR:-$cache/target}"
binary="${1:-}"
version=4.32.5
venv="$cache/schemathesis-$version"
examples="${FUZZ_EXAMPLES:-30}"
seed="${FUZZ_SEED:-20261202}"
budget="${FUZZ_TIMEOUT:-900}"
# Kept after the run (JUnit), next to the build.
report="$target/fuzz-api-report"

log() { printf 'fuzz-api: %s\n' "$*" >&2; }

if [ -z "$binary" ]; then
    # Built (or found up to date) by cargo, which says where it put it.
    binary=$(cd "$root" && cargo build --workspace --bins --message-format=json-render-diagnostics |
        python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "service" \
            and "bin" in message["target"]["kind"]:
        print(message["executable"])
')
fi
[ -x "$binary" ] || { log "no service binary at '$binary'"; exit 1; }

if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
    log "installing schemathesis $version into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

work=$(mktemp -d)
database="qv_fuzz_$$"
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
service_pid=""
cleanup() {
    if [ -n "$service_pid" ] && kill -0 "$service_pid" 2>/dev/null; then
        kill -TERM "$service_pid"
        wait "$service_pid" || true
    fi
    psql -q -h 127.0.0.1 -U postgres -d postgres \
        -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A tiny repository for POST /index/repository to check out (see hooks.py).
git init -q "$work/repo"
printf 'def answer():\n    return 42\n' >"$work/repo/answer.py"
git -C "$work/repo" add answer.py
git -C "$work/repo" -c user.name=fuzz -c user.email=fuzz@localhost commit -q -m fixture

log "starting the service (database $database, logs in $work/service.log)"
env -u QDRANT_URL \
    PORT=0 \
    QUEUE_ID=fuzz \
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database?sslmode=disable" \
    QDRANT_DATA_DIR="$work/qdrant" \
    WORKER_SCRATCH_DIR="$work/scratch" \
    WORKER_CONCURRENCY=2 \
    ADMIN_TOKEN="$token" \
    LOG_FORMAT=json \
    QUEUE_RETRY_BASE_MS=50 \
    "$binary" >"$work/service.log" 2>&1 &
service_pid=$!

# The bound port, from the "service listening" line (every line must be JSON).
address=""
for _ in $(seq 1 120); do
    kill -0 "$service_pid" 2>/dev/null || { cat "$work/service.log" >&2; log "the service exited"; exit 1; }
    address=$(python3 - "$work/service.log" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        event = json.loads(line)
    except ValueError:
        continue  # reported by the check after the run
    if event.get("fields", {}).get("message") == "service listening":
        print(event["fields"]["address"])
        break
PY
    )
    [ -n "$address" ] && break
    sleep 1
done
[ -n "$address" ] || { tail -n 20 "$work/service.log" >&2; log "the service did not start listening"; exit 1; }
for _ in $(seq 1 60); do
    curl -sf "http://$address/readyz" >/dev/null && break
    sleep 1
done
log "service ready at http://$address"

status=0
# From the scratch folder, where schemathesis keeps its example database. Every check runs but
# positive_data_acceptance: the document states a repository's syntax, and the service's
# repository policy (configuration: schemes, hosts, addresses, local sources) refuses more of
# what the syntax allows, with a documented 400.
cd "$work"
SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/scripts/fuzz-api" FUZZ_REPOSITORY_DIR="$work/repo" \
    timeout "$budget" "$venv/bin/st" run "http://$address/openapi.json" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --max-examples "$examples" \
    --seed "$seed" \
    --request-timeout 60 \
    --header "Authorization: Bearer $token" \
    --report junit --report-dir "$report" \
    || status=$?

# Every log line the run produced must still be one JSON object.
python3 - "$work/service.log" <<'PY' || status=1
import json, sys
lines = 0
for number, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        json.loads(line)
    except ValueError:
        sys.exit(f"service.log line {number} is not JSON: {line[:200]!r}")
    lines += 1
print(f"fuzz-api: {lines} service log lines, all JSON", file=sys.stderr)
PY
if [ "$status" -ne 0 ]; then
    log "failed (status $status); the service's last log lines:"
    tail -n 20 "$work/service.log" >&2
fi
exit "$status"
