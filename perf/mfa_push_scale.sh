#!/usr/bin/env bash
# Pending pushes at scale: what N simultaneously held push authentications cost radshard in
# memory (RSS of the server process alone) and what they do to fast-path throughput (local
# PAP users and accounting, no MFA).
#
#   N=10000 DELAY=60 POLL=5s SECS=5 ROUNDS=3 perf/mfa_push_scale.sh
#
# 1. starts examples/push_service.rs (the generic REST push protocol; approves each push
#    DELAY seconds after it was sent) and radshard on a generated config: N users in group
#    "push" whose policy needs a push, 1000 "fast" users and accounting without MFA;
# 2. measures fast-path throughput (radshard bench: pap then acct, SECS each, ROUNDS times)
#    with nothing pending;
# 3. sends N Access-Requests for distinct push users at once (radshard bench, window N,
#    one attempt each) and waits until the server reports N pushes pending;
# 4. reads the server's RSS, then measures the fast path again while the N stay pending;
# 5. waits for the approvals: every push request must end in Access-Accept;
# 6. measures the fast path once more after they all finished (the baseline is the median
#    of before and after together, which brackets drift on a shared machine).
#
# Every load is bounded by count and time. Loopback only. Prints one summary block; the
# per-run JSON reports stay in $OUT (default /tmp/radshard-pushscale).
set -euo pipefail

N=${N:-10000}
DELAY=${DELAY:-60}          # seconds until the service approves a push
POLL=${POLL:-5s}            # radshard's poll interval for a pending push
SECS=${SECS:-5}             # each fast-path measurement
ROUNDS=${ROUNDS:-3}         # pap and acct alternated this many times in each phase (median)
SHARDS=${SHARDS:-0}         # 0: one per core
OUT=${OUT:-/tmp/radshard-pushscale}
AUTH_PORT=${AUTH_PORT:-21812}
PUSH_PORT=${PUSH_PORT:-21840}
METRICS_PORT=${METRICS_PORT:-21899}

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin radshard --example push_service
BIN=target/release/radshard
SVC=target/release/examples/push_service

rm -rf "$OUT" && mkdir -p "$OUT/accounting"
python3 - "$OUT" "$N" <<'EOF'
import sys
out, n = sys.argv[1], int(sys.argv[2])
with open(f"{out}/users.toml", "w") as f:
    for i in range(n):
        f.write(f'[[users]]\nname = "push{i:06d}"\npassword = "pw{i:06d}"\ngroups = ["push"]\n')
    for i in range(1000):
        f.write(f'[[users]]\nname = "fast{i:04d}"\npassword = "fastpw{i:04d}"\n')
EOF

WAIT=$((DELAY + 60))
# Every held push is an in-progress reply-cache entry: at most reply_cache_entries (default
# 65536) per shard. Raise it (ENTRIES=…) for more pending per shard than that; entries are
# preallocated, so they count in the idle RSS.
ENTRIES=${ENTRIES:-65536}
cat > "$OUT/radshard.toml" <<EOF
[server]
shards = $SHARDS
listen_auth = ["127.0.0.1:$AUTH_PORT"]
listen_acct = ["127.0.0.1:$((AUTH_PORT + 1))"]
reply_cache_entries = $ENTRIES

[log]
level = "warn"

[metrics]
listen = "127.0.0.1:$METRICS_PORT"

[accounting]
directory = "$OUT/accounting"

[local]
users_file = "users.toml"

[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"

[[policies]]
name = "push-users"
groups = ["push"]
mfa = true

[[policies]]
name = "everyone-else"

[mfa]
provider = "rest_push"

[mfa.rest_push]
url = "http://127.0.0.1:$PUSH_PORT/push"
wait = "${WAIT}s"
poll_interval = "$POLL"
EOF

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$SVC" "127.0.0.1:$PUSH_PORT" "$DELAY" 2>"$OUT/push_service.log" &
pids+=($!)
"$BIN" serve --config "$OUT/radshard.toml" 2>"$OUT/radshard.log" &
SERVER=$!
pids+=($SERVER)

metric() { curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER/status"; }
for _ in $(seq 100); do metric radshard_mfa_pushes_pending >/dev/null 2>&1 && break; sleep 0.1; done

bench() { # mode label
  local mode=$1 label=$2 r
  "$BIN" bench --server "127.0.0.1:$AUTH_PORT" --mode "$mode" --user-pattern 'fast%04d' \
    --password-pattern 'fastpw%04d' --users 1000 --window 256 --sockets 4 \
    --duration "${SECS}s" --count 5000000 --timeout 2s --json -q > "$OUT/$label-$mode.json" || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(r["requests_per_s"]))' \
    "$OUT/$label-$mode.json"
}
# ROUNDS of pap then acct; prints "pap1 pap2 …|acct1 acct2 …".
phase() { # label
  local p=() a=()
  for r in $(seq "$ROUNDS"); do p+=("$(bench pap "$1-$r")"); a+=("$(bench acct "$1-$r")"); done
  echo "${p[*]}|${a[*]}"
}

# Warm-up (allocator arenas, reply cache), then the baseline.
bench pap warmup >/dev/null
before=$(phase before)
rss0=$(rss_kib)

sockets=$(( (N + 255) / 256 ))
"$BIN" bench --server "127.0.0.1:$AUTH_PORT" --mode pap --user-pattern 'push%06d' \
  --password-pattern 'pw%06d' --users "$N" --count "$N" --window "$N" --sockets "$sockets" \
  --timeout "$((WAIT + 5))s" --duration "$((WAIT + 30))s" --json -q > "$OUT/push.json" &
PUSHES=$!
t0=$(date +%s.%N)
for i in $(seq 1200); do
  p=$(metric radshard_mfa_pushes_pending || echo 0)
  [ "${p:-0}" -ge "$N" ] && break
  [ $((i % 50)) -eq 0 ] && echo "  $((i / 10))s: pending ${p:-?}, sent $(metric radshard_mfa_pushes_sent_total)" >&2
  sleep 0.1
done
t_full=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
pending=$(metric radshard_mfa_pushes_pending)
sleep 1
rss1=$(rss_kib)
during=$(phase pending)
pending_after=$(metric radshard_mfa_pushes_pending)
rss2=$(rss_kib)
wait $PUSHES || echo "push bench exited with $?" >&2
after=$(phase after)
rss3=$(rss_kib)
stats=$(curl -sf "http://127.0.0.1:$PUSH_PORT/stats")

python3 - "$OUT" <<EOF
import json
p = json.load(open("$OUT/push.json"))
c = p["counts"]
from statistics import median
def runs(phase, i):
    return [int(x) for x in phase.split("|")[i].split()]
before, during, after = "$before", "$during", "$after"
print(f"N={$N} DELAY={$DELAY}s POLL=$POLL SECS={$SECS} ROUNDS={$ROUNDS} shards={$SHARDS or 'all'}")
print(f"pending pushes reached: $pending in ${t_full}s (still pending after the fast-path runs: $pending_after)")
print(f"RSS KiB: idle $rss0, {$N} pending $rss1 (after the runs $rss2), all answered $rss3")
print(f"  extra per pending push: {($rss1 - $rss0) * 1024 / $N:.0f} bytes; {$N} pending: +{($rss1 - $rss0) / 1024:.1f} MiB")
for i, kind in enumerate(["pap ", "acct"]):
    b, d, a = runs(before, i), runs(during, i), runs(after, i)
    base = median(b + a)
    print(f"fast path {kind} req/s (median of {len(d)}): before {median(b):.0f} {b}, pending {median(d):.0f} {d}, after {median(a):.0f} {a}"
          f" -> pending vs before+after: {100 * (median(d) / base - 1):+.1f}%")
print(f"push requests: sent {c['sent']}, accept {c['access_accept']}, reject {c['access_reject']}, timeouts {c['timeouts']}, retransmissions {c['retransmissions']}; latency p50 {p['latency_us']['p50']/1e6:.1f}s max {p['latency_us']['max']/1e6:.1f}s")
print("push service:", """$stats""")
EOF
