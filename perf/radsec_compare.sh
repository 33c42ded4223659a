#!/usr/bin/env bash
# RadSec vs UDP on the same box: radshard (one shard, pinned to cpu0) serving perf/bench.toml's
# 1000 local PAP users over UDP and over RadSec (a [radsec] listener added, test PKI from
# `radshard certs`), loaded by `radshard bench` on cpu1: UDP (4 sockets, window 256), RadSec
# over one TLS connection (window 256) and over 100 connections (window 1000), each in
# RADIUS/1.0 and RADIUS/1.1 (`--radius11`: the server negotiates it by ALPN, default allow).
#
#   perf/radsec_compare.sh                     # 3 rounds × 5 s
#   ROUNDS=1 SECS=2 perf/radsec_compare.sh     # smoke check
#
# Prints a markdown table (medians) on stdout, progress on stderr; exits non-zero when any
# request was not accepted.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/radshard}
WORK=$(mktemp -d /tmp/radshard-radsec.XXXXXX)
OUT=$WORK/out
mkdir -p "$OUT"
die() { echo "radsec_compare: $*" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
for p in 11812 12083; do
    ! ss -Hltun "sport = :$p" | grep -q . || die "port $p is in use"
done

"$BIN" certs --out "$WORK/certs" >/dev/null 2>&1
sed "s|users_file = \"bench-users.toml\"|users_file = \"$ROOT/perf/bench-users.toml\"|" \
    "$ROOT/perf/bench.toml" >"$WORK/radsec.toml"
cat >>"$WORK/radsec.toml" <<CONF

[[clients]]
name = "radsec-peers"
addresses = ["127.0.0.1"]
transport = "tls"

[radsec]
listen = ["127.0.0.1:12083"]
max_connections = 1024

[radsec.tls]
certificate = "certs/server.pem"
private_key = "certs/server.key"
ca = "certs/ca.pem"
CONF

taskset -c 0 "$BIN" serve --config "$WORK/radsec.toml" --shards 1 \
    --accounting-dir "$WORK/acct" >"$OUT/radshard.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    "$BIN" bench --server 127.0.0.1:11812 --count 1 --duration 1s --timeout 200ms --quiet \
        --json 2>/dev/null | jq -e '.counts.access_accept == 1' >/dev/null && break
    sleep 0.2
done

run() { # NAME ARGS...
    local name=$1; shift
    timeout --kill-after=5 $((SECS + 60)) taskset -c 1 "$BIN" bench --quiet --json \
        --mode pap --users 1000 --count 5000000 "$@"
}
declare -A ARGS=(
    [udp]="--server 127.0.0.1:11812 --sockets 4 --window 256"
    [tls-1]="--server 127.0.0.1:12083 --radsec $WORK/certs --secret radsec --sockets 1 --window 256"
    [tls-100]="--server 127.0.0.1:12083 --radsec $WORK/certs --secret radsec --sockets 100 --window 1000"
    [v11-1]="--server 127.0.0.1:12083 --radsec $WORK/certs --secret radsec --radius11 --sockets 1 --window 256"
    [v11-100]="--server 127.0.0.1:12083 --radsec $WORK/certs --secret radsec --radius11 --sockets 100 --window 1000"
)
for round in $(seq "$ROUNDS"); do
    for name in udp tls-1 tls-100 v11-1 v11-100; do
        # shellcheck disable=SC2086
        run "$name" ${ARGS[$name]} --duration 1s >/dev/null || true
        # shellcheck disable=SC2086
        run "$name" ${ARGS[$name]} --duration "${SECS}s" >"$OUT/$name-$round.json" ||
            die "$name round $round: loader failed"
        echo "== $name round $round: $(jq -r '"\(.counts.access_accept / .elapsed_s | floor) accepted/s, p99 \(.latency_us.p99) µs, timeouts \(.counts.timeouts)"' "$OUT/$name-$round.json")" >&2
    done
done

python3 - "$OUT" "$ROUNDS" "$SECS" <<'PY'
import glob, json, os, statistics, sys
out, rounds, secs = sys.argv[1:4]
label = {"udp": "UDP, 4 sockets, window 256", "tls-1": "RadSec, 1 connection, window 256",
         "tls-100": "RadSec, 100 connections, window 1000 (10 each)",
         "v11-1": "RadSec RADIUS/1.1, 1 connection, window 256",
         "v11-100": "RadSec RADIUS/1.1, 100 connections, window 1000 (10 each)"}
print(f"### radshard (1 shard, cpu0), PAP accepts, loader on cpu1 ({rounds} × {secs} s, medians)\n")
print("| transport | accepted/s | p50 µs | p99 µs | rounds (accepted/s) | failures |")
print("| --- | ---: | ---: | ---: | --- | ---: |")
failed = False
for name in ("udp", "tls-1", "tls-100", "v11-1", "v11-100"):
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, f"{name}-*.json")))]
    acc = [r["counts"]["access_accept"] / r["elapsed_s"] for r in runs]
    errors = sum(r["counts"][k] for r in runs for k in ("timeouts", "bad_authenticator", "malformed", "unmatched", "unexpected", "access_reject"))
    failed |= errors > 0
    print(f"| {label[name]} | {statistics.median(acc):,.0f} | {statistics.median(r['latency_us']['p50'] for r in runs):,} "
          f"| {statistics.median(r['latency_us']['p99'] for r in runs):,} | {', '.join(f'{a/1000:.1f}k' for a in acc)} | {errors} |")
print(f"\nRaw reports: {out}")
sys.exit(1 if failed else 0)
PY
