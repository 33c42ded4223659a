#!/usr/bin/env bash
# MS-CHAPv2 against Active Directory (the Samba AD DC of shared/recipes/samba.md, provisioned
# here in a temp dir): radshard through winbind vs FreeRADIUS 3.2 + `ntlm_auth` (one exec per
# login, its documented setup), both under the same `radshard bench --mode mschapv2` load, next
# to the ceiling: winbindd driven directly by examples/winbind_ceiling.rs (in-process
# libwbclient, no RADIUS). Every login has fresh random challenges (--mschap-pool 0), so no
# cache or single-flight can shorten a run; the loader checks every S=.
#
#   perf/winbind_compare.sh                    # 3 rounds × 5 s, winbind max domain connections 4
#   ROUNDS=1 SECS=3 WB_CONNS=1 perf/winbind_compare.sh
#
# Prints a markdown table: logins/s (medians), machine CPU per login (all processes: the
# RADIUS server, its ntlm_auth children, Samba, the loader; /proc/stat) and the server's own CPU
# per login (with the ntlm_auth children FreeRADIUS forked and reaped; /proc/PID/stat). Needs root
# (winbind's privileged pipe) and the recipe's packages plus freeradius; only one Samba DC fits on
# a machine, so it refuses to start while another `samba` runs. Every run is bounded by count
# and time.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
MAX=${MAX:-200000}
WB_CONNS=${WB_CONNS:-4}           # `winbind max domain connections` on the DC (Samba's default: 1)
FR_INFLIGHT=${FR_INFLIGHT:-8}     # as the recipe's FreeRADIUS reference
RS_WINDOW=${RS_WINDOW:-32}
RS_BACKEND_THREADS=${RS_BACKEND_THREADS:-1}   # radshard's [backend] threads (1: fewer hand-offs; default 2)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/radshard}
CEIL=$ROOT/target/release/examples/winbind_ceiling
RS_AUTH=127.0.0.1:11812
FR_AUTH=127.0.0.1:21812

log() { echo "== $*" >&2; }
die() { echo "winbind_compare: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (winbind's privileged pipe)"
for t in samba samba-tool ntlm_auth freeradius jq ldapsearch; do
    command -v "$t" >/dev/null || die "needs $t (apt-get install samba samba-ad-dc samba-ad-provision winbind ldap-utils freeradius jq)"
done
pgrep -x samba >/dev/null && die "another samba runs (pid $(pgrep -x samba | head -1))"
(cd "$ROOT" && cargo build --release --bin radshard --example winbind_ceiling >/dev/null)

WORK=$(mktemp -d /tmp/radshard-winbind.XXXXXX)
D=$WORK/samba
SMB_CONF=$D/etc/smb.conf
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for _ in $(seq 100); do pgrep -x samba >/dev/null || break; sleep 0.1; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- the DC ---------------------------------------------------------------------------------
mkdir -p "$D/log"
log "provisioning the recipe's DC in $D"
samba-tool domain provision --targetdir="$D" --use-rfc2307 --realm=EXAMPLE.TEST --domain=EXAMPLE \
    --server-role=dc --dns-backend=NONE --adminpass='Adm1n-Passw0rd' --host-ip=127.0.0.1 \
    --option="interfaces=lo" --option="bind interfaces only=yes" >"$WORK/provision.log"
sed -i "s|^\tlog file = .*|\tlog file = $D/log/log.%m|" "$SMB_CONF"
sed -i '/^\tidmap_ldb:use rfc2307 = yes/a \\tntlm auth = mschapv2-and-ntlmv2-only' "$SMB_CONF"
sed -i "/^\tntlm auth = /a \\\\twinbind max domain connections = $WB_CONNS" "$SMB_CONF"
samba -i -s "$SMB_CONF" >"$D/samba.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do
    ldapsearch -x -H ldap://127.0.0.1 -s base -b "" defaultNamingContext >/dev/null 2>&1 && break
    sleep 0.1
done
S="-s $SMB_CONF"
samba-tool domain passwordsettings set --complexity=off --min-pwd-length=1 --history-length=0 \
    --min-pwd-age=0 --max-pwd-age=0 $S >/dev/null
# The same requests as the ceiling's driver: one user, fresh challenges every login.
samba-tool user create user00 pass00 $S >/dev/null
echo "user00 pass00" >"$WORK/users"
# MS-CHAPv2 through winbind answers INVALID_SERVER_STATE for a few seconds after a start.
for _ in $(seq 120); do
    "$CEIL" --smb-conf "$SMB_CONF" --user user00 --password pass00 --modes winbind --threads 1 \
        --secs 1 --max 1 2>/dev/null | awk '$1 == "winbind" && $9 == 0 { ok = 1 } END { exit !ok }' && break
    sleep 1
done

# --- the servers ----------------------------------------------------------------------------
cat >"$WORK/radshard.toml" <<EOF
[server]
listen_auth = ["$RS_AUTH"]
listen_acct = ["127.0.0.1:11813"]
[log]
level = "warn"
[metrics]
listen = "127.0.0.1:0"
[accounting]
directory = "$WORK/acct"
[backend]
threads = $RS_BACKEND_THREADS
deadline = "5s"
max_in_flight = 1024
[winbind]
smb_conf = "$SMB_CONF"
threads = 8
timeout = "5s"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
EOF
mkdir -p "$WORK/raddb"/{log,run}
cp /etc/freeradius/3.0/dictionary "$WORK/raddb/dictionary"
cat >"$WORK/raddb/radiusd.conf" <<EOF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $WORK/raddb/log
raddbdir = $WORK/raddb
radacctdir = $WORK/raddb/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
run_dir = $WORK/raddb/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 1
max_requests = 65536
hostname_lookups = no
proxy_requests = no
log {
    destination = files
    file = \${logdir}/radius.log
    auth = no
}
security {
    reject_delay = 0
    status_server = yes
}
thread pool {
    start_servers = $FR_INFLIGHT
    max_servers = $FR_INFLIGHT
    min_spare_servers = $FR_INFLIGHT
    max_spare_servers = $FR_INFLIGHT
    max_requests_per_server = 0
    max_queue_size = 65536
}
client localhost {
    ipaddr = 127.0.0.1
    secret = testing123
}
modules {
    # FreeRADIUS's documented AD setup (mods-available/mschap): one ntlm_auth per login.
    mschap {
        ntlm_auth = "/usr/bin/ntlm_auth --configfile=$SMB_CONF --request-nt-key --allow-mschapv2 --username=%{mschap:User-Name} --domain=EXAMPLE --challenge=%{%{mschap:Challenge}:-00} --nt-response=%{%{mschap:NT-Response}:-00}"
    }
}
server bench {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = ${FR_AUTH##*:}
    }
    authorize {
        mschap
    }
    authenticate {
        Auth-Type MS-CHAP {
            mschap
        }
    }
}
EOF

# busy_ticks: all CPUs' non-idle jiffies from /proc/stat.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
HZ=$(getconf CLK_TCK)

# proc_ticks PID: the process's utime+stime plus its reaped children's (FreeRADIUS's ntlm_auth).
proc_ticks() {
    local s
    s=$(cat "/proc/$1/stat") || { echo 0; return; }
    s=${s##*) }
    read -r -a f <<<"$s"
    echo $((f[11] + f[12] + f[13] + f[14]))
}

# run NAME ADDR WINDOW: one bounded loader run; prints "logins_per_s machine_ms_per_login
# failures server_ms_per_login" (server: the RADIUS server and the helpers it forked).
run() {
    local b a json pb pa
    b=$(busy_ticks)
    pb=$(proc_ticks "$SERVER")
    json=$(timeout --kill-after=5 $((SECS + 60)) "$BIN" bench --quiet --json --mode mschapv2 \
        --users-file "$WORK/users" --mschap-pool 0 --server "$2" --window "$3" \
        --duration "${SECS}s" --count "$MAX" --timeout 10s)
    a=$(busy_ticks)
    pa=$(proc_ticks "$SERVER")
    jq -r --argjson t $((a - b)) --argjson p $((pa - pb)) --argjson hz "$HZ" '
        .counts.access_accept as $ok |
        [ ($ok / .elapsed_s), (if $ok > 0 then $t * 1000 / $hz / $ok else null end),
          (.counts.timeouts + .counts.access_reject + .counts.bad_auth_response + .counts.unexpected),
          (if $ok > 0 then $p * 1000 / $hz / $ok else null end) ]
        | @tsv' <<<"$json"
}

start() { # NAME: starts the server, waits for an answer
    case $1 in
    radshard) "$BIN" serve --config "$WORK/radshard.toml" >"$WORK/radshard.log" 2>&1 & ;;
    freeradius) freeradius -f -d "$WORK/raddb" >"$WORK/freeradius.log" 2>&1 & ;;
    esac
    SERVER=$!
    PIDS+=("$SERVER")
    sleep 2
    # Warm-up (connections to winbindd, FreeRADIUS's threads), not measured.
    local addr=$RS_AUTH
    [ "$1" = freeradius ] && addr=$FR_AUTH
    timeout 30 "$BIN" bench --quiet --mode mschapv2 --users-file "$WORK/users" --mschap-pool 0 \
        --server "$addr" --window 8 --duration 1s --count 2000 >/dev/null || true
}
stop() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }

declare -A R
for round in $(seq "$ROUNDS"); do
    log "round $round: ceiling (winbindd driven directly, 8 threads)"
    b=$(busy_ticks)
    line=$(timeout 120 "$CEIL" --smb-conf "$SMB_CONF" --user user00 --password pass00 \
        --modes winbind --threads 8 --secs "$SECS" --max "$MAX" | awk '$1 == "winbind"')
    a=$(busy_ticks)
    R[ceiling]+="$(awk '{ print $5 }' <<<"$line") "
    R[ceiling_cpu]+="$(awk -v t=$((a - b)) -v hz="$HZ" '{ print t * 1000 / hz / $3 }' <<<"$line") "
    R[ceiling_self]+="$(awk '{ print $6 }' <<<"$line") "
    start radshard
    log "round $round: radshard"
    read -r rate cpu fail own < <(run radshard "$RS_AUTH" "$RS_WINDOW")
    R[radshard]+="$rate "; R[radshard_cpu]+="$cpu "; R[radshard_fail]+="$fail "; R[radshard_own]+="$own "
    read -r rate cpu fail own < <(run radshard "$RS_AUTH" "$FR_INFLIGHT")
    R[radshard8]+="$rate "; R[radshard8_cpu]+="$cpu "; R[radshard8_fail]+="$fail "; R[radshard8_own]+="$own "
    if [ -n "${THREAD_CPU:-}" ]; then # where radshard's CPU went, by thread name (ticks)
        for t in /proc/"$SERVER"/task/*; do
            st=$(cat "$t/stat"); st=${st##*) }; read -r -a f <<<"$st"
            echo "$(cat "$t/comm") $((f[11] + f[12]))"
        done | awk '{ c[$1] += $2 } END { for (k in c) print "   ", k, c[k] }' | sort -k2 -n -r >&2
    fi
    stop
    start freeradius
    log "round $round: FreeRADIUS + ntlm_auth"
    read -r rate cpu fail own < <(run freeradius "$FR_AUTH" "$FR_INFLIGHT")
    R[fr]+="$rate "; R[fr_cpu]+="$cpu "; R[fr_fail]+="$fail "; R[fr_own]+="$own "
    stop
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m() { median <<<"${R[$1]}"; }
fails() { tr ' ' '\n' | awk '{ s += $1 } END { print s + 0 }' <<<"${R[$1]}"; }
cat <<EOF
### MS-CHAPv2 against the Samba AD DC: radshard + winbind vs FreeRADIUS + ntlm_auth ($ROUNDS × ${SECS} s, medians; winbind max domain connections = $WB_CONNS)

| path | in flight | logins/s | machine CPU ms/login | server CPU ms/login | failures |
| --- | ---: | ---: | ---: | ---: | ---: |
| winbindd driven directly (ceiling) | 8 threads | $(m ceiling) | $(m ceiling_cpu) | $(m ceiling_self) (driver) | |
| radshard → winbind | $RS_WINDOW | $(m radshard) | $(m radshard_cpu) | $(m radshard_own) | $(fails radshard_fail) |
| radshard → winbind | $FR_INFLIGHT | $(m radshard8) | $(m radshard8_cpu) | $(m radshard8_own) | $(fails radshard8_fail) |
| FreeRADIUS $(freeradius -v 2>/dev/null | sed -n 's/.*Version \([0-9.]*\).*/\1/p' | head -1) + ntlm_auth exec | $FR_INFLIGHT | $(m fr) | $(m fr_cpu) | $(m fr_own) (with ntlm_auth) | $(fails fr_fail) |

radshard/FreeRADIUS: $(awk -v a="$(m radshard)" -v b="$(m fr)" 'BEGIN { printf "%.1f×", a / b }'); radshard/ceiling: $(awk -v a="$(m radshard)" -v b="$(m ceiling)" 'BEGIN { printf "%.0f %%", 100 * a / b }'). Load before: $(uptime | sed 's/.*load average: //').
EOF
