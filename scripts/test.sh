#!/usr/bin/env bash
# Runs radshard's whole test suite on a Debian 12 machine, as root or with sudo.
# Installs the real peers the tests talk to (FreeRADIUS's server, radclient/radtest and
# dictionaries, OpenLDAP's slapd and ldap-utils, a Samba AD DC, hostap's eapol_test,
# radsecproxy, hostapd and wpa_supplicant with iproute2, PostgreSQL 15 and FreeRADIUS's
# rlm_sql_postgresql, openssl for test certificates, curl) when
# anything the tests use is missing, and a privacyIDEA in a virtualenv (target/privacyidea-venv,
# pip; the MFA tests start their own instance), then runs `cargo test` (all binaries, even
# after a failure).
set -euo pipefail
cd "$(dirname "$0")/.."

PI_VENV="${RADSHARD_PRIVACYIDEA_VENV:-target/privacyidea-venv}"

# What the tests use, each with the Debian 12 package that ships it. Checked item by item, so a
# machine with only part of a peer installed still gets the rest. Packages are named one by one
# because --no-install-recommends drops Recommends: samba-ad-provision (the AD schema files
# `samba-tool domain provision` reads) is only a Recommends of samba and samba-ad-dc.
need=()    # packages to install
missing=() # what was not found, for the message
need_pkg() {
    case " ${need[*]-} " in *" $1 "*) ;; *) need+=("$1") ;; esac
}
# want PACKAGE ITEM...: an ITEM starting with / is a file (or a glob), anything else a command
# in PATH; PACKAGE is needed when any ITEM is missing.
want() {
    local pkg=$1 item
    shift
    for item in "$@"; do
        case $item in
        /*) compgen -G "$item" >/dev/null && continue ;;
        *) command -v "$item" >/dev/null 2>&1 && continue ;;
        esac
        missing+=("$item")
        need_pkg "$pkg"
    done
}
# want_deb PACKAGE: for a package with nothing of its own to check (a metapackage).
want_deb() {
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]] && return
    missing+=("package $1")
    need_pkg "$1"
}
check() {
    need=()
    missing=()
    # FreeRADIUS: radclient/radtest (tests/common, proto_interop, operations, dataplane_*,
    # ldap_common) and the dictionaries (dict_freeradius).
    want freeradius-utils /usr/bin/radclient /usr/bin/radtest
    want freeradius-common /usr/share/freeradius/dictionary
    # The FreeRADIUS server itself (tests/bench_loader.rs runs its mschap module as the peer
    # the MS-CHAP loader is checked against; tests/eap_freeradius_reference.rs its EAP module
    # as the reference the eapol_test harness is proven on).
    want freeradius /usr/sbin/freeradius
    # OpenLDAP as tests/ldap_common/mod.rs configures it: slapd, the four schemas it includes,
    # the back_mdb and memberof modules it loads; ldapadd for the base entries.
    want slapd /usr/sbin/slapd /usr/lib/ldap/back_mdb.so /usr/lib/ldap/memberof.so \
        /etc/ldap/schema/core.schema /etc/ldap/schema/cosine.schema \
        /etc/ldap/schema/nis.schema /etc/ldap/schema/inetorgperson.schema
    want ldap-utils /usr/bin/ldapadd /usr/bin/ldapsearch
    # Samba AD DC as tests/ldap_samba.rs runs it: samba-tool domain provision (python3-samba,
    # the AD schema from samba-ad-provision, the DSDB ldb modules), then `samba -i`, which starts
    # its own winbindd; ldapsearch (above) waits for it. ntlm_auth/wbinfo: same package as
    # winbindd, the MS-CHAPv2 path of shared/recipes/samba.md.
    want samba /usr/sbin/samba
    want samba-common-bin /usr/bin/samba-tool
    want python3-samba /usr/lib/python3/dist-packages/samba/provision/__init__.py
    want samba-ad-provision \
        /usr/share/samba/setup/ad-schema/AD_DS_Attributes__Windows_Server_2012_R2.ldf \
        /usr/share/samba/setup/ad-schema/AD_DS_Classes__Windows_Server_2012_R2.ldf
    want samba-dsdb-modules '/usr/lib/*/samba/ldb/samba_dsdb.so'
    want samba-vfs-modules '/usr/lib/*/samba/vfs/acl_xattr.so'
    want winbind /usr/sbin/winbindd /usr/bin/ntlm_auth /usr/bin/wbinfo
    # [winbind] dlopens libwbclient at run time (tests/winbind_*.rs); its header lets the FFI
    # layout test (backend::winbind::ffi) compare every struct offset with the C compiler's.
    want libwbclient0 '/usr/lib/*/libwbclient.so.0'
    want libwbclient-dev /usr/include/samba-4.0/wbclient.h
    want_deb samba-ad-dc
    # Test certificates (ldap_common; the EAP negative fixtures of tests/common/eapol.rs:
    # other CA, expired and revoked client certificates, CRL) and privacyIDEA's REST API
    # (pi_common).
    want openssl openssl
    want curl curl
    # hostap's eapol_test, the real EAP peer of tests/eap_eapol.rs (radshard) and
    # tests/eap_freeradius_reference.rs (FreeRADIUS, above, as the reference), via
    # tests/common/eapol.rs.
    want eapoltest /usr/bin/eapol_test
    # radsecproxy 1.9.2, the RadSec peer of tests/radsec.rs and tests/proxy_radsec.rs
    # (tests/common/radsecproxy.rs): a UDP-to-TLS client of radshard and a TLS home server.
    want radsecproxy /usr/sbin/radsecproxy
    # hostapd (wired driver, its DAS on) as the real 802.1X NAS of tests/sessions_hostapd.rs,
    # a wpa_supplicant -Dwired peer in a network namespace made with iproute2's `ip netns`
    # (tests/common/hostapd.rs).
    # PostgreSQL 15 (initdb, pg_ctl, psql) with FreeRADIUS's own schema files and its
    # rlm_sql_postgresql driver: tests/sql_freeradius.rs runs radshard and FreeRADIUS 3.2 with
    # rlm_sql on one database (tests/common/postgres.rs); scripts/sql-postgresql-db.sh.
    want freeradius-config /etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql \
        /etc/freeradius/3.0/mods-config/sql/ippool/postgresql/schema.sql
    want postgresql-15 /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl
    want postgresql-client-15 /usr/lib/postgresql/15/bin/psql
    want freeradius-postgresql /usr/lib/freeradius/rlm_sql_postgresql.so
    want hostapd /usr/sbin/hostapd
    want wpasupplicant /usr/sbin/wpa_supplicant
    want iproute2 ip
    # The privacyIDEA virtualenv, only while it still has to be built: python3 with venv and
    # ensurepip (Debian's python3 has ensurepip only with python3-venv; a pyenv python has it).
    if [ ! -x "$PI_VENV/bin/pi-manage" ]; then
        want python3 python3
        if command -v python3 >/dev/null 2>&1 &&
            ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
            missing+=("python3 -m venv ($(command -v python3) cannot import venv, ensurepip)")
            need_pkg python3-venv
        elif ! command -v python3 >/dev/null 2>&1; then
            need_pkg python3-venv
        fi
    fi
}

check
if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: missing: ${missing[*]}" >&2
    echo "test.sh: installing: ${need[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    # --reinstall (and --force-confmiss, for the slapd schemas, which are conffiles) also
    # restores files deleted from a package that is still installed.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        --reinstall -o Dpkg::Options::=--force-confmiss "${need[@]}" >/dev/null
    check
    if [ ${#missing[@]} -gt 0 ]; then
        echo "test.sh: still missing after installing: ${missing[*]}" >&2
        exit 1
    fi
fi

# privacyIDEA 3.14 from PyPI (all wheels, no compiler); tests/mfa_privacyidea_*.rs use it.
if [ ! -x "$PI_VENV/bin/pi-manage" ]; then
    python3 -m venv "$PI_VENV"
    "$PI_VENV/bin/pip" install -q --upgrade pip
    "$PI_VENV/bin/pip" install -q "privacyidea==3.14"
fi

# --no-fail-fast: every test binary runs even after one fails, so a failing run names every
# failing test (a CI log that stops at the first binary hides the rest).
cargo test --all-targets --no-fail-fast "$@"
