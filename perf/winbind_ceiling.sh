#!/usr/bin/env bash
# MS-CHAPv2 through winbindd: in-process libwbclient (radshard's Winbind) vs a pool of
# persistent `ntlm_auth --helper-protocol=ntlm-server-1` helpers vs one `ntlm_auth` exec per
# login, T = 1 2 4 8 16 (exec: 8 in flight, as the recipe's FreeRADIUS baseline). Prints one
# table (logins/s, CPU ms per login of this process, of the helpers/execs, and of the Samba
# daemons). See examples/winbind_ceiling.rs.
#
#   perf/winbind_ceiling.sh                         # provisions the recipe's DC in a temp dir
#   SMB_CONF=/path/etc/smb.conf perf/winbind_ceiling.sh   # uses a running DC (user alice/alice-Pw1)
#   SECS=5 MAX=20000 THREADS=1,2,4,8,16 WB_CONNS="1 4" perf/winbind_ceiling.sh
#
# Needs root (winbind's privileged pipe) and, without SMB_CONF, the recipe's packages:
#   apt-get install -y samba samba-ad-dc samba-ad-provision winbind krb5-user ldap-utils
# Only one Samba AD DC fits on a machine (fixed ports, winbindd's fixed socket): without
# SMB_CONF this refuses to start while another `samba` runs.
#
# Measured 2026-12-02 on this 2-core machine, Samba 4.17.12, 5 s per cell, the quietest of three
# rounds (load 1.5-3.6; a round with other sessions' rustc running read 20-50 % lower):
#   logins/s (CPU ms per login: radshard or helper+driver / samba daemons)
#   max domain connections = 1:  winbind T=1..16  281-358 (0.09-0.15 / 2.7-3.3)
#                                helper  T=1..16  315-370 (0.11-0.16 / 2.6-3.1)
#   max domain connections = 4:  winbind T=8      694     (0.11 / 2.7)
#                                helper  T=8      720     (0.15 / 2.6)
#   exec, 8 in flight:                            57-67   (~26-30 in ntlm_auth / 3.4-4.1)
# winbindd's "domain child" for the domain does the work (~2.7 ms CPU per login); with the
# default of one child it is one process on one core, whichever client asks.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${SECS:-5}
MAX=${MAX:-20000}                    # every run is bounded by count as well as by time
THREADS=${THREADS:-1,2,4,8,16}
EXEC_THREADS=${EXEC_THREADS:-8}
MODES=${MODES:-winbind,helper}
LIMIT=${LIMIT:-600}                  # each driver run is killed after this many seconds
WB_CONNS=${WB_CONNS:-"1 4"}          # `winbind max domain connections` values to measure

cd "$ROOT"
cargo build --release --example winbind_ceiling >/dev/null
BIN=$ROOT/target/release/examples/winbind_ceiling

DC_PID=
stop_dc() {
  if [ -n "$DC_PID" ]; then
    kill "$DC_PID" 2>/dev/null || true
    wait "$DC_PID" 2>/dev/null || true
    DC_PID=
    # samba's tasks outlive the master by a moment; the ports must be free for the next start
    for _ in $(seq 100); do pgrep -x samba >/dev/null || break; sleep 0.1; done
  fi
}
cleanup() {
  stop_dc
  if [ -n "${WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

start_dc() {
  samba -i -s "$SMB_CONF" >>"$D/samba.log" 2>&1 &
  DC_PID=$!
  for _ in $(seq 600); do
    ldapsearch -x -H ldap://127.0.0.1 -s base -b "" defaultNamingContext >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "samba did not start; see $D/samba.log" >&2
  exit 1
}

measure() {
  # Wait until winbind verifies MS-CHAPv2 (INVALID_SERVER_STATE for a few seconds after a start).
  for _ in $(seq 120); do
    "$BIN" --smb-conf "$SMB_CONF" --modes winbind --threads 1 --secs 1 --max 1 2>/dev/null \
      | awk '$1 == "winbind" && $9 == 0 { ok = 1 } END { exit !ok }' && break
    sleep 1
  done
  echo "# $1; $(date -u +%FT%TZ) $(nproc) cores; samba $(samba -V 2>/dev/null); uptime: $(uptime)"
  timeout "$LIMIT" "$BIN" --smb-conf "$SMB_CONF" --modes "$MODES" --threads "$THREADS" \
    --secs "$SECS" --max "$MAX"
  timeout "$LIMIT" "$BIN" --smb-conf "$SMB_CONF" --modes exec --threads "$EXEC_THREADS" \
    --secs "$SECS" --max "$MAX" | grep -v '^#' | tail -n +2
  echo "# after: $(uptime)"
}

if [ -n "${SMB_CONF:-}" ]; then
  measure "DC of $SMB_CONF as it is"
  exit 0
fi

if pgrep -x samba >/dev/null; then
  echo "another samba is running (pid $(pgrep -x samba | head -1)); give its SMB_CONF or wait" >&2
  exit 1
fi
WORK=$(mktemp -d)
D=$WORK/samba
mkdir -p "$D/log"
echo "provisioning the recipe's DC in $D ..." >&2
samba-tool domain provision --targetdir="$D" --use-rfc2307 --realm=EXAMPLE.TEST --domain=EXAMPLE \
  --server-role=dc --dns-backend=NONE --adminpass='Adm1n-Passw0rd' --host-ip=127.0.0.1 \
  --option="interfaces=lo" --option="bind interfaces only=yes" >"$WORK/provision.log"
sed -i "s|^\tlog file = .*|\tlog file = $D/log/log.%m|" "$D/etc/smb.conf"
sed -i '/^\tidmap_ldb:use rfc2307 = yes/a \\tntlm auth = mschapv2-and-ntlmv2-only' "$D/etc/smb.conf"
SMB_CONF=$D/etc/smb.conf
start_dc
S="-s $SMB_CONF"
samba-tool domain passwordsettings set --complexity=off --min-pwd-length=1 --history-length=0 \
  --min-pwd-age=0 --max-pwd-age=0 $S >/dev/null
samba-tool user create alice alice-Pw1 $S >/dev/null
# winbindd serves a domain's requests from "winbind max domain connections" domain children
# (default 1): one process, and so one core, verifies every login unless it is raised.
for conns in $WB_CONNS; do
  stop_dc
  sed -i '/^\twinbind max domain connections = /d' "$SMB_CONF"
  sed -i "/^\tntlm auth = /a \\\\twinbind max domain connections = $conns" "$SMB_CONF"
  start_dc
  measure "recipe DC, winbind max domain connections = $conns"
done
