#!/usr/bin/env bash
# radshard vs FreeRADIUS 3.2 under the same `radshard bench --mode mschapv2` load: server pinned
# to cpu0 (radshard with one shard), loader pinned to cpu1. See perf/README.md.
#
#   perf/mschap_compare.sh                              # 3 alternating rounds × 5 s
#   ROUNDS=1 SECS=2 perf/mschap_compare.sh              # smoke check
#   SERVERS=freeradius perf/mschap_compare.sh           # one side only
#   MODES="mschapv2 mschap" perf/mschap_compare.sh      # v1 as well
#
# Prints a markdown table (medians, ratio radshard/FreeRADIUS) on stdout, progress on stderr,
# and keeps every raw JSON report under $OUT (the bench report plus "server_cpu", see
# perf/server_cpu.sh). Does not touch perf/RESULTS.md.
#
# Before measuring anything it checks each server answers the mode correctly (every request
# accepted, every MS-CHAP2-Success right); a server that rejects or does not answer stops the
# script with a message and a non-zero exit, within seconds.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
MODES=${MODES:-mschapv2}
SERVERS=${SERVERS:-"freeradius radshard"}
FR_THREADS=${FR_THREADS:-4}          # FreeRADIUS fixed worker pool size (as perf/compare.sh)
SOCKETS=${SOCKETS:-4}
WINDOW=${WINDOW:-256}
MAX_COUNT=${MAX_COUNT:-5000000}      # every run is bounded by count as well as by time
POOL=${POOL:-16}                     # --mschap-pool: precomputed exchanges per user
WARMUP=${WARMUP:-1}
QUIET_WAIT=${QUIET_WAIT:-0}          # wait up to N s for the load average to fall below QUIET_LOAD
QUIET_LOAD=${QUIET_LOAD:-0.5}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/radshard}
# radshard: perf/bench.toml (1000 local users user0000..user0999 / pass0000..pass0999 with
# cleartext passwords, 127.0.0.1:11812). RS_AUTH must match the configuration's listen_auth.
RS_CONFIG=${RS_CONFIG:-$ROOT/perf/bench.toml}
RS_AUTH=${RS_AUTH:-127.0.0.1:11812}
FR_AUTH=${FR_AUTH:-127.0.0.1:21812}
WORK=$(mktemp -d /tmp/radshard-mschap.XXXXXX)
OUT=${OUT:-$WORK/out}
RADDB=$WORK/raddb
mkdir -p "$OUT" "$RADDB"/{log,run}

log() { echo "== $*" >&2; }
die() { echo "mschap_compare: $*" >&2; exit 1; }
# shellcheck source=perf/server_cpu.sh
. "$ROOT/perf/server_cpu.sh"

for tool in jq python3 taskset; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on cpu0, loader on cpu1)"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
"$BIN" bench --help | grep -q mschapv2 || die "$BIN has no 'bench --mode mschapv2' (rebuild)"
case " $SERVERS " in
*" freeradius "*)
    if ! command -v freeradius >/dev/null; then
        log "installing FreeRADIUS from Debian"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq freeradius
    fi ;;
esac
FR_VERSION=$(freeradius -v 2>/dev/null | sed -n 's/.*FreeRADIUS Version \([0-9.]*\).*/\1/p' | head -1 || true)
log "uptime: $(uptime)"

# --- FreeRADIUS: a private raddb with only what MS-CHAP needs --------------------------------
if command -v freeradius >/dev/null; then
    cp /etc/freeradius/3.0/dictionary "$RADDB/dictionary"
fi
# The same users and cleartext passwords as perf/bench.toml.
for i in $(seq -f %04g 0 999); do
    printf 'user%s Cleartext-Password := "pass%s"\n' "$i" "$i"
done >"$RADDB/users"
cat >"$RADDB/radiusd.conf" <<CONF
# As perf/compare.sh's (fixed thread pool, no reject delay, no per-request logging), with the
# mschap module instead of pap/chap: files sets Cleartext-Password, mschap sets Auth-Type
# MS-CHAP when the request has MS-CHAP attributes and then checks the NT-Response and
# builds MS-CHAP2-Success and the MPPE keys (use_mppe defaults to yes, as radshard sends them).
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $RADDB/log
raddbdir = $RADDB
radacctdir = $RADDB/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
run_dir = $RADDB/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 1
max_requests = 1048576
hostname_lookups = no
proxy_requests = no
log {
    destination = files
    file = \${logdir}/radius.log
    colourise = no
    auth = no
    auth_badpass = no
    auth_goodpass = no
}
security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}
thread pool {
    start_servers = $FR_THREADS
    max_servers = $FR_THREADS
    min_spare_servers = $FR_THREADS
    max_spare_servers = $FR_THREADS
    max_requests_per_server = 0
    max_queue_size = 65536
}
client localhost {
    ipaddr = 127.0.0.1
    secret = testing123
    require_message_authenticator = yes
}
modules {
    files {
        filename = \${confdir}/users
    }
    mschap {
    }
}
server bench {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = ${FR_AUTH##*:}
        # The default 208 KB socket buffer overflows with a few hundred requests in flight.
        recv_buff = 4194304
    }
    authorize {
        files
        mschap
    }
    authenticate {
        Auth-Type MS-CHAP {
            mschap
        }
    }
    post-auth {
    }
}
CONF

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

# port_free ADDR: nobody listens on its UDP port (else a readiness probe could be answered by
# someone else's server).
port_free() {
    ! ss -Hlun "sport = :${1##*:}" 2>/dev/null | grep -q .
}

# bench ARGS...: one bounded loader run on cpu1 (with a hard stop in case of a bug).
bench() {
    timeout --kill-after=5 $((SECS + WARMUP + 60)) taskset -c 1 "$BIN" bench --quiet --json "$@"
}

# start_server NAME MODE: starts NAME pinned to cpu0 and waits (bounded) until it answers.
start_server() {
    local name=$1 mode=$2
    case $name in
    freeradius) AUTH=$FR_AUTH ;;
    radshard) AUTH=$RS_AUTH ;;
    *) die "unknown server $name (freeradius, radshard)" ;;
    esac
    port_free "$AUTH" || die "$AUTH is already in use: stop whatever listens there first"
    case $name in
    freeradius)
        taskset -c 0 freeradius -f -d "$RADDB" >"$OUT/freeradius.log" 2>&1 &
        SERVER_PID=$! ;;
    radshard)
        taskset -c 0 "$BIN" serve --config "$RS_CONFIG" --shards 1 >"$OUT/radshard.log" 2>&1 &
        SERVER_PID=$! ;;
    esac
    # Any verified reply (accept or reject) means it is up; correctness is checked separately.
    local deadline=$((SECONDS + 10))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if "$BIN" bench --server "$AUTH" --mode "$mode" --count 1 --duration 1s --timeout 200ms \
            --quiet --json 2>/dev/null | jq -e '.counts.replies == 1' >/dev/null; then
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$OUT/$name.log" "$RADDB/log/radius.log" 2>/dev/null | tail -20 >&2
            die "$name exited at start-up (log above)"
        fi
        sleep 0.2
    done
    tail -20 "$OUT/$name.log" >&2
    die "$name did not answer a $mode Access-Request on $AUTH within 10 s"
}

# check_correct NAME MODE: 200 requests, every one must be accepted with a right S=.
check_correct() {
    local name=$1 mode=$2 f=$OUT/check-$1-$2.json
    bench --server "$AUTH" --mode "$mode" --users 1000 --mschap-pool "$POOL" --count 200 \
        --duration 10s --timeout 1s --window 32 >"$f" || die "$name: loader failed"
    if ! jq -e '.counts.access_accept == 200 and .counts.bad_auth_response == 0' "$f" >/dev/null; then
        jq -r --arg n "$name" --arg m "$mode" '"\($n) does not answer \($m) correctly: of 200 requests \(.counts.access_accept) accepted, \(.counts.access_reject) rejected, \(.counts.timeouts) timed out, \(.counts.bad_auth_response) accepts with a wrong or missing MS-CHAP2-Success"' "$f" >&2
        [ "$name" = radshard ] &&
            echo "  (radshard answers MS-CHAP only once main has it; SERVERS=freeradius measures FreeRADIUS alone)" >&2
        die "$name failed the $mode check (report: $f)"
    fi
}

wait_quiet() {
    local waited=0
    while [ "$waited" -lt "$QUIET_WAIT" ] &&
        awk -v t="$QUIET_LOAD" '{ exit !($1 >= t) }' /proc/loadavg; do
        sleep 1; waited=$((waited + 1))
    done
}

# Fail fast: every server answers every mode correctly before anything is measured.
for mode in $MODES; do
    for server in $SERVERS; do
        start_server "$server" "$mode"
        check_correct "$server" "$mode"
        log "$server answers $mode correctly"
        stop_server
    done
done

load_args() {
    echo "--mode $1 --users 1000 --mschap-pool $POOL --sockets $SOCKETS --window $WINDOW --count $MAX_COUNT"
}

for mode in $MODES; do
    for round in $(seq "$ROUNDS"); do
        # Alternate who goes first so drift does not favour one side.
        order=$SERVERS
        [ $((round % 2)) = 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
        for server in $order; do
            start_server "$server" "$mode"
            # shellcheck disable=SC2046
            bench --server "$AUTH" $(load_args "$mode") --duration "${WARMUP}s" >/dev/null || true
            f=$OUT/$mode-$server-$round.json
            wait_quiet
            echo "$mode-$server-$round $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/loadavg.txt"
            before=$(cpu_snapshot "$SERVER_PID")
            # shellcheck disable=SC2046
            bench --server "$AUTH" $(load_args "$mode") --duration "${SECS}s" >"$f.bench" ||
                die "$server $mode round $round: loader failed"
            after=$(cpu_snapshot "$SERVER_PID") || die "$server exited during the run"
            cpu_attach "$f.bench" "$(cpu_json "$before" "$after")" "$f"
            rm -f "$f.bench"
            log "$mode $server round $round: $(jq -r '"\(.counts.access_accept / .elapsed_s | floor) accepted/s, server CPU \((.server_cpu.us_per_reply // 0) * 100 | round / 100) µs/req, p99 \(.latency_us.p99) µs, rejects \(.counts.access_reject) timeouts \(.counts.timeouts) bad \(.counts.bad_authenticator + .counts.malformed + .counts.unmatched) unexpected \(.counts.unexpected) bad S= \(.counts.bad_auth_response)"' "$f")"
            stop_server
        done
    done
done

python3 - "$OUT" "$ROUNDS" "$SECS" "${FR_VERSION:-?}" "$FR_THREADS" "$MODES" "$SERVERS" <<'PY'
import glob, json, os, statistics, sys

out, rounds, secs, fr_version, fr_threads, modes, servers = sys.argv[1:8]
modes, servers = modes.split(), servers.split()
label = {"radshard": "radshard (1 shard)", "freeradius": f"FreeRADIUS {fr_version} ({fr_threads} threads)"}

def med(xs):
    return statistics.median(xs) if xs else None

def fmt(x, digits=0):
    return "—" if x is None else f"{x:,.{digits}f}"

rows, failed = [], False
stats = {}
for mode in modes:
    for server in servers:
        runs = []
        for f in sorted(glob.glob(os.path.join(out, f"{mode}-{server}-*.json"))):
            with open(f) as fh:
                runs.append(json.load(fh))
        if not runs:
            continue
        acc = [r["counts"]["access_accept"] / r["elapsed_s"] for r in runs if r["elapsed_s"] > 0]
        cpu = [r["server_cpu"]["us_per_reply"] for r in runs if r.get("server_cpu", {}).get("us_per_reply") is not None]
        errors = sum(r["counts"][k] for r in runs for k in
                     ("timeouts", "bad_authenticator", "malformed", "unmatched", "unexpected", "bad_auth_response", "access_reject"))
        failed |= errors > 0
        stats[(mode, server)] = (med(acc), med(cpu))
        rows.append(f"| {mode} | {label.get(server, server)} | {fmt(med(acc))} | {fmt(med(cpu), 2)} "
                    f"| {fmt(med([r['latency_us']['p50'] for r in runs]))} | {fmt(med([r['latency_us']['p99'] for r in runs]))} "
                    f"| {len(runs)} | {errors} |")

print(f"### MS-CHAP: radshard vs FreeRADIUS, server pinned to cpu0, loader on cpu1 ({rounds} × {secs} s, medians)\n")
print("| mode | server | accepted/s | server CPU µs/req | p50 µs | p99 µs | rounds | failures |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
print("\n".join(rows))
ratios = []
for mode in modes:
    r, f = stats.get((mode, "radshard")), stats.get((mode, "freeradius"))
    if r and f and f[0] and f[1] and r[0] and r[1]:
        ratios.append(f"| {mode} | {r[0] / f[0]:.2f}× | {r[1] / f[1]:.2f}× |")
if ratios:
    print("\n| mode | accepted/s radshard/FreeRADIUS | CPU µs/req radshard/FreeRADIUS |")
    print("| --- | ---: | ---: |")
    print("\n".join(ratios))
try:
    with open(os.path.join(out, "loadavg.txt")) as fh:
        loads = [float(line.split()[1]) for line in fh if len(line.split()) > 1]
    print(f"\n1-minute load average before the measured runs: {min(loads):.2f}–{max(loads):.2f} (2 cores).")
except (OSError, ValueError):
    pass
print(f"\nFailures: timeouts + bad/unmatched/malformed replies + unexpected codes + rejects + wrong MS-CHAP2-Success, all rounds (must be 0). Raw reports: {out}")
sys.exit(1 if failed else 0)
PY
