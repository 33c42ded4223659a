#!/usr/bin/env bash
# radshard before/after: two radshard binaries under the same loader, pinned the way
# perf/compare.sh pins (server `taskset -c 0 … --shards 1`, loader `taskset -c 1`), rounds
# alternating which binary goes first. Records requests/s and the server's CPU time per reply.
# See perf/README.md.
#
#   BASE=/tmp/base/target/release/radshard perf/ab.sh            # A = BASE, B = target/release
#   BASE=… B=… LOADER=… ROUNDS=5 SECS=5 WORKLOADS="pap acct chap" perf/ab.sh
#
# Writes the "radshard before/after (perf/ab.sh)" section of $RESULTS (default perf/RESULTS.md;
# other sections are left alone) and keeps every raw JSON report under $OUT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${BASE:?set BASE=/path/to/the/baseline/radshard (see perf/README.md)}
B=${B:-$ROOT/target/release/radshard}
LOADER=${LOADER:-$B}                 # one loader binary for both sides: the new one by default
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
WORKLOADS=${WORKLOADS:-"pap acct"}   # any of: pap acct chap
SOCKETS=${SOCKETS:-4}
WINDOW=${WINDOW:-256}
MAX_COUNT=${MAX_COUNT:-5000000}      # every run is bounded by count as well as by time
WARMUP=${WARMUP:-1}                  # seconds of warm-up load before each measured run
TOLERANCE=${TOLERANCE:-5}            # percent, for the "within" column
QUIET_WAIT=${QUIET_WAIT:-0}          # as in compare.sh: wait up to N s for load average < QUIET_LOAD
QUIET_LOAD=${QUIET_LOAD:-0.5}
RESULTS=${RESULTS:-$ROOT/perf/RESULTS.md}
CONFIG=${CONFIG:-$ROOT/perf/bench.toml}
# If the change also changed the configuration format, the baseline can run its own copy
# (e.g. BASE_CONFIG=/tmp/base/perf/bench.toml); it must listen on the same addresses.
BASE_CONFIG=${BASE_CONFIG:-$CONFIG}
WORK=$(mktemp -d /tmp/radshard-ab.XXXXXX)
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT"

AUTH=127.0.0.1:11812 ACCT=127.0.0.1:11813      # as in perf/bench.toml

log() { echo "== $*" >&2; }
die() { log "$*"; exit 1; }

command -v jq >/dev/null || die "jq is needed (apt-get install -y jq)"
for bin in "$BASE" "$B" "$LOADER"; do
    [ -x "$bin" ] || die "$bin is not an executable (build it first; see perf/README.md)"
done
for w in $WORKLOADS; do
    case $w in pap | acct | chap) ;; *) die "unknown workload '$w' (pap, acct, chap)" ;; esac
done

# shellcheck source=perf/server_cpu.sh
. "$ROOT/perf/server_cpu.sh"

# A label for a binary: BASE_LABEL / NEW_LABEL if given, else `git describe` of the checkout
# the binary sits in (a worktree's target/release/radshard), else its path. The sha256 and
# mtime are recorded as well, so the two binaries are identified even without a label.
describe() {
    local bin=$1 dir
    dir=$(dirname "$(readlink -f "$bin")")
    if git -C "$dir" rev-parse --git-dir >/dev/null 2>&1; then
        echo "$(git -C "$dir" describe --always --dirty 2>/dev/null) (HEAD of $(git -C "$dir" rev-parse --show-toplevel); not checked against the binary)"
    else
        echo "$bin"
    fi
}
BASE_LABEL=${BASE_LABEL:-$(describe "$BASE")}
NEW_LABEL=${NEW_LABEL:-$(describe "$B")}
LOADER_LABEL=${LOADER_LABEL:-$(describe "$LOADER")}
binfo() {
    jq -n --arg path "$1" --arg lbl "$2" --arg sha "$(sha256sum "$1" | cut -c1-12)" \
        --arg mtime "$(date -u -r "$1" '+%Y-%m-%d %H:%M UTC')" --arg version "$("$1" --version 2>/dev/null || true)" \
        '{path: $path, "label": $lbl, sha256_12: $sha, mtime: $mtime, version: $version}'
}

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

port_busy() { ss -Hulnp "( sport = :${AUTH##*:} or sport = :${ACCT##*:} )" 2>/dev/null | grep -q .; }

# start_server SIDE BIN: pinned, one shard, in the background; waits until a PAP request is
# accepted by *this* process (the ports must be free first, or the check could be answered by
# someone else's server).
start_server() {
    local side=$1 bin=$2 config=$CONFIG
    if [ "$side" = A ]; then config=$BASE_CONFIG; fi
    if port_busy; then
        die "${AUTH##*:}/${ACCT##*:} are already bound (another compare.sh/ab.sh run?): $(ss -Hulnp "( sport = :${AUTH##*:} or sport = :${ACCT##*:} )" | tr -s ' ' | head -2)"
    fi
    rm -rf /tmp/radshard-bench/accounting
    taskset -c 0 "$bin" serve --config "$config" --shards 1 >>"$OUT/server-$side.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$OUT/server-$side.log" >&2; die "$side ($bin) exited"; }
        if "$LOADER" bench --server "$AUTH" --count 1 --timeout 200ms --quiet --json 2>/dev/null |
            jq -e '.counts.access_accept == 1' >/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    tail -20 "$OUT/server-$side.log" >&2; die "$side ($bin) did not answer"
}

workload_args() {
    case $1 in
    pap) echo "--mode pap --window $WINDOW" ;;
    acct) echo "--mode acct --window $WINDOW" ;;
    chap) echo "--mode chap --window $WINDOW" ;;
    esac
}

# load SECONDS OUTFILE ARGS...: one bounded, pinned `radshard bench` run, JSON to OUTFILE.
load() {
    local secs=$1 out=$2; shift 2
    taskset -c 1 "$LOADER" bench --server "$AUTH" --acct-server "$ACCT" --sockets "$SOCKETS" \
        --count "$MAX_COUNT" --duration "${secs}s" --quiet --json "$@" >"$out"
}

wait_quiet() {
    local waited=0
    while [ "$waited" -lt "$QUIET_WAIT" ] &&
        awk -v t="$QUIET_LOAD" '{ exit !($1 >= t) }' /proc/loadavg; do
        sleep 1; waited=$((waited + 1))
    done
}

STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
log "A (baseline) = $BASE [$BASE_LABEL]"
log "B (new)      = $B [$NEW_LABEL]"
log "loader       = $LOADER; $ROUNDS rounds × ${SECS}s; workloads: $WORKLOADS; raw reports in $OUT"

# Written first so perf/ab_summarize.py can also summarise an interrupted run's $OUT.
server_cmd="taskset -c 0 BIN serve --config ${CONFIG#"$ROOT"/} --shards 1"
[ "$BASE_CONFIG" = "$CONFIG" ] || server_cmd+=" (A: --config $BASE_CONFIG)"
loader_cmd="taskset -c 1 LOADER bench --server $AUTH --acct-server $ACCT --sockets $SOCKETS --count $MAX_COUNT --duration ${SECS}s --quiet --json --mode MODE --window $WINDOW"
jq -n --arg started "$STARTED" --argjson rounds "$ROUNDS" --argjson secs "$SECS" \
    --arg workloads "$WORKLOADS" --argjson warmup "$WARMUP" --argjson tolerance "$TOLERANCE" \
    --arg server_cmd "$server_cmd" --arg loader_cmd "$loader_cmd" \
    --argjson a "$(binfo "$BASE" "$BASE_LABEL")" --argjson b "$(binfo "$B" "$NEW_LABEL")" \
    --argjson loader "$(binfo "$LOADER" "$LOADER_LABEL")" \
    '{started: $started, rounds: $rounds, secs: $secs, workloads: ($workloads | split(" ") | map(select(. != ""))),
      warmup_s: $warmup, tolerance_pct: $tolerance, server_cmd: $server_cmd, loader_cmd: $loader_cmd,
      a: $a, b: $b, loader: $loader}' >"$OUT/meta.json"

for workload in $WORKLOADS; do
    for round in $(seq "$ROUNDS"); do
        # Alternate who goes first so drift (thermal, page cache, neighbours) favours neither.
        if [ $((round % 2)) = 1 ]; then order="A B"; else order="B A"; fi
        for side in $order; do
            if [ "$side" = A ]; then bin=$BASE; else bin=$B; fi
            start_server "$side" "$bin"
            # Short warm-up: caches, socket buffers, the accounting file.
            load "$WARMUP" /dev/null $(workload_args "$workload") || true
            f="$OUT/$workload-$side-$round.json"
            wait_quiet
            echo "$workload-$side-$round $(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/loadavg.txt"
            before=$(cpu_snapshot "$SERVER_PID") || die "$side server exited before the run"
            load "$SECS" "$f.bench" $(workload_args "$workload")
            after=$(cpu_snapshot "$SERVER_PID") || die "$side server exited during the run"
            cpu_attach "$f.bench" "$(cpu_json "$before" "$after")" "$f"
            rm -f "$f.bench"
            log "$workload $side round $round: $(jq -r '"\(.requests_per_s|floor)/s, server CPU \((.server_cpu.us_per_reply // 0) * 100 | round / 100) µs/req (\(.server_cpu.source)), waited \(if .server_cpu.wait_ns == null then "?" else (.server_cpu.wait_ns / 1e6 | round) end) ms for a CPU, p99 \(.latency_us.p99)µs, timeouts \(.counts.timeouts) bad \(.counts.bad_authenticator + .counts.malformed + .counts.unmatched) unexpected \(.counts.unexpected)"' "$f")"
            stop_server
        done
    done
done

python3 "$ROOT/perf/ab_summarize.py" "$OUT" "$RESULTS"
log "raw reports in $OUT; summary in $RESULTS"
