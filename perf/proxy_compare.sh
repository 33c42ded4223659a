#!/usr/bin/env bash
# Proxied PAP: radshard vs FreeRADIUS 3.2 as the proxy, in front of the same FreeRADIUS home
# server, under the same `radshard bench --mode pap --user-pattern user%04d@remote.test` load.
# The proxy under test is pinned to cpu0 (radshard with one shard, its proxy thread on the
# same core); the home server and the loader share cpu1. See perf/README.md.
#
#   perf/proxy_compare.sh                      # 3 alternating rounds × 5 s
#   ROUNDS=1 SECS=2 perf/proxy_compare.sh      # smoke check
#
# Prints a markdown table (medians, ratio radshard/FreeRADIUS, proxy CPU per request from
# perf/server_cpu.sh) on stdout, progress on stderr; raw JSON reports under $OUT. Does not
# touch perf/RESULTS.md. Every request must be accepted, or the script stops.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
SERVERS=${SERVERS:-"freeradius radshard"}
FR_THREADS=${FR_THREADS:-4}
SOCKETS=${SOCKETS:-4}
WINDOW=${WINDOW:-256}
MAX_COUNT=${MAX_COUNT:-5000000}
WARMUP=${WARMUP:-1}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/radshard}
RS_CONFIG=${RS_CONFIG:-$ROOT/perf/proxy-bench.toml}
RS_AUTH=127.0.0.1:11812
FR_AUTH=127.0.0.1:21812
HOME_AUTH=127.0.0.1:21900
WORK=$(mktemp -d /tmp/radshard-proxy.XXXXXX)
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT"

log() { echo "== $*" >&2; }
die() { echo "proxy_compare: $*" >&2; exit 1; }
# shellcheck source=perf/server_cpu.sh
. "$ROOT/perf/server_cpu.sh"

for tool in jq python3 taskset freeradius; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
FR_VERSION=$(freeradius -v 2>/dev/null | sed -n 's/.*FreeRADIUS Version \([0-9.]*\).*/\1/p' | head -1 || true)
log "uptime: $(uptime)"

# raddb DIR PORT MODULES AUTHORIZE PROXY: a private FreeRADIUS configuration as perf/compare.sh's
# (fixed thread pool, no reject delay, no per-request logging).
raddb() {
    local dir=$1 port=$2 modules=$3 authorize=$4 proxy=$5
    mkdir -p "$dir"/{log,run}
    cp /etc/freeradius/3.0/dictionary "$dir/dictionary"
    cat >"$dir/radiusd.conf" <<CONF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $dir/log
raddbdir = $dir
radacctdir = $dir/radacct
name = freeradius
confdir = \${raddbdir}
run_dir = $dir/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 1
max_requests = 1048576
hostname_lookups = no
proxy_requests = $proxy
log {
    destination = files
    file = \${logdir}/radius.log
    auth = no
}
security {
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
$modules
}
server bench {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = $port
        recv_buff = 4194304
    }
    authorize {
$authorize
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
    }
    pre-proxy {
    }
    post-proxy {
    }
    post-auth {
    }
}
\$INCLUDE proxy.conf
CONF
    : >"$dir/proxy.conf"
}

# The home server: user0000..user0999 / pass0000..pass0999, PAP.
raddb "$WORK/home" "${HOME_AUTH##*:}" "    files {
        filename = \${confdir}/users
    }
    pap {
    }" "        files
        pap" no
for i in $(seq -f %04g 0 999); do
    printf 'user%s Cleartext-Password := "pass%s"\n' "$i" "$i"
done >"$WORK/home/users"

# FreeRADIUS as the proxy: the suffix realm module sends user@remote.test (stripped) to home.
raddb "$WORK/fr-proxy" "${FR_AUTH##*:}" "    realm suffix {
        format = suffix
        delimiter = \"@\"
    }
    pap {
    }" "        suffix" yes
cat >"$WORK/fr-proxy/proxy.conf" <<CONF
proxy server {
    default_fallback = no
}
home_server home {
    type = auth
    ipaddr = 127.0.0.1
    port = ${HOME_AUTH##*:}
    secret = testing123
    response_window = 20
    zombie_period = 40
    revive_interval = 120
    status_check = none
    max_outstanding = 65536
}
home_server_pool home {
    type = fail-over
    home_server = home
}
realm remote.test {
    auth_pool = home
}
CONF

HOME_PID=
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
stop_all() {
    stop_server
    if [ -n "$HOME_PID" ]; then kill -TERM "$HOME_PID" 2>/dev/null || true; wait "$HOME_PID" 2>/dev/null || true; fi
}
trap stop_all EXIT

port_free() {
    ! ss -Hlun "sport = :${1##*:}" 2>/dev/null | grep -q .
}

bench() {
    timeout --kill-after=5 $((SECS + WARMUP + 60)) taskset -c 1 "$BIN" bench --quiet --json "$@"
}

# wait_answers ADDR PID NAME: bounded wait until ADDR answers a proxied (or home) login.
wait_answers() {
    local addr=$1 pid=$2 name=$3 user=$4 deadline=$((SECONDS + 10))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if "$BIN" bench --server "$addr" --user-pattern "$user" --users 1 --count 1 --duration 1s \
            --timeout 300ms --quiet --json 2>/dev/null | jq -e '.counts.access_accept == 1' >/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "$name exited at start-up (see $OUT)"
        sleep 0.2
    done
    die "$name did not accept a login on $addr within 10 s (see $OUT)"
}

for a in "$HOME_AUTH" "$FR_AUTH" "$RS_AUTH"; do
    port_free "$a" || die "$a is already in use"
done
taskset -c 1 freeradius -f -d "$WORK/home" >"$OUT/home.log" 2>&1 &
HOME_PID=$!
wait_answers "$HOME_AUTH" "$HOME_PID" "the home server" "user%04d"

start_server() {
    case $1 in
    freeradius)
        AUTH=$FR_AUTH
        taskset -c 0 freeradius -f -d "$WORK/fr-proxy" >"$OUT/freeradius.log" 2>&1 &
        SERVER_PID=$! ;;
    radshard)
        AUTH=$RS_AUTH
        taskset -c 0 "$BIN" serve --config "$RS_CONFIG" --shards 1 >"$OUT/radshard.log" 2>&1 &
        SERVER_PID=$! ;;
    *) die "unknown server $1" ;;
    esac
    wait_answers "$AUTH" "$SERVER_PID" "$1" "user%04d@remote.test"
}

load_args() {
    echo "--mode pap --user-pattern user%04d@remote.test --users 1000 --sockets $SOCKETS --window $WINDOW --count $MAX_COUNT"
}

for round in $(seq "$ROUNDS"); do
    order=$SERVERS
    [ $((round % 2)) = 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
    for server in $order; do
        start_server "$server"
        # shellcheck disable=SC2046
        bench --server "$AUTH" $(load_args) --duration "${WARMUP}s" >/dev/null || true
        f=$OUT/pap-$server-$round.json
        echo "pap-$server-$round $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/loadavg.txt"
        before=$(cpu_snapshot "$SERVER_PID")
        # shellcheck disable=SC2046
        bench --server "$AUTH" $(load_args) --duration "${SECS}s" >"$f.bench" ||
            die "$server round $round: loader failed"
        after=$(cpu_snapshot "$SERVER_PID") || die "$server exited during the run"
        cpu_attach "$f.bench" "$(cpu_json "$before" "$after")" "$f"
        rm -f "$f.bench"
        log "$server round $round: $(jq -r '"\(.counts.access_accept / .elapsed_s | floor) accepted/s, proxy CPU \((.server_cpu.us_per_reply // 0) * 100 | round / 100) µs/req, p99 \(.latency_us.p99) µs, timeouts \(.counts.timeouts)"' "$f")"
        stop_server
    done
done
python3 - "$OUT" "$ROUNDS" "$SECS" "${FR_VERSION:-?}" "$FR_THREADS" "pap" "$SERVERS" <<'PY'
import glob, json, os, statistics, sys

out, rounds, secs, fr_version, fr_threads, modes, servers = sys.argv[1:8]
modes, servers = modes.split(), servers.split()
label = {"radshard": "radshard proxy (1 shard)", "freeradius": f"FreeRADIUS {fr_version} proxy ({fr_threads} threads)"}

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
                     ("timeouts", "bad_authenticator", "malformed", "unmatched", "unexpected", "access_reject"))
        failed |= errors > 0
        stats[(mode, server)] = (med(acc), med(cpu))
        rows.append(f"| {mode} | {label.get(server, server)} | {fmt(med(acc))} | {fmt(med(cpu), 2)} "
                    f"| {fmt(med([r['latency_us']['p50'] for r in runs]))} | {fmt(med([r['latency_us']['p99'] for r in runs]))} "
                    f"| {len(runs)} | {errors} |")

print(f"### Proxied PAP: proxy pinned to cpu0, FreeRADIUS home server and loader on cpu1 ({rounds} × {secs} s, medians)\n")
print("| mode | proxy | accepted/s | proxy CPU µs/req | p50 µs | p99 µs | rounds | failures |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
print("\n".join(rows))
ratios = []
for mode in modes:
    r, f = stats.get((mode, "radshard")), stats.get((mode, "freeradius"))
    if r and f and f[0] and f[1] and r[0] and r[1]:
        ratios.append(f"| {mode} | {r[0] / f[0]:.2f}× | {r[1] / f[1]:.2f}× |")
if ratios:
    print("\n| mode | accepted/s radshard/FreeRADIUS | proxy CPU µs/req radshard/FreeRADIUS |")
    print("| --- | ---: | ---: |")
    print("\n".join(ratios))
try:
    with open(os.path.join(out, "loadavg.txt")) as fh:
        loads = [float(line.split()[1]) for line in fh if len(line.split()) > 1]
    print(f"\n1-minute load average before the measured runs: {min(loads):.2f}–{max(loads):.2f} (2 cores).")
except (OSError, ValueError):
    pass
print(f"\nFailures: timeouts + bad/unmatched/malformed replies + unexpected codes + rejects, all rounds (must be 0). Raw reports: {out}")
sys.exit(1 if failed else 0)
PY
