#!/usr/bin/env bash
# How fast can one loader core go? `radshard bench` on cpu1 against the trivial responder
# (`radshard bench --responder`) on cpu0. Prints the bench report plus the CPU time each side
# used, since on a shared machine a rate below the ceiling can come from either side being
# descheduled rather than from the loader's own cost.
#
#   perf/loader_ceiling.sh [SECONDS] [extra bench args...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/radshard
SECS=${1:-5}; shift || true
ADDR=127.0.0.1:18999

taskset -c 0 "$BIN" bench --responder "$ADDR" 2>/dev/null &
RESP=$!
trap 'kill "$RESP" 2>/dev/null || true' EXIT
sleep 0.3
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
r0=$(ticks "$RESP")
start=$(date +%s.%N)
taskset -c 1 "$BIN" bench --server "$ADDR" --duration "${SECS}s" --count 50000000 --quiet --json "$@" \
    >/tmp/loader_ceiling.json &
LOADER=$!
# Sample the loader's CPU time just before it exits.
l=0
while kill -0 "$LOADER" 2>/dev/null; do
    l=$(ticks "$LOADER" 2>/dev/null || echo "$l"); sleep 0.05
done
wait "$LOADER"
end=$(date +%s.%N)
r1=$(ticks "$RESP")
jq -c '{requests_per_s: (.requests_per_s|floor), p50_us: .latency_us.p50, p99_us: .latency_us.p99,
        timeouts: .counts.timeouts, bad: (.counts.bad_authenticator + .counts.malformed + .counts.unmatched)}' \
    /tmp/loader_ceiling.json
awk -v l="$l" -v r="$((r1 - r0))" -v hz="$hz" -v s="$start" -v e="$end" \
    -v rate="$(jq .requests_per_s /tmp/loader_ceiling.json)" 'BEGIN {
    wall = e - s; lc = l / hz; rc = r / hz;
    printf "wall %.2f s; loader CPU %.2f s (%.0f%% of its core); responder CPU %.2f s (%.0f%%); load avg %s\n",
        wall, lc, 100 * lc / wall, rc, 100 * rc / wall, "'"$(cut -d' ' -f1-3 /proc/loadavg)"'";
    if (lc > 0) printf "requests per loader CPU-second: %.0f\n", rate * wall / lc;
}'
