#!/usr/bin/env bash
# Runs radshard's whole test suite on a Debian machine, as root or with sudo.
# Installs the real peers the tests talk to (FreeRADIUS's radclient/radtest, FreeRADIUS's
# dictionaries, OpenLDAP's slapd and ldap-utils, a Samba AD DC, openssl for test
# certificates) if they are missing, and a privacyIDEA in a virtualenv
# (target/privacyidea-venv, pip; the MFA test starts its own instance), then runs `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v radclient >/dev/null 2>&1 || need+=(freeradius-utils)
[ -f /usr/share/freeradius/dictionary ] || need+=(freeradius-common)
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapadd >/dev/null 2>&1 || need+=(ldap-utils)
command -v samba >/dev/null 2>&1 || [ -x /usr/sbin/samba ] || need+=(samba samba-ad-dc winbind krb5-user)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# privacyIDEA 3.14 from PyPI (all wheels, no compiler); tests/mfa_privacyidea_real.rs uses it.
PI_VENV="${RADSHARD_PRIVACYIDEA_VENV:-target/privacyidea-venv}"
if [ ! -x "$PI_VENV/bin/pi-manage" ]; then
    python3 -m venv "$PI_VENV"
    "$PI_VENV/bin/pip" install -q --upgrade pip
    "$PI_VENV/bin/pip" install -q "privacyidea==3.14"
fi

cargo test --all-targets "$@"
