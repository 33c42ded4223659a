#!/usr/bin/env bash
# Creates the PostgreSQL database config/sql-postgresql.toml uses: PostgreSQL 15 in a
# directory of its own (default ./pg-data, or $1), listening on 127.0.0.1:54329 only, role
# radius (password radpass) owning database radius, FreeRADIUS 3.2's schema loaded unchanged
# (mods-config/sql/main/postgresql/schema.sql, and the IP pool schema), and one example user:
# alice / alice-pw (Cleartext-Password := in radcheck).
#
#     bash scripts/sql-postgresql-db.sh            # create and start (as root: runs PostgreSQL as postgres)
#     bash scripts/sql-postgresql-db.sh DIR stop   # stop it again
#
# Needs the Debian packages postgresql-15 and freeradius-config (apt-get install -y
# --no-install-recommends postgresql-15 freeradius-config). Run it again to start an existing
# database; the schema and alice are loaded once.
set -euo pipefail

DIR=$(realpath -m "${1:-./pg-data}")
PORT=54329
PG=/usr/lib/postgresql/15/bin
SCHEMA=/etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql
IPPOOL=/etc/freeradius/3.0/mods-config/sql/ippool/postgresql/schema.sql

for f in "$PG/initdb" "$PG/pg_ctl" "$PG/psql" "$SCHEMA" "$IPPOOL"; do
    [ -e "$f" ] || { echo "missing $f: apt-get install -y --no-install-recommends postgresql-15 freeradius-config" >&2; exit 1; }
done

# PostgreSQL refuses to run as root: as root, its files and processes belong to postgres.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

if [ "${2:-}" = stop ]; then
    as_pg "'$PG/pg_ctl' -D '$DIR/data' stop -m fast"
    exit 0
fi

mkdir -p "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
fresh=false
if [ ! -f "$DIR/data/PG_VERSION" ]; then
    as_pg "'$PG/initdb' -D '$DIR/data' -A trust -U postgres >/dev/null"
    fresh=true
fi
if ! "$PG/pg_isready" -h 127.0.0.1 -p "$PORT" -q; then
    as_pg "'$PG/pg_ctl' -D '$DIR/data' -o \"-k '$DIR' -h 127.0.0.1 -p $PORT\" -l '$DIR/log' start >/dev/null"
fi
until "$PG/pg_isready" -h 127.0.0.1 -p "$PORT" -q; do sleep 0.1; done

psql() { "$PG/psql" -h 127.0.0.1 -p "$PORT" -v ON_ERROR_STOP=1 -q "$@"; }
if $fresh; then
    psql -U postgres -c "CREATE ROLE radius LOGIN PASSWORD 'radpass'"
    # CREATE DATABASE refuses to run inside a transaction block: a psql -c of its own.
    psql -U postgres -c 'CREATE DATABASE radius OWNER radius'
    psql -U radius -d radius -f "$SCHEMA"
    psql -U radius -d radius -f "$IPPOOL"
    psql -U radius -d radius -c "INSERT INTO radcheck (username, attribute, op, value) VALUES ('alice', 'Cleartext-Password', ':=', 'alice-pw')"
fi
echo "PostgreSQL on 127.0.0.1:$PORT (data in $DIR/data, log $DIR/log): database radius, login radius/radpass"
