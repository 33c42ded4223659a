#!/usr/bin/env bash
# EAP server CPU per login under `radshard bench --mode peap|eap-tls|ttls-pap`, full handshakes
# and resumed (--resume), TLS 1.2 by default: the server under test pinned to cpu0, the loader
# to cpu1 (as perf/compare.sh and perf/mschap_compare.sh pin).
#
#   perf/eap_compare.sh                                    # FreeRADIUS 3.2, the eapol_test recipe's config
#   SERVER=radshard RADSHARD_CONFIG=conf.toml RS_AUTH=127.0.0.1:11812 CERTS=dir perf/eap_compare.sh
#   SERVER=radshard RS_BIN=/path/to/other/radshard ...    # a server binary other than the loader's
#   CASES="peap:full peap:resume" SECS=5 perf/eap_compare.sh
#   TLS=1.3 perf/eap_compare.sh                            # FreeRADIUS then allows 1.3 (recipe's TLS13=1)
#
# SERVER=freeradius builds FreeRADIUS's configuration the way /work/shared/recipes/eapol_test.md
# section 4 does (a copy of /etc/freeradius/3.0 under a temporary directory, one auth listener,
# client 127.0.0.1/testing123, alice/alicepw; a second copy with the TLS session cache on for
# the resume cases), so the numbers compare with the recipe's eapol_test-driven ones.
# SERVER=radshard runs `radshard serve --config $RADSHARD_CONFIG --shards 1` (listening on
# $RS_AUTH, user alice/alicepw, EAP with the certificates in $CERTS: server.pem/server.key, the
# client CA ca.pem; its resumption is whatever that configuration says, for both case kinds).
# CERTS defaults to a fresh RSA-2048 PKI from the recipe's section 1 (openssl).
#
# Before measuring, each case is checked: 50 logins, all accepted with MPPE keys equal to the
# MSK, or the script stops with the reason. Prints a markdown table on stdout (progress on
# stderr), keeps every raw JSON report (bench report + "server_cpu", see perf/server_cpu.sh)
# under $OUT. Does not touch perf/RESULTS.md. Every run is bounded in count and time.
set -euo pipefail

SERVER=${SERVER:-freeradius}
CASES=${CASES:-"peap:full eap-tls:full ttls-pap:full peap:resume eap-tls:resume ttls-pap:resume"}
TLS=${TLS:-1.2}
ROUNDS=${ROUNDS:-1}
SECS=${SECS:-10}
WARMUP=${WARMUP:-1}
WINDOW=${WINDOW:-8}                  # logins in flight: FreeRADIUS 3.2 pinned to one core is fastest near 8
MAX_COUNT=${MAX_COUNT:-200000}       # logins per run, a bound besides SECS
QUIET_WAIT=${QUIET_WAIT:-0}          # wait up to N s for the load average to fall below QUIET_LOAD
QUIET_LOAD=${QUIET_LOAD:-0.5}
FR_AUTH=${FR_AUTH:-127.0.0.1:21822}
RS_AUTH=${RS_AUTH:-127.0.0.1:11812}
RADSHARD_CONFIG=${RADSHARD_CONFIG:-}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/radshard}   # the loader (and, unless RS_BIN, the radshard server)
RS_BIN=${RS_BIN:-$BIN}
WORK=$(mktemp -d /tmp/radshard-eap.XXXXXX)
OUT=${OUT:-$WORK/out}
CERTS=${CERTS:-$WORK/certs}
mkdir -p "$OUT"

log() { echo "== $*" >&2; }
die() { echo "eap_compare: $*" >&2; exit 1; }
# shellcheck source=perf/server_cpu.sh
. "$ROOT/perf/server_cpu.sh"

for tool in jq python3 taskset openssl ss; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on cpu0, loader on cpu1)"
case $TLS in 1.2|1.3) ;; *) die "TLS must be 1.2 or 1.3" ;; esac
case $SERVER in
freeradius)
    AUTH=$FR_AUTH
    if ! command -v freeradius >/dev/null; then
        log "installing FreeRADIUS from Debian"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq freeradius
    fi
    [ -d /etc/freeradius/3.0 ] || die "needs /etc/freeradius/3.0 (apt-get install freeradius)"
    SERVER_LABEL="FreeRADIUS $(freeradius -v 2>/dev/null | sed -n 's/.*FreeRADIUS Version \([0-9.]*\).*/\1/p' | head -1)" ;;
radshard)
    AUTH=$RS_AUTH
    [ -n "$RADSHARD_CONFIG" ] && [ -f "$RADSHARD_CONFIG" ] || die "SERVER=radshard needs RADSHARD_CONFIG=<config file>"
    SERVER_LABEL="radshard (1 shard)" ;;
*) die "SERVER must be freeradius or radshard" ;;
esac
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
"$BIN" bench --help | grep -q -- --eap-fragment || die "$BIN has no EAP modes in bench (rebuild)"
log "uptime: $(uptime)"

# --- certificates: the recipe's section 1 (CA, radius.test server, alice@example.test client) --
if [ ! -f "$CERTS/ca.pem" ]; then
    mkdir -p "$CERTS"
    (
        cd "$CERTS"
        exec >"$WORK/certs.log" 2>&1
        openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
            -keyout ca.key -out ca.pem -subj "/C=US/O=EAP Test/CN=EAP Test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash"
        printf '%s\n' "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
            "subjectAltName=DNS:radius.test" "subjectKeyIdentifier=hash" \
            "authorityKeyIdentifier=keyid,issuer" >server.ext
        openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr \
            -subj "/C=US/O=EAP Test/CN=radius.test"
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 3650 -sha256 -extfile server.ext -out server.pem
        printf '%s\n' "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth" \
            "subjectAltName=email:alice@example.test" "subjectKeyIdentifier=hash" \
            "authorityKeyIdentifier=keyid,issuer" >client.ext
        openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout client.key -out client.csr \
            -subj "/C=US/O=EAP Test/CN=alice@example.test"
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 3650 -sha256 -extfile client.ext -out client.pem
        cat server.pem ca.pem >server-chain.pem
        chmod 600 ./*.key
        openssl verify -CAfile ca.pem server.pem client.pem
    ) || { cat "$WORK/certs.log" >&2; die "certificate generation failed"; }
fi

# --- FreeRADIUS: the recipe's section 4 (freeradius_setup.sh), RESUME as its option -----------
# shellcheck source=perf/lib/freeradius_eap.sh
. "$ROOT/perf/lib/freeradius_eap.sh"
# freeradius_raddb DIR RESUME(0|1)
freeradius_raddb() {
    local rd=$1 resume=$2 opts=()
    [ "$TLS" = 1.3 ] && opts+=(--tls13)
    [ "$resume" = 1 ] && opts+=(--resume)
    freeradius_eap_raddb "${opts[@]}" "$rd" "$rd" "$CERTS" "${FR_AUTH##*:}"
    freeradius_eap_check "$rd" "$rd" || { tail -20 "$rd/log/config-check.log" >&2; die "FreeRADIUS config check failed ($rd)"; }
}
if [ "$SERVER" = freeradius ]; then
    freeradius_raddb "$WORK/raddb-full" 0
    freeradius_raddb "$WORK/raddb-resume" 1
fi

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

port_free() {
    ! ss -Hlun "sport = :${1##*:}" 2>/dev/null | grep -q .
}

# loader_args MODE KIND: the `radshard bench` flags of one case.
loader_args() {
    local mode=$1 kind=$2
    echo "--server $AUTH --mode $mode --tls-version $TLS --ca $CERTS/ca.pem --server-name radius.test --users 1"
    case $mode in
    eap-tls) echo "--client-cert $CERTS/client.pem --client-key $CERTS/client.key --user-pattern alice@example.test --password-pattern unused" ;;
    *) echo "--user-pattern alice --password-pattern alicepw" ;;
    esac
    [ "$kind" = resume ] && echo "--resume"
    echo "--timeout 3s --retries 1"
}

# bench SECONDS ARGS...: one bounded loader run on cpu1 (with a hard stop in case of a bug).
bench() {
    local secs=$1; shift
    timeout --kill-after=5 $((secs + 60)) taskset -c 1 "$BIN" bench --quiet --json --duration "${secs}s" "$@"
}

# start_server MODE KIND: starts the server under test pinned to cpu0; ready when one login of
# MODE succeeds (bounded).
start_server() {
    local mode=$1 kind=$2
    # The previous run's server (this script's, or the round before's) may still be exiting.
    local i
    for i in $(seq 50); do port_free "$AUTH" && break; sleep 0.1; done
    port_free "$AUTH" || die "$AUTH is already in use: stop whatever listens there first"
    case $SERVER in
    freeradius)
        # Sessions a previous server persisted are not this run's to resume.
        rm -rf "$WORK/raddb-$kind/tlscache"; mkdir -m 700 "$WORK/raddb-$kind/tlscache"
        taskset -c 0 freeradius -f -d "$WORK/raddb-$kind" -l "$OUT/freeradius-$kind.log" &
        SERVER_PID=$! ;;
    radshard)
        taskset -c 0 "$RS_BIN" serve --config "$RADSHARD_CONFIG" --shards 1 >>"$OUT/radshard.log" 2>&1 &
        SERVER_PID=$! ;;
    esac
    local deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        # shellcheck disable=SC2046
        if "$BIN" bench $(loader_args "$mode" full) --count 1 --window 1 --duration 2s \
            --quiet --json 2>/dev/null | jq -e '.eap.logins_ok == 1' >/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || die "$SERVER exited at start-up (logs in $OUT)"
        sleep 0.3
    done
    die "$SERVER did not accept a $mode login on $AUTH within 20 s (logs in $OUT)"
}

wait_quiet() {
    local waited=0
    while [ "$waited" -lt "$QUIET_WAIT" ] &&
        awk -v t="$QUIET_LOAD" '{ exit !($1 >= t) }' /proc/loadavg; do
        sleep 1; waited=$((waited + 1))
    done
}

for case in $CASES; do
    mode=${case%%:*} kind=${case##*:}
    case $mode in peap|eap-tls|ttls-pap) ;; *) die "unknown mode in CASES: $case" ;; esac
    case $kind in full|resume) ;; *) die "unknown kind in CASES: $case (full, resume)" ;; esac
    for round in $(seq "$ROUNDS"); do
        start_server "$mode" "$kind"
        if [ "$round" = 1 ]; then
            f=$OUT/check-$mode-$kind.json
            # shellcheck disable=SC2046
            bench 20 $(loader_args "$mode" "$kind") --count 50 --window 8 >"$f" || die "loader failed ($f)"
            jq -e '.eap.logins_ok == 50 and .eap.bad_keys == 0' "$f" >/dev/null ||
                die "$SERVER does not answer $mode ($kind) correctly: $(jq -c '.eap | {logins_ok, logins_rejected, logins_failed, bad_keys, failures, first_failure}' "$f")"
        fi
        # shellcheck disable=SC2046
        bench "$WARMUP" $(loader_args "$mode" "$kind") --window "$WINDOW" --count "$MAX_COUNT" >/dev/null || true
        f=$OUT/$mode-$kind-$round.json
        wait_quiet
        echo "$mode-$kind-$round $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/loadavg.txt"
        before=$(cpu_snapshot "$SERVER_PID")
        # shellcheck disable=SC2046
        bench "$SECS" $(loader_args "$mode" "$kind") --window "$WINDOW" --count "$MAX_COUNT" >"$f.bench" ||
            die "$mode $kind round $round: loader failed"
        after=$(cpu_snapshot "$SERVER_PID") || die "$SERVER exited during the run"
        cpu_attach "$f.bench" "$(cpu_json "$before" "$after")" "$f"
        rm -f "$f.bench"
        log "$mode $kind round $round: $(jq -r '"\(.eap.logins_per_s | floor) logins/s, server CPU \(.server_cpu.cpu_ns / ([.eap.logins_ok, 1] | max) / 1e6 * 1000 | round / 1000) ms/login, loader \(.eap.loader_cpu_us_per_login / 1000 * 1000 | round / 1000) ms/login, \(.eap.rounds_per_login * 100 | round / 100) rounds, resumed \(.eap.resumed), failed \(.eap.logins_failed), bad keys \(.eap.bad_keys)"' "$f")"
        stop_server
    done
done

python3 - "$OUT" "$ROUNDS" "$SECS" "$SERVER_LABEL" "$TLS" "$WINDOW" "$CASES" <<'PY'
import glob, json, os, statistics, sys

out, rounds, secs, label, tls, window, cases = sys.argv[1:8]
# The recipe's eapol_test-driven FreeRADIUS 3.2.1 numbers (ms of server CPU per login, TLS 1.2).
recipe = {("peap", "full"): "1.55", ("eap-tls", "full"): "1.9", ("ttls-pap", "full"): "1.25",
          ("peap", "resume"): "0.68", ("eap-tls", "resume"): "0.83"}

def med(xs):
    return statistics.median(xs) if xs else None

def fmt(x, digits=0):
    return "—" if x is None else f"{x:,.{digits}f}"

print(f"### EAP: {label}, server pinned to cpu0, `radshard bench` on cpu1, TLS {tls}, "
      f"window {window} logins ({rounds} × {secs} s, medians)\n")
print("| method | handshake | logins/s | server CPU ms/login | loader CPU ms/login | rounds/login "
      "| resumed | p50 ms | p99 ms | failed | FreeRADIUS ms/login under eapol_test (recipe) |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
failed = False
for case in cases.split():
    mode, kind = case.split(":")
    runs = []
    for f in sorted(glob.glob(os.path.join(out, f"{mode}-{kind}-*.json"))):
        with open(f) as fh:
            runs.append(json.load(fh))
    if not runs:
        continue
    e = [r["eap"] for r in runs]
    cpu = [r["server_cpu"]["cpu_ns"] / x["logins_ok"] / 1e6 for r, x in zip(runs, e) if x["logins_ok"]]
    bad = sum(x["logins_failed"] + x["logins_rejected"] + x["bad_keys"] for x in e)
    failed |= bad > 0
    resumed = med([100.0 * x["resumed"] / x["logins_ok"] for x in e if x["logins_ok"]])
    print(f"| {mode} | {kind} | {fmt(med([x['logins_per_s'] for x in e]))} | {fmt(med(cpu), 3)} "
          f"| {fmt(med([x['loader_cpu_us_per_login'] / 1000 for x in e]), 3)} "
          f"| {fmt(med([x['rounds_per_login'] for x in e]), 2)} | {fmt(resumed, 1)} % "
          f"| {fmt(med([r['latency_us']['p50'] / 1000 for r in runs]), 1)} "
          f"| {fmt(med([r['latency_us']['p99'] / 1000 for r in runs]), 1)} | {bad} "
          f"| {recipe.get((mode, kind), '—') if tls == '1.2' else '—'} |")
try:
    with open(os.path.join(out, "loadavg.txt")) as fh:
        loads = [float(line.split()[1]) for line in fh if len(line.split()) > 1]
    print(f"\n1-minute load average before the measured runs: {min(loads):.2f}–{max(loads):.2f} (2 cores).")
except (OSError, ValueError):
    pass
print("\nserver CPU = all the server's threads over the measured run / logins accepted with the "
      "MPPE keys verified; failed = failed + rejected logins + bad keys (must be 0). "
      f"Raw reports: {out}")
sys.exit(1 if failed else 0)
PY
