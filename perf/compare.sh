#!/usr/bin/env bash
# radshard vs FreeRADIUS under the same `radshard bench` load. See perf/README.md.
#
#   perf/compare.sh                        # 3 alternating rounds × 5 s per cell
#   ROUNDS=5 SECS=10 perf/compare.sh       # longer
#
# Writes medians and ratios into the "radshard vs FreeRADIUS" section of perf/RESULTS.md
# (other sections are left alone) and keeps every raw JSON report under $OUT (each one the
# bench report plus "server_cpu": the server's CPU time during that run, see perf/server_cpu.sh).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
FR_THREADS=${FR_THREADS:-4}          # FreeRADIUS fixed worker pool size
P99_RATE=${P99_RATE:-30000}          # open-loop rate for the same-offered-load p99 comparison
SOCKETS=${SOCKETS:-4}
WINDOW=${WINDOW:-256}
PLACEMENTS=${PLACEMENTS:-"pinned unpinned"}
WORKLOADS=${WORKLOADS:-"pap reject acct p99"}
MAX_COUNT=${MAX_COUNT:-5000000}      # every run is bounded by count as well as by time
# Benchmarks on a shared 2-core box are only as good as its quiet: wait up to this many seconds
# for the 1-minute load average to drop below QUIET_LOAD before each measured run.
QUIET_WAIT=${QUIET_WAIT:-0}
QUIET_LOAD=${QUIET_LOAD:-0.5}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=${RESULTS:-$ROOT/perf/RESULTS.md}
BIN=${BIN:-$ROOT/target/release/radshard}
WORK=$(mktemp -d /tmp/radshard-compare.XXXXXX)
OUT=${OUT:-$WORK/out}
RADDB=$WORK/raddb
mkdir -p "$OUT" "$RADDB"/{log,run,radacct}

RS_AUTH=127.0.0.1:11812 RS_ACCT=127.0.0.1:11813     # as in perf/bench.toml
FR_AUTH=127.0.0.1:21812 FR_ACCT=127.0.0.1:21813

log() { echo "== $*" >&2; }
# shellcheck source=perf/server_cpu.sh
. "$ROOT/perf/server_cpu.sh"

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
if ! command -v freeradius >/dev/null; then
    log "installing FreeRADIUS from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq freeradius
fi
FR_VERSION=$(freeradius -v 2>/dev/null | sed -n 's/.*FreeRADIUS Version \([0-9.]*\).*/\1/p' | head -1)

# --- FreeRADIUS: a private raddb with only what the benchmark needs -------------------------
cp /etc/freeradius/3.0/dictionary "$RADDB/dictionary"
for i in $(seq -f %04g 0 999); do
    printf 'user%s Cleartext-Password := "pass%s"\n' "$i" "$i"
done > "$RADDB/users"
cat > "$RADDB/radiusd.conf" <<CONF
# Tuned the way a performance-minded admin would: one virtual server with files + pap + chap,
# no reject delay, no per-request logging, a fixed thread pool, accounting to a detail file.
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
# Replies are kept this long for duplicate detection; 1 s keeps memory flat at 100k/s
# (radshard keeps a bounded reply cache instead).
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
    auto_limit_acct = no
}
client localhost {
    ipaddr = 127.0.0.1
    secret = testing123
    # The BlastRADIUS setting FreeRADIUS $FR_VERSION has; limit_proxy_state only exists from
    # 3.2.5, so that half of radshard's default cannot be matched.
    require_message_authenticator = yes
}
modules {
    files {
        filename = \${confdir}/users
    }
    pap {
        normalise = no
    }
    chap {
    }
    detail {
        filename = \${radacctdir}/detail
        escape_filenames = no
        permissions = 0600
        header = "%t"
        locking = no
    }
}
instantiate {
}
server bench {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = ${FR_AUTH##*:}
        # The default 208 KB socket buffer overflows with a few hundred requests in flight
        # (each datagram costs ~1 KB of buffer accounting); 4 MB is net.core.rmem_max here.
        recv_buff = 4194304
    }
    listen {
        type = acct
        ipaddr = 127.0.0.1
        port = ${FR_ACCT##*:}
        # The default 208 KB socket buffer overflows with a few hundred requests in flight
        # (each datagram costs ~1 KB of buffer accounting); 4 MB is net.core.rmem_max here.
        recv_buff = 4194304
    }
    authorize {
        chap
        files
        pap
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
        Auth-Type CHAP {
            chap
        }
    }
    preacct {
    }
    accounting {
        detail
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

# start_server NAME PLACEMENT: runs it in the background, waits until a PAP request is accepted.
start_server() {
    local name=$1 placement=$2 pin=()
    [ "$placement" = pinned ] && pin=(taskset -c 0)
    case $name in
    freeradius)
        rm -f "$RADDB"/radacct/detail
        "${pin[@]}" freeradius -f -d "$RADDB" >"$OUT/freeradius.log" 2>&1 &
        SERVER_PID=$!
        AUTH=$FR_AUTH ACCT=$FR_ACCT ;;
    radshard)
        rm -rf /tmp/radshard-bench/accounting
        local shards=()
        [ "$placement" = pinned ] && shards=(--shards 1)
        "${pin[@]}" "$BIN" serve --config "$ROOT/perf/bench.toml" "${shards[@]}" >"$OUT/radshard.log" 2>&1 &
        SERVER_PID=$!
        AUTH=$RS_AUTH ACCT=$RS_ACCT ;;
    esac
    for _ in $(seq 50); do
        if "$BIN" bench --server "$AUTH" --count 1 --timeout 200ms --quiet --json 2>/dev/null |
            jq -e '.counts.access_accept == 1' >/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/$name.log" >&2; return 1; }
        sleep 0.2
    done
    log "$name did not answer"; cat "$OUT/$name.log" >&2; return 1
}

# load PLACEMENT SECONDS OUTFILE ARGS...: one bounded `radshard bench` run, JSON to OUTFILE.
load() {
    local placement=$1 secs=$2 out=$3; shift 3
    local pin=()
    [ "$placement" = pinned ] && pin=(taskset -c 1)
    "${pin[@]}" "$BIN" bench --server "$AUTH" --acct-server "$ACCT" --sockets "$SOCKETS" \
        --count "$MAX_COUNT" --duration "${secs}s" --quiet --json "$@" >"$out"
}

wait_quiet() {
    local waited=0
    while [ "$waited" -lt "$QUIET_WAIT" ] &&
        awk -v t="$QUIET_LOAD" '{ exit !($1 >= t) }' /proc/loadavg; do
        sleep 1; waited=$((waited + 1))
    done
}

workload_args() {
    case $1 in
    pap) echo "--mode pap --window $WINDOW" ;;
    reject) echo "--mode pap --wrong-password 1 --window $WINDOW" ;;
    acct) echo "--mode acct --window $WINDOW" ;;
    p99) echo "--mode pap --rate $P99_RATE" ;;
    esac
}

for placement in $PLACEMENTS; do
    for workload in $WORKLOADS; do
        [ "$workload" = p99 ] && [ "$placement" = unpinned ] && continue
        for round in $(seq "$ROUNDS"); do
            # Alternate who goes first so drift (thermal, page cache) does not favour one side.
            if [ $((round % 2)) = 1 ]; then order="freeradius radshard"; else order="radshard freeradius"; fi
            for server in $order; do
                start_server "$server" "$placement"
                # Short warm-up: caches, thread pool, socket buffers.
                load "$placement" 1 /dev/null $(workload_args "$workload") || true
                tag=$workload
                [ "$workload" = p99 ] && tag=p99_$P99_RATE
                f="$OUT/$placement-$tag-$server-$round.json"
                wait_quiet
                echo "$placement-$workload-$server-$round $(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/loadavg.txt"
                # Server CPU time (all its threads) across exactly the measured run.
                before=$(cpu_snapshot "$SERVER_PID")
                load "$placement" "$SECS" "$f.bench" $(workload_args "$workload")
                after=$(cpu_snapshot "$SERVER_PID")
                cpu_attach "$f.bench" "$(cpu_json "$before" "$after")" "$f"
                rm -f "$f.bench"
                log "$placement $workload $server round $round: $(jq -r '"\(.requests_per_s|floor)/s server CPU \((.server_cpu.us_per_reply // 0) * 100 | round / 100)µs/req p99 \(.latency_us.p99)µs timeouts \(.counts.timeouts) bad \(.counts.bad_authenticator + .counts.malformed + .counts.unmatched) unexpected \(.counts.unexpected)"' "$f")"
                stop_server
            done
        done
    done
done

python3 "$ROOT/perf/summarize.py" "$OUT" "$RESULTS" \
    --rounds "$ROUNDS" --secs "$SECS" --fr-version "$FR_VERSION" --fr-threads "$FR_THREADS" \
    --sockets "$SOCKETS" --window "$WINDOW"
log "raw reports in $OUT; summary in $RESULTS"
