#!/usr/bin/env bash
# Does a PEAP rush disturb the PAP fast path? radshard with one shard (glommio pins it to
# cpu0) and one handshake worker (kept off the shard's core: cpu1, with the loaders). PAP at a
# fixed offered rate, alone, then while `radshard bench --mode peap` keeps 32 logins in flight
# (the workers' maximum rate); ROUNDS alternations. Prints PAP's replies/s and latency
# percentiles for both, their medians and the PEAP logins/s reached meanwhile.
#
#   perf/eap_pap_isolation.sh
#   RATE=20000 SECS=10 ROUNDS=5 perf/eap_pap_isolation.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/radshard}
RATE=${RATE:-10000}
SECS=${SECS:-8}
ROUNDS=${ROUNDS:-3}
W=$(mktemp -d /tmp/radshard-eap-pap.XXXXXX)
SRV=
trap '[ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null || true' EXIT
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
cp "$ROOT/perf/bench.toml" "$ROOT/perf/bench-users.toml" "$W/"
sed -i -e 's/^shards = 0/shards = 1/' -e "s|^directory = .*|directory = \"$W/acct\"|" "$W/bench.toml"
cat >>"$W/bench.toml" <<TOML

[[users]]
name = "alice"
password = "alicepw"

[eap]
methods = ["peap"]
workers = 1

[eap.tls]
certificate = "certs/server.pem"
private_key = "certs/server.key"
TOML
"$BIN" certs --out "$W/certs" >/dev/null
"$BIN" serve --config "$W/bench.toml" >"$W/server.log" 2>&1 &
SRV=$!
AUTH=127.0.0.1:11812
for _ in $(seq 50); do
    "$BIN" bench --server $AUTH --secret testing123 --count 1 --duration 1s --quiet --json >/dev/null 2>&1 && break
    sleep 0.2
done
pap() {
    timeout $((SECS + 30)) taskset -c 1 "$BIN" bench --server $AUTH --secret testing123 --mode pap \
        --users 1000 --rate "$RATE" --duration "${SECS}s" --count $((RATE * SECS)) --quiet --json
}
peap() {
    timeout $((SECS + 40)) taskset -c 1 "$BIN" bench --server $AUTH --secret testing123 --mode peap \
        --ca "$W/certs/ca.pem" --users 1 --user-pattern alice --password-pattern alicepw \
        --window 32 --duration "$((SECS + 4))s" --count 1000000 --timeout 3s --quiet --json
}
for r in $(seq "$ROUNDS"); do
    pap >"$W/alone-$r.json"
    peap >"$W/peap-$r.json" &
    rush=$!
    sleep 2
    pap >"$W/busy-$r.json"
    wait "$rush" || true
done
python3 - "$W" "$ROUNDS" "$RATE" <<'PY'
import json, statistics, sys
w, rounds, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
load = lambda f: json.load(open(f))
def row(kind):
    runs = [load(f"{w}/{kind}-{r}.json") for r in range(1, rounds + 1)]
    return {k: statistics.median(v) for k, v in {
        "replies/s": [x["requests_per_s"] for x in runs],
        "p50 µs": [x["latency_us"]["p50"] for x in runs],
        "p99 µs": [x["latency_us"]["p99"] for x in runs],
        "p99.9 µs": [x["latency_us"]["p999"] for x in runs]}.items()}
a, b = row("alone"), row("busy")
peap = [load(f"{w}/peap-{r}.json")["eap"]["logins_per_s"] for r in range(1, rounds + 1)]
print(f"### PAP at {rate}/s offered, alone vs during a PEAP rush ({rounds} rounds, medians)\n")
print("| | " + " | ".join(a) + " |")
print("| --- | " + " | ".join("---:" for _ in a) + " |")
print("| PAP alone | " + " | ".join(f"{v:,.0f}" for v in a.values()) + " |")
print("| PAP during PEAP | " + " | ".join(f"{v:,.0f}" for v in b.values()) + " |")
print("| ratio | " + " | ".join(f"{b[k] / a[k]:.2f}" for k in a) + " |")
print(f"\nPEAP meanwhile: {statistics.median(peap):,.0f} logins/s (median). Raw: {w}")
PY
