#!/usr/bin/env bash
# Side by side on one PostgreSQL: graphile-worker 0.17.3 "batched" (local queue of 500,
# completions and failures batched with no delay) against this repository's worker runtime. Each
# run burns down JOBS pre-enqueued no-op jobs, timed from the worker's start to the last
# completion committed (enqueueing untimed). Runs are interleaved (graphile, ours, graphile,
# ours...), ROUNDS of each configuration; each side's figure is the median of its best
# concurrency. Prints both figures and the ratio ours/graphile.
#
# Usage: scripts/bench-vs-graphile.sh
# Environment (defaults in brackets):
#   BENCH_DATABASE_URL     [postgres://postgres@127.0.0.1:5432/queue_bench?sslmode=disable]
#                          a database of the benchmark's own (created when missing, migrated by
#                          the queue crate only: a test database also carries the harness's
#                          audit triggers, which production does not)
#   JOBS [20000]  ROUNDS [3]
#   GRAPHILE_CONCURRENCY   ["8 16"]           graphile-worker's concurrentJobs to try
#   OURS_CONCURRENCY       ["256 1024"]       the worker runtime's concurrency to try (also the
#                          most rows one statement claims, as graphile-worker's local queue of
#                          500 is)
#   OURS_WORKERS [2]       workers (dispatchers) on the queue, each with that concurrency: each
#                          has one claim-and-complete statement in flight, so 2 keep PostgreSQL's
#                          two cores busy, as graphile-worker's concurrent fetches and
#                          completion batches do
#   OURS_THREADS [2]       tokio worker threads (node runs graphile-worker's JavaScript on one,
#                          its PostgreSQL driver's I/O on others)
#   CLIENT_CPUS            e.g. "1": pins both clients to these CPUs with taskset
#   GRAPHILE_BENCH_DIR     [.bench/graphile-worker] where graphile-worker is installed (npm ci)
#
# Needs node >= 18 with npm, and cargo. graphile-worker works in a schema of its own
# (graphile_bench_<pid>, dropped at exit), the queue in a fresh queue_id whose rows it deletes.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/queue_bench?sslmode=disable}"
JOBS="${JOBS:-20000}"
ROUNDS="${ROUNDS:-3}"
GRAPHILE_CONCURRENCY="${GRAPHILE_CONCURRENCY:-8 16}"
OURS_CONCURRENCY="${OURS_CONCURRENCY:-256 1024}"
OURS_WORKERS="${OURS_WORKERS:-2}"
OURS_THREADS="${OURS_THREADS:-2}"
install_dir="${GRAPHILE_BENCH_DIR:-${repo}/.bench/graphile-worker}"
schema="graphile_bench_$$"

log() { echo "bench-vs-graphile: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
command -v cargo >/dev/null || die "cargo is not installed"
pin=()
if [[ -n "${CLIENT_CPUS:-}" ]]; then
    pin=(taskset -c "$CLIENT_CPUS")
fi

# graphile-worker, exactly as the lock file says, into a git-ignored folder.
src="${repo}/scripts/graphile-bench"
mkdir -p "$install_dir"
if ! cmp -s "$src/package-lock.json" "$install_dir/package-lock.json" \
    || [[ ! -d "$install_dir/node_modules/graphile-worker" ]]; then
    log "installing graphile-worker into $install_dir"
    cp "$src/package.json" "$src/package-lock.json" "$install_dir/"
    (cd "$install_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
cp "$src/burn-down.mjs" "$install_dir/"
version=$(node -p 'require(process.argv[1]).version' "$install_dir/node_modules/graphile-worker/package.json")
[[ "$version" == "0.17.3" ]] || die "graphile-worker $version installed, expected 0.17.3"

log "building the queue's burn-down driver (release)"
cargo build --release --quiet -p queue --example burn_down >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
ours_bin="${target_dir}/release/examples/burn_down"

results=$(mktemp)
cleanup() {
    rm -f "$results"
    (cd "$install_dir" && node burn-down.mjs --drop --schema "$schema") \
        || log "could not drop schema $schema"
}
trap cleanup EXIT

graphile() {
    (cd "$install_dir" && "${pin[@]}" node burn-down.mjs --jobs "$1" --concurrency "$2" --schema "$schema")
}
ours() {
    "${pin[@]}" "$ours_bin" --jobs "$1" --concurrency "$2" --workers "$OURS_WORKERS" --threads "$OURS_THREADS"
}
# Runs one side and keeps its RESULT line.
record() {
    local out
    out=$("$@") || die "run failed: $*"
    grep -v '^RESULT ' <<<"$out" >&2 || true
    grep '^RESULT ' <<<"$out" >>"$results"
}

# Other work on the machine (CPU, and disk: it slows every commit) slows both sides, not
# equally: the load is printed so a noisy run can be recognised.
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Untimed warm-up of both (ours first: it creates the database when missing; then
# graphile-worker's schema; both fill caches).
log "warm-up"
ours 2000 8 >/dev/null
graphile 2000 8 >/dev/null

read -r -a gc <<<"$GRAPHILE_CONCURRENCY"
read -r -a oc <<<"$OURS_CONCURRENCY"
pairs=$(( ${#gc[@]} > ${#oc[@]} ? ${#gc[@]} : ${#oc[@]} ))
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    for ((i = 0; i < pairs; i++)); do
        if (( i < ${#gc[@]} )); then record graphile "$JOBS" "${gc[i]}"; fi
        if (( i < ${#oc[@]} )); then record ours "$JOBS" "${oc[i]}"; fi
    done
done

log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Median per (runner, concurrency), then each runner's best median.
node - "$results" <<'EOF'
const fs = require("fs");
const runs = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map((line) =>
  Object.fromEntries(line.split(" ").slice(1).map((kv) => kv.split("="))));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const best = {};
console.log("\nmedians (jobs/s, worker start -> last completion committed):");
for (const runner of ["graphile-worker", "queue-vector"]) {
  const byConcurrency = {};
  for (const r of runs.filter((r) => r.runner === runner)) {
    (byConcurrency[r.concurrency] ??= []).push(r);
  }
  for (const [c, rs] of Object.entries(byConcurrency)) {
    const xs = rs.map((r) => Number(r.jobs_per_s));
    const m = median(xs);
    const steady = median(rs.map((r) => Number(r.steady_jobs_per_s)));
    console.log(`  ${runner.padEnd(16)} concurrency ${c.padStart(3)}: ${m.toFixed(0).padStart(6)}  ` +
      `(runs: ${xs.map((x) => x.toFixed(0)).join(", ")}; from the first job's start: ${steady.toFixed(0)})`);
    const { workers, threads } = runs.find((r) => r.runner === runner && r.concurrency === c);
    if (!best[runner] || m > best[runner].m) best[runner] = { m, c, n: xs.length, workers, threads };
  }
}
const g = best["graphile-worker"], o = best["queue-vector"];
const k = (x) => `${(x / 1000).toFixed(1)}k jobs/s`;
console.log(`\ngraphile-worker 0.17.3 batched: ${k(g.m)} (concurrency ${g.c}, median of ${g.n}); ` +
  `queue-vector: ${k(o.m)} (concurrency ${o.c}, ${o.workers} worker(s), ${o.threads} thread(s), median of ${o.n}); ratio ${(o.m / g.m).toFixed(2)}`);
EOF
