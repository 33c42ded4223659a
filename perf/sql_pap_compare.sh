#!/usr/bin/env bash
# SQL-backed PAP: radshard's SQL user store vs FreeRADIUS 3.2 + rlm_sql, on one PostgreSQL 15
# with FreeRADIUS's schema.sql and 1000 users (user0000..user0999, Cleartext-Password
# pass0000..pass0999 in radcheck, no groups). Both servers pinned to cpu0 in turn; PostgreSQL and
# `radshard bench --mode pap` share cpu1 (the database is part of the path being measured, so it
# gets the same core for both). Rounds alternate the servers so that drift falls on all of them.
#
#   perf/sql_pap_compare.sh                    # 3 rounds × 5 s per server
#   ROUNDS=1 SECS=2 perf/sql_pap_compare.sh    # smoke check
#
# Three cells: radshard with `[sql] cache_ttl = "0s"` (every request reads the database:
# prepared statements, pipelined on `pool` connections), radshard with the shipped default
# cache (2 s), FreeRADIUS (authorize { sql; pap }, read_groups = yes as shipped, read_profiles =
# no since radshard has no profiles, a pool of FR_THREADS connections, FR_THREADS threads).
# Prints a markdown table (medians) on stdout, progress on stderr.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
FR_THREADS=${FR_THREADS:-8}
PGPORT=${PGPORT:-55439}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/radshard}
PG=/usr/lib/postgresql/15/bin
SCHEMA=/etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql
WORK=$(mktemp -d /tmp/radshard-sqlpap.XXXXXX)
OUT=$WORK/out
RADDB=$WORK/raddb
mkdir -p "$OUT" "$RADDB"/{log,run,radacct}
die() { echo "sql_pap_compare: $*" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
[ -e /usr/lib/freeradius/rlm_sql_postgresql.so ] || die "needs freeradius-postgresql"
[ -x "$PG/initdb" ] || die "needs postgresql-15"
for p in 11812 21812; do
    ! ss -Hlun "sport = :$p" | grep -q . || die "port $p is in use"
done
! ss -Hlt "sport = :$PGPORT" | grep -q . || die "port $PGPORT is in use"

# --- PostgreSQL on cpu1 ---------------------------------------------------------------------
chown postgres "$WORK"
as_pg() { su postgres -s /bin/sh -c "$*"; }
as_pg "'$PG/initdb' -D '$WORK/pg' -A trust -U postgres >/dev/null"
as_pg "taskset -c 1 '$PG/pg_ctl' -D '$WORK/pg' -o \"-k '$WORK' -h 127.0.0.1 -p $PGPORT -c max_connections=100\" -l '$WORK/pg.log' start >/dev/null"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    as_pg "'$PG/pg_ctl' -D '$WORK/pg' stop -m fast >/dev/null" || true
}
trap cleanup EXIT
until "$PG/pg_isready" -h 127.0.0.1 -p "$PGPORT" -q; do sleep 0.1; done
psql() { "$PG/psql" -h 127.0.0.1 -p "$PGPORT" -v ON_ERROR_STOP=1 -q "$@"; }
psql -U postgres -c "CREATE ROLE radius LOGIN PASSWORD 'radpass'"
psql -U postgres -c "CREATE DATABASE radius OWNER radius"
psql -U radius -d radius -f "$SCHEMA"
psql -U radius -d radius -c "INSERT INTO radcheck (username, attribute, op, value)
    SELECT 'user' || lpad(i::text, 4, '0'), 'Cleartext-Password', ':=', 'pass' || lpad(i::text, 4, '0')
    FROM generate_series(0, 999) AS i"

# --- radshard: perf/bench.toml's server and client, users from the database ----------------
for ttl in 0s 2s; do
    sed -e '/^\[local\]/,/^users_file/d' "$ROOT/perf/bench.toml" >"$WORK/radshard-$ttl.toml"
    cat >>"$WORK/radshard-$ttl.toml" <<CONF

[sql]
dialect = "postgresql"
server = "127.0.0.1"
port = $PGPORT
database = "radius"
login = "radius"
password = "radpass"
pool = 4
cache_ttl = "$ttl"
CONF
done

# --- FreeRADIUS: authorize { sql; pap }, as tuned as perf/compare.sh's --------------------
cp /etc/freeradius/3.0/dictionary "$RADDB/dictionary"
cat >"$RADDB/radiusd.conf" <<CONF
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
    pap {
        normalise = no
    }
    # %{tolower:…} in queries.conf (its accounting queries are parsed even when unused)
    expr {
    }
    sql {
        driver = "rlm_sql_postgresql"
        dialect = "postgresql"
        server = "127.0.0.1"
        port = $PGPORT
        login = "radius"
        password = "radpass"
        radius_db = "radius"
        acct_table1 = "radacct"
        acct_table2 = "radacct"
        postauth_table = "radpostauth"
        authcheck_table = "radcheck"
        groupcheck_table = "radgroupcheck"
        authreply_table = "radreply"
        groupreply_table = "radgroupreply"
        usergroup_table = "radusergroup"
        read_groups = yes
        read_profiles = no
        read_clients = no
        client_table = "nas"
        group_attribute = "SQL-Group"
        pool {
            start = $FR_THREADS
            min = $FR_THREADS
            max = $FR_THREADS
            spare = $FR_THREADS
            uses = 0
            retry_delay = 1
            lifetime = 0
            idle_timeout = 0
        }
        \$INCLUDE /etc/freeradius/3.0/mods-config/sql/main/postgresql/queries.conf
    }
}
server bench {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = 21812
        recv_buff = 4194304
    }
    authorize {
        sql
        pap
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
    }
}
CONF

PID= ADDR=
stop_server() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }; }
trap 'stop_server; cleanup' EXIT
ready() { # ADDR
    for _ in $(seq 100); do
        "$BIN" bench --server "$1" --count 1 --duration 1s --timeout 300ms --quiet --json \
            2>/dev/null | jq -e '.counts.access_accept == 1' >/dev/null && return
        sleep 0.2
    done
    die "the server on $1 did not accept user0000"
}
serve() { # CELL; sets PID and ADDR
    case $1 in
    freeradius)
        taskset -c 0 freeradius -f -d "$RADDB" >"$OUT/freeradius.log" 2>&1 &
        PID=$! ADDR=127.0.0.1:21812 ;;
    radshard-*)
        rm -rf "$WORK/acct"
        taskset -c 0 "$BIN" serve --config "$WORK/$1.toml" --shards 1 \
            --accounting-dir "$WORK/acct" >"$OUT/$1.log" 2>&1 &
        PID=$! ADDR=127.0.0.1:11812 ;;
    esac
}
run() { # ADDR SECONDS
    timeout --kill-after=5 $(($2 + 60)) taskset -c 1 "$BIN" bench --quiet --json --mode pap \
        --users 1000 --server "$1" --sockets 4 --window 256 --count 50000000 --duration "${2}s"
}
CELLS="radshard-0s radshard-2s freeradius"
for round in $(seq "$ROUNDS"); do
    for cell in $CELLS; do
        serve "$cell"
        ready "$ADDR"
        run "$ADDR" 1 >/dev/null || true
        run "$ADDR" "$SECS" >"$OUT/$cell-$round.json" || die "$cell round $round: loader failed"
        echo "== $cell round $round: $(jq -r '"\(.counts.access_accept / .elapsed_s | floor) accepted/s, p99 \(.latency_us.p99) µs, timeouts \(.counts.timeouts), rejects \(.counts.access_reject)"' "$OUT/$cell-$round.json")" >&2
        stop_server
    done
done

python3 - "$OUT" "$ROUNDS" "$SECS" <<'PY'
import glob, json, os, statistics, sys
out, rounds, secs = sys.argv[1:4]
print(f"### SQL-backed PAP, one PostgreSQL 15 (cpu1, with the loader); servers on cpu0 ({rounds} × {secs} s, medians)\n")
print("| server | accepted/s | p50 µs | p99 µs | rounds (accepted/s) | failures |")
print("| --- | ---: | ---: | ---: | --- | ---: |")
names = {"radshard-0s": "radshard, no row cache", "radshard-2s": "radshard, cache_ttl 2 s (default)", "freeradius": "FreeRADIUS 3.2 + rlm_sql"}
med, failed = {}, False
for cell, label in names.items():
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, f"{cell}-*.json")))]
    rate = [r["counts"]["access_accept"] / r["elapsed_s"] for r in runs]
    errors = sum(r["counts"][k] for r in runs for k in ("timeouts", "access_reject", "bad_authenticator", "malformed", "unmatched", "unexpected"))
    failed |= errors > 0
    med[cell] = statistics.median(rate)
    print(f"| {label} | {med[cell]:,.0f} | {statistics.median(r['latency_us']['p50'] for r in runs):,} "
          f"| {statistics.median(r['latency_us']['p99'] for r in runs):,} | {', '.join(f'{a/1000:.1f}k' for a in rate)} | {errors} |")
fr = med["freeradius"]
print(f"\nradshard / FreeRADIUS: {med['radshard-0s'] / fr:.2f}× without the cache, {med['radshard-2s'] / fr:.2f}× with it (target ≥ 3×)\n\nRaw reports: {out}")
sys.exit(1 if failed else 0)
PY
