#!/usr/bin/env bash
# The session table's cost on the accounting fast path: radshard (one shard, pinned to cpu0)
# with perf/bench.toml, `[sessions]` on (the default) and off, loaded by
# `radshard bench --mode acct` on cpu1 (each session a Start, an Interim-Update and a Stop,
# every record fdatasync'ed before its response). Rounds alternate on/off so that drift on
# the shared machine falls on both.
#
#   perf/sessions_compare.sh                     # 3 rounds × 5 s
#   ROUNDS=1 SECS=2 perf/sessions_compare.sh     # smoke check
#
# Prints a markdown table (medians) on stdout, progress on stderr; exits non-zero when any
# request went unanswered.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/radshard}
WORK=$(mktemp -d /tmp/radshard-sessions.XXXXXX)
OUT=$WORK/out
mkdir -p "$OUT"
die() { echo "sessions_compare: $*" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
! ss -Hlun "sport = :11813" | grep -q . || die "port 11813 is in use"

for table in on off; do
    sed "s|users_file = \"bench-users.toml\"|users_file = \"$ROOT/perf/bench-users.toml\"|" \
        "$ROOT/perf/bench.toml" >"$WORK/$table.toml"
    enabled=$([ $table = on ] && echo true || echo false)
    printf '\n[sessions]\nenabled = %s\n' "$enabled" >>"$WORK/$table.toml"
done

PID=
stop_server() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }; }
trap stop_server EXIT
serve() { # on|off
    rm -rf "$WORK/acct"
    taskset -c 0 "$BIN" serve --config "$WORK/$1.toml" --shards 1 \
        --accounting-dir "$WORK/acct" >"$OUT/radshard-$1.log" 2>&1 &
    PID=$!
    for _ in $(seq 50); do
        "$BIN" bench --server 127.0.0.1:11812 --count 1 --duration 1s --timeout 200ms --quiet \
            --json 2>/dev/null | jq -e '.counts.access_accept == 1' >/dev/null && return
        sleep 0.2
    done
    die "radshard ($1) did not start"
}
run() { # SECONDS
    timeout --kill-after=5 $(($1 + 60)) taskset -c 1 "$BIN" bench --quiet --json \
        --mode acct --server 127.0.0.1:11812 --acct-server 127.0.0.1:11813 --users 1000 \
        --sockets 4 --window 256 --count 50000000 --duration "${1}s"
}
for round in $(seq "$ROUNDS"); do
    for table in on off; do
        serve $table
        run 1 >/dev/null || true
        run "$SECS" >"$OUT/$table-$round.json" || die "$table round $round: loader failed"
        echo "== sessions $table round $round: $(jq -r '"\(.counts.accounting_response / .elapsed_s | floor) responses/s, p99 \(.latency_us.p99) µs, timeouts \(.counts.timeouts)"' "$OUT/$table-$round.json")" >&2
        stop_server
    done
done

python3 - "$OUT" "$ROUNDS" "$SECS" <<'PY'
import glob, json, os, statistics, sys
out, rounds, secs = sys.argv[1:4]
print(f"### Accounting with the session table on and off: radshard 1 shard (cpu0), loader on cpu1 ({rounds} × {secs} s, medians)\n")
print("| session table | responses/s | p50 µs | p99 µs | rounds (responses/s) | failures |")
print("| --- | ---: | ---: | ---: | --- | ---: |")
failed, med = False, {}
for name in ("on", "off"):
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, f"{name}-*.json")))]
    rate = [r["counts"]["accounting_response"] / r["elapsed_s"] for r in runs]
    errors = sum(r["counts"][k] for r in runs for k in ("timeouts", "bad_authenticator", "malformed", "unmatched", "unexpected"))
    failed |= errors > 0
    med[name] = statistics.median(rate)
    print(f"| {name} | {med[name]:,.0f} | {statistics.median(r['latency_us']['p50'] for r in runs):,} "
          f"| {statistics.median(r['latency_us']['p99'] for r in runs):,} | {', '.join(f'{a/1000:.1f}k' for a in rate)} | {errors} |")
print(f"\nTable on / off: {med['on'] / med['off']:.3f}× (target ≥ 0.90×)\n\nRaw reports: {out}")
sys.exit(1 if failed else 0)
PY
