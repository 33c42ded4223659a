#!/usr/bin/env bash
# Disconnect fan-out: 10,000 open sessions of one user disconnected through the admin API
# (`radshard disconnect --user fanout`), against a fast fake DAS (examples/fake_das.rs) that
# ACKs every correctly signed request: the time until every ACK is in, and the shard's PAP
# throughput (`radshard bench`, window 64, a 3 s run starting 0.5 s before the fan-out) against
# a 4 s baseline just before it.
# radshard: one shard on cpu0 (its control thread unpinned); loader and fake DAS on cpu1.
#
#   perf/dynauth_fanout.sh                 # 3 rounds
#   ROUNDS=1 SESSIONS=2000 perf/dynauth_fanout.sh
#
# Prints a markdown table on stdout, progress on stderr.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/radshard}
DAS_BIN=${DAS_BIN:-$ROOT/target/release/examples/fake_das}
WORK=$(mktemp -d /tmp/radshard-fanout.XXXXXX)
OUT=$WORK/out
mkdir -p "$OUT"
die() { echo "dynauth_fanout: $*" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
[ -x "$DAS_BIN" ] || (cd "$ROOT" && cargo build --release --example fake_das)
for p in 11812 11813 13799; do
    ! ss -Hlun "sport = :$p" | grep -q . || die "port $p is in use"
done
! ss -Hlt "sport = :19813" | grep -q . || die "port 19813 is in use"

head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/tokens"
chmod 600 "$WORK/tokens"
sed -e "s|users_file = \"bench-users.toml\"|users_file = \"$ROOT/perf/bench-users.toml\"|" \
    -e 's|^secret = "testing123"$|secret = "testing123"\ndas = { address = "127.0.0.1:13799", secret = "dassecret" }|' \
    "$ROOT/perf/bench.toml" >"$WORK/fanout.toml"
grep -q 'das = ' "$WORK/fanout.toml" || die "could not add the client's das to perf/bench.toml"
cat >>"$WORK/fanout.toml" <<CONF

[dynauth]
max_outstanding = 4096

[admin]
listen = "127.0.0.1:19813"
token_file = "$WORK/tokens"
CONF

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 1 "$DAS_BIN" 127.0.0.1:13799 dassecret >"$OUT/fake_das.log" 2>&1 &
PIDS+=($!)
taskset -c 0 "$BIN" serve --config "$WORK/fanout.toml" --shards 1 \
    --accounting-dir "$WORK/acct" >"$OUT/radshard.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
    "$BIN" bench --server 127.0.0.1:11812 --count 1 --duration 1s --timeout 200ms --quiet \
        --json 2>/dev/null | jq -e '.counts.access_accept == 1' >/dev/null && break
    sleep 0.2
done

# SESSIONS Accounting Starts of user "fanout", one session id each.
open_sessions() { # ROUND
    python3 - "$1" "$SESSIONS" <<'PY'
import hashlib, os, socket, struct, sys
round_, n = sys.argv[1], int(sys.argv[2])
secret = b"testing123"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
def attr(t, v): return bytes([t, len(v) + 2]) + v
pending = {}
sent = acked = 0
while acked < n:
    while sent < n and len(pending) < 200:
        ident = sent % 256
        if ident in pending:
            break
        body = (attr(40, struct.pack(">I", 1)) + attr(1, b"fanout")
                + attr(44, f"R{round_}-{sent:06d}".encode()) + attr(4, bytes([10, 0, 0, 1]))
                + attr(31, f"02-00-00-{sent >> 8 & 255:02X}-{sent & 255:02X}-{int(round_):02X}".encode()))
        length = 20 + len(body)
        head = struct.pack(">BBH", 4, ident, length)
        auth = hashlib.md5(head + b"\0" * 16 + body + secret).digest()
        s.sendto(head + auth + body, ("127.0.0.1", 11813))
        pending[ident] = sent
        sent += 1
    data, _ = s.recvfrom(4096)
    if data[0] == 5 and data[1] in pending:
        del pending[data[1]]
        acked += 1
PY
}

pap() { # SECONDS
    taskset -c 1 "$BIN" bench --quiet --json --mode pap --users 1000 --server 127.0.0.1:11812 \
        --window 64 --count 50000000 --duration "${1}s"
}

for round in $(seq "$ROUNDS"); do
    open_sessions "$round"
    open=$("$BIN" sessions --config "$WORK/fanout.toml" --user fanout --json | jq '.sessions | length')
    [ "$open" -eq "$SESSIONS" ] || die "round $round: $open sessions open, expected $SESSIONS"
    pap 4 >"$OUT/base-$round.json"
    pap 3 >"$OUT/during-$round.json" &
    LOADER=$!
    sleep 0.5
    start=$(date +%s.%N)
    "$BIN" disconnect --config "$WORK/fanout.toml" --user fanout --json >"$OUT/disconnect-$round.json" ||
        die "round $round: not every session was ACKed"
    end=$(date +%s.%N)
    wait $LOADER
    acks=$(jq '[.results[] | select(.outcome.result == "ack")] | length' "$OUT/disconnect-$round.json")
    echo "$start $end $acks" >"$OUT/fanout-$round.txt"
    echo "== round $round: $acks ACKs in $(python3 -c "print(f'{$end - $start:.2f}')") s" >&2
    # The NAS's Stops are not sent by the fake DAS: the next round opens fresh sessions after
    # these are gone from the table (Accounting-On from the NAS closes them).
    python3 - <<'PY'
import hashlib, socket, struct
secret = b"testing123"
body = bytes([40, 6]) + struct.pack(">I", 7) + bytes([4, 6, 10, 0, 0, 1])
head = struct.pack(">BBH", 4, 1, 20 + len(body))
auth = hashlib.md5(head + b"\0" * 16 + body + secret).digest()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(head + auth + body, ("127.0.0.1", 11813)); s.recvfrom(4096)
PY
done

python3 - "$OUT" "$ROUNDS" "$SESSIONS" <<'PY'
import glob, json, os, statistics, sys
out, rounds, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = []
for r in range(1, rounds + 1):
    start, end, acks = open(os.path.join(out, f"fanout-{r}.txt")).read().split()
    base = json.load(open(os.path.join(out, f"base-{r}.json")))
    during = json.load(open(os.path.join(out, f"during-{r}.json")))
    rate = lambda j: j["counts"]["access_accept"] / j["elapsed_s"]
    rows.append((float(end) - float(start), int(acks), rate(base), rate(during), base["latency_us"]["p99"], during["latency_us"]["p99"]))
print(f"### Disconnect fan-out: {n} sessions of one user, fake DAS, radshard 1 shard on cpu0 ({rounds} rounds, medians)\n")
print("| all ACKs in | ACKs | PAP accepted/s before | during | p99 µs before | during |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
med = lambda i: statistics.median(r[i] for r in rows)
print(f"| {med(0):.2f} s | {int(med(1))} | {med(2):,.0f} | {med(3):,.0f} | {med(4):,.0f} | {med(5):,.0f} |")
print(f"\nRounds (s to all ACKs): {', '.join(f'{r[0]:.2f}' for r in rows)}; PAP during/before: {med(3)/med(2):.3f}×")
print(f"Raw reports: {out}")
PY
