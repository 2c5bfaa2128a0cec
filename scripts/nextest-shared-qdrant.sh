#!/usr/bin/env bash
# nextest setup script: one embedded Qdrant shared by every test process of the run (and reused by
# later runs), exported to the tests as QDRANT_URL. This is the shared-server case the harness
# exists for. A QDRANT_URL already set (a real Qdrant) wins.
set -euo pipefail
if [ -n "${QDRANT_URL:-}" ]; then
    echo "QDRANT_URL=${QDRANT_URL}" >> "$NEXTEST_ENV"
    exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
state="$target/shared-qdrant"
mkdir -p "$state"

healthy() { # port
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

exec 9>"$state/lock"
flock 9
if [ -f "$state/port" ] && healthy "$(cat "$state/port")"; then
    echo "QDRANT_URL=http://127.0.0.1:$(cat "$state/port")" >> "$NEXTEST_ENV"
    exit 0
fi
# The test build already made the binary (qdrant-embedded has integration tests); building it
# here with `-p` would resolve features differently and recompile qdrant-edge.
binary="$target/debug/qdrant-embedded"
if [ ! -x "$binary" ]; then
    binary=$(cd "$root" && cargo build -q -p qdrant-embedded --bin qdrant-embedded --message-format=json \
        | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "qdrant-embedded":
        print(m["executable"])')
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$state/data"
# fd 9 holds the lock: the server must not inherit it.
setsid nohup "$binary" --port "$port" --data-dir "$state/data" >"$state/server.log" 2>&1 </dev/null 9>&- &
for _ in $(seq 1 100); do
    if healthy "$port"; then
        echo "$port" > "$state/port"
        echo "QDRANT_URL=http://127.0.0.1:$port" >> "$NEXTEST_ENV"
        exit 0
    fi
    sleep 0.1
done
echo "shared embedded Qdrant did not start; see $state/server.log" >&2
exit 1
