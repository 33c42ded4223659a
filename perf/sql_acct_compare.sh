#!/usr/bin/env bash
# Accounting into PostgreSQL's radacct: radshard's shipper vs FreeRADIUS 3.2's rlm_sql, on
# one throwaway PostgreSQL 15 (FreeRADIUS's schema.sql, default durability: fsync and
# synchronous_commit on) that the script starts in a temp directory. Both servers pinned to
# cpu0 (radshard `--shards 1`: its shard, control thread and shipper all on cpu0), loaded by
# `radshard bench --mode acct` on cpu1 (each session a Start, an Interim-Update and a Stop);
# PostgreSQL is not pinned (it shares the machine with both).
#
#   * `ship`: radshard with `[sql] accounting = true`: acknowledged once fsync'ed to the
#     local log (as always), shipped behind it. Rows/s = records ÷ time from the start of
#     the load until the checkpoint reaches the log's end (radacct holds every record).
#   * `file`: radshard without `[sql]`: the file-only path's acknowledged rate.
#   * `freeradius`: rlm_sql writes each request to radacct before answering (its stock
#     postgresql queries.conf, the acct_unique policy), so its acknowledged rate is its rate
#     into radacct.
#
#   perf/sql_acct_compare.sh                     # 3 rounds × 5 s
#   ROUNDS=1 SECS=2 perf/sql_acct_compare.sh     # smoke check
#
# Prints a markdown table (medians) on stdout, progress on stderr.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/radshard}
PGBIN=/usr/lib/postgresql/15/bin
SCHEMA=/etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql
WORK=$(mktemp -d /tmp/radshard-sqlacct.XXXXXX)
OUT=$WORK/out
mkdir -p "$OUT"
die() { echo "sql_acct_compare: $*" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs"
[ -x "$PGBIN/initdb" ] || die "needs postgresql-15"
[ -e /usr/lib/freeradius/rlm_sql_postgresql.so ] || die "needs freeradius-postgresql"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
for p in 11812 11813 11822 11823; do
    ! ss -Hlun "sport = :$p" | grep -q . || die "port $p is in use"
done

# --- PostgreSQL ------------------------------------------------------------------------------
PGPORT=15432
while ss -Hltn "sport = :$PGPORT" | grep -q .; do PGPORT=$((PGPORT + 1)); done
asowner() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
chmod 755 "$WORK"
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
asowner "$PGBIN/initdb -D $WORK/pg/data -A trust -U postgres >/dev/null"
asowner "$PGBIN/pg_ctl -D $WORK/pg/data -w -o \"-k $WORK/pg -h 127.0.0.1 -p $PGPORT\" -l $WORK/pg/log start >/dev/null"
psql() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -v ON_ERROR_STOP=1 -q -A -t "$@"; }
psql -U postgres -d postgres -c "CREATE ROLE radius LOGIN PASSWORD 'radpass'"
psql -U postgres -d postgres -c "CREATE DATABASE radius OWNER radius"
psql -U radius -d radius -f "$SCHEMA" >/dev/null
sql() { psql -U radius -d radius -c "$1"; }

PID=
stop_server() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }; }
cleanup() {
    stop_server
    asowner "$PGBIN/pg_ctl -D $WORK/pg/data -m immediate stop >/dev/null 2>&1" || true
}
trap cleanup EXIT

# --- radshard --------------------------------------------------------------------------------
for side in ship file; do
    sed "s|users_file = \"bench-users.toml\"|users_file = \"$ROOT/perf/bench-users.toml\"|" \
        "$ROOT/perf/bench.toml" >"$WORK/$side.toml"
done
cat >>"$WORK/ship.toml" <<TOML

[sql]
server = "127.0.0.1"
port = $PGPORT
database = "radius"
login = "radius"
password = "radpass"
users = false
accounting = true
ship_batch = ${SHIP_BATCH:-1000}
ship_interval = "100ms"
TOML

# --- FreeRADIUS 3.2 with rlm_sql -------------------------------------------------------------
FR=$WORK/fr
mkdir -p "$FR/log" "$FR/run" "$FR/radacct"
cp /etc/freeradius/3.0/dictionary "$FR/dictionary"
cat >"$FR/radiusd.conf" <<CONF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $FR/log
raddbdir = $FR
radacctdir = $FR/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = /etc/freeradius/3.0/mods-config
run_dir = $FR/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 0
max_requests = 65536
hostname_lookups = no
log {
    destination = files
    file = \${logdir}/radius.log
    colourise = no
}
security {
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}
thread pool {
    start_servers = 32
    max_servers = 32
    min_spare_servers = 3
    max_spare_servers = 32
    max_requests_per_server = 0
    max_queue_size = 65536
}
client localhost {
    ipaddr = 127.0.0.1
    secret = testing123
}
modules {
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
        read_clients = no
        client_table = "nas"
        group_attribute = "SQL-Group"
        read_groups = no
        read_profiles = no
        pool {
            start = 32
            min = 32
            max = 32
            spare = 32
            uses = 0
            lifetime = 0
            idle_timeout = 0
        }
        \$INCLUDE /etc/freeradius/3.0/mods-config/sql/main/postgresql/queries.conf
    }
}
policy {
    # FreeRADIUS's acct_unique (policy.d/accounting), its branch for requests without our Class.
    acct_unique {
        update request {
            &Acct-Unique-Session-Id := "%{md5:%{User-Name},%{Acct-Session-ID},%{%{NAS-IPv6-Address}:-%{NAS-IP-Address}},%{NAS-Identifier},%{NAS-Port-ID},%{NAS-Port}}"
        }
    }
}
server default {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = 11822
    }
    listen {
        type = acct
        ipaddr = 127.0.0.1
        port = 11823
    }
    authorize {
    }
    authenticate {
    }
    preacct {
        acct_unique
    }
    accounting {
        sql
    }
}
CONF

serve() { # ship|file|freeradius
    rm -rf "$WORK/acct"
    sql "TRUNCATE radacct"
    sql "DELETE FROM radshard_ship_checkpoint" 2>/dev/null || true
    if [ "$1" = freeradius ]; then
        taskset -c 0 freeradius -f -d "$FR" >"$OUT/freeradius.log" 2>&1 &
        PID=$!
        for _ in $(seq 100); do ss -Hlun "sport = :11823" | grep -q . && return; sleep 0.1; done
        die "freeradius did not start (see $FR/log/radius.log)"
    fi
    taskset -c 0 "$BIN" serve --config "$WORK/$1.toml" --shards 1 \
        --accounting-dir "$WORK/acct" >"$OUT/radshard-$1.log" 2>&1 &
    PID=$!
    for _ in $(seq 50); do
        "$BIN" bench --server 127.0.0.1:11812 --count 1 --duration 1s --timeout 200ms --quiet \
            --json 2>/dev/null | jq -e '.counts.access_accept == 1' >/dev/null && return
        sleep 0.2
    done
    die "radshard ($1) did not start"
}
run() { # SECONDS ACCT-PORT [WINDOW]
    timeout --kill-after=5 $(($1 + 60)) taskset -c 1 "$BIN" bench --quiet --json \
        --mode acct --server 127.0.0.1:11812 --acct-server "127.0.0.1:$2" --users 1000 \
        --sockets 4 --window "${3:-256}" --count 50000000 --duration "${1}s"
}
log_bytes() { cat "$WORK"/acct/accounting-*.jsonl 2>/dev/null | wc -c; }
shipped_bytes() { sql "SELECT coalesce(sum(\"offset\"), 0) FROM radshard_ship_checkpoint" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

for round in $(seq "$ROUNDS"); do
    for side in ${SIDES:-ship file freeradius}; do
        serve $side
        port=$([ $side = freeradius ] && echo 11823 || echo 11813)
        run 1 "$port" >/dev/null || true # warm-up (its rows are cleared below)
        if [ $side = ship ]; then
            # The warm-up is shipped before the measured load starts.
            for _ in $(seq 300); do [ "$(shipped_bytes)" -ge "$(log_bytes)" ] && break; sleep 0.1; done
        fi
        # The bench numbers sessions from 0 in every run: the warm-up's rows go, so that the
        # measured load's sessions are new rows.
        sql "TRUNCATE radacct"
        rows0=0
        t0=$(now)
        window=$([ $side = freeradius ] && echo "${FR_WINDOW:-256}" || echo 256)
        run "$SECS" "$port" "$window" >"$OUT/$side-$round.json" || die "$side round $round: loader failed"
        t_load=$(now)
        if [ $side = ship ]; then
            for _ in $(seq 1200); do [ "$(shipped_bytes)" -ge "$(log_bytes)" ] && break; sleep 0.05; done
            [ "$(shipped_bytes)" -ge "$(log_bytes)" ] || die "ship round $round: not caught up after 60 s"
        fi
        t1=$(now)
        rows=$(( $(sql "SELECT count(*) FROM radacct") - rows0 ))
        jq --argjson t0 "$t0" --argjson tl "$t_load" --argjson t1 "$t1" --argjson rows "$rows" \
            '. + {t_load: ($tl - $t0), t_all: ($t1 - $t0), rows: $rows}' \
            "$OUT/$side-$round.json" >"$OUT/$side-$round.x.json"
        echo "== $side round $round: $(jq -r '"\(.counts.accounting_response / .elapsed_s | floor) acks/s, p99 \(.latency_us.p99) µs, timeouts \(.counts.timeouts), radacct +\(.rows) rows, all in radacct after \(.t_all * 100 | floor / 100) s (load \(.t_load * 100 | floor / 100) s)"' "$OUT/$side-$round.x.json")" >&2
        stop_server
    done
done

python3 - "$OUT" "$ROUNDS" "$SECS" <<'PY'
import glob, json, os, statistics, sys
out, rounds, secs = sys.argv[1:4]
print(f"### Accounting into radacct: radshard's shipper vs FreeRADIUS 3.2 rlm_sql (server on cpu0, loader on cpu1, PostgreSQL 15 unpinned; {rounds} × {secs} s, medians)\n")
print("| side | acknowledged/s | p99 µs | records into radacct/s | radacct rows/s | in radacct after (load) s | rounds (records into radacct/s) | timeouts |")
print("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |")
med = {}
for name in ("ship", "file", "freeradius"):
    if not glob.glob(os.path.join(out, f"{name}-*.x.json")):
        continue
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, f"{name}-*.x.json")))]
    acks = [r["counts"]["accounting_response"] / r["elapsed_s"] for r in runs]
    into = [r["counts"]["accounting_response"] / r["t_all"] for r in runs] if name != "file" else []
    rows = [r["rows"] / r["t_all"] for r in runs] if name != "file" else []
    t = lambda k: statistics.median(r[k] for r in runs)
    med[name] = (statistics.median(acks), statistics.median(into) if into else None)
    timeouts = sum(r["counts"]["timeouts"] for r in runs)
    f = lambda v: "—" if v is None else f"{v:,.0f}"
    after = "—" if name == "file" else "%.2f (%.2f)" % (t("t_all"), t("t_load"))
    p99 = statistics.median(r["latency_us"]["p99"] for r in runs)
    per_round = ", ".join("%.1fk" % (a / 1000) for a in into) or "—"
    print(f"| {name} | {med[name][0]:,.0f} | {p99:,} | {f(med[name][1])} "
          f"| {f(statistics.median(rows) if rows else None)} | {after} | {per_round} | {timeouts} |")
if len(med) < 3:
    sys.exit(0)
print(f"\nShipper into radacct / FreeRADIUS: {med['ship'][1] / med['freeradius'][1]:.2f}× (target ≥ 5×); "
      f"acknowledged with shipping / file only: {med['ship'][0] / med['file'][0]:.3f}×\n\nRaw reports: {out}")
PY
