#!/usr/bin/env bash
# radshard vs FreeRADIUS 3.2 for EAP, side by side in one session: perf/eap_compare.sh for
# each server in turn, ROUNDS times (FreeRADIUS, radshard, FreeRADIUS, radshard, ...), the same
# RSA-2048 certificates, the same loader (`radshard bench`, pinned to cpu1), each server pinned
# to cpu0 (radshard with one shard; its handshake workers share that core). Prints each run's
# table and a summary of medians with the ratio of server CPU per login.
#
#   perf/eap_side_by_side.sh                        # TLS 1.2, full and resumed, 2 rounds
#   ROUNDS=3 SECS=10 TLS=1.2 perf/eap_side_by_side.sh
#   KEY=ecdsa perf/eap_side_by_side.sh              # radshard alone with an ECDSA P-256 server key
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-2}
KEY=${KEY:-rsa}
W=$(mktemp -d /tmp/radshard-eap-sbs.XXXXXX)
export CERTS=$W/certs SECS=${SECS:-10} TLS=${TLS:-1.2}
cp "$ROOT/perf/eap-compare.toml" "$W/radshard.toml"
sed -i "s|^directory = .*|directory = \"$W/acct\"|" "$W/radshard.toml"
export BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/radshard}
if [ "$KEY" = ecdsa ]; then
    "$BIN" certs --out "$CERTS" --key ecdsa >/dev/null
    servers="radshard"
else
    servers="freeradius radshard"
fi
for round in $(seq "$ROUNDS"); do
    for s in $servers; do
        echo "== round $round: $s" >&2
        OUT=$W/$s-$round SERVER=$s RADSHARD_CONFIG=$W/radshard.toml ROUNDS=1 \
            bash "$ROOT/perf/eap_compare.sh" | tee "$W/$s-$round.md"
    done
done
python3 - "$W" "$ROUNDS" "$servers" <<'PY'
import glob, json, os, statistics, sys
w, rounds, servers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
rows = {}
for s in servers:
    for f in glob.glob(os.path.join(w, f"{s}-*", "*-*-1.json")):
        name = os.path.basename(f)[:-len("-1.json")]
        r = json.load(open(f)); e = r["eap"]
        if not e["logins_ok"]:
            continue
        rows.setdefault(name, {}).setdefault(s, []).append(
            (r["server_cpu"]["cpu_ns"] / e["logins_ok"] / 1e6, e["logins_per_s"]))
print(f"\n### Summary: medians of {rounds} rounds, server CPU ms per login (logins/s)\n")
print("| case | " + " | ".join(servers) + (" | FreeRADIUS / radshard CPU |" if len(servers) > 1 else ""))
print("| --- | " + " | ".join("---:" for _ in servers) + (" | ---: |" if len(servers) > 1 else ""))
for name in sorted(rows):
    cells, cpus = [], {}
    for s in servers:
        v = rows[name].get(s, [])
        if not v:
            cells.append("—"); continue
        cpu = statistics.median(x[0] for x in v); rate = statistics.median(x[1] for x in v)
        cpus[s] = cpu
        cells.append(f"{cpu:.3f} ({rate:,.0f}/s)")
    ratio = ""
    if len(servers) > 1 and len(cpus) == 2:
        ratio = f" | {cpus['freeradius'] / cpus['radshard']:.2f}x"
    print(f"| {name} | " + " | ".join(cells) + ratio + (" |" if ratio else ""))
print(f"\nRaw reports under {w}")
PY
