# FreeRADIUS 3.2's EAP configuration as /work/shared/recipes/eapol_test.md section 4
# (freeradius_setup.sh) builds it: a copy of /etc/freeradius/3.0 (never /etc itself), private
# log and run directories, the invoking user, no proxy socket, one auth listener on 127.0.0.1,
# client 127.0.0.1/testing123, user alice/alicepw, the EAP module on our certificates.
#
# Sourced by perf/eap_compare.sh; run by tests/common/freeradius_eap.rs as
#   bash perf/lib/freeradius_eap.sh freeradius_eap_raddb [options] RD STATE CERTS PORT
#
# freeradius_eap_raddb [options] RD STATE CERTS PORT
#   RD     the raddb to (re)create (removed first)
#   STATE  where log/, run/ (and with --resume tlscache/) go: RD itself or a directory beside it
#   CERTS  server.pem, server.key and the client CA (ca.pem unless --ca-file)
#   PORT   the auth listener's port on 127.0.0.1
# options:
#   --tls13          tls_max_version = "1.3" (the recipe's TLS13=1; Debian caps it at 1.2)
#   --resume         the TLS session cache on, name and persist_dir as 3.2 needs (RESUME=1)
#   --ca-file NAME   the client CA file in CERTS (default ca.pem)
#   --check-crl      check_crl = yes (the --ca-file then carries the CRL)
#   --users FILE     more users-file entries, after alice's
#   --post-auth FILE unlang put at the top of the default server's post-auth section
# Non-zero as soon as a step fails: call it as a plain command (not in an if, || or && list,
# where bash ignores set -e). Needs python3.
#
# freeradius_eap_check RD STATE
#   `freeradius -C` of RD, its output in STATE/log/config-check.log.

freeradius_eap_raddb() (
    set -eu
    local tls13=0 resume=0 ca_file=ca.pem check_crl=0 users='' post_auth=''
    while [ $# -gt 0 ]; do
        case $1 in
        --tls13) tls13=1 ;;
        --resume) resume=1 ;;
        --ca-file) ca_file=$2; shift ;;
        --check-crl) check_crl=1 ;;
        --users) users=$2; shift ;;
        --post-auth) post_auth=$2; shift ;;
        --*) echo "freeradius_eap_raddb: unknown option $1" >&2; return 2 ;;
        *) break ;;
        esac
        shift
    done
    [ $# -eq 4 ] || { echo "usage: freeradius_eap_raddb [options] RD STATE CERTS PORT" >&2; return 2; }
    local rd=$1 state=$2 c=$3 port=$4
    rm -rf "$rd"; cp -a /etc/freeradius/3.0 "$rd"; mkdir -p "$state/log" "$state/run"
    sed -i -e "s|^logdir = .*|logdir = $state/log|" \
           -e "s|^raddbdir = .*|raddbdir = $rd|" \
           -e "s|^run_dir = .*|run_dir = $state/run|" \
           -e 's|^\(\s*\)user = freerad|\1#user = freerad|' \
           -e 's|^\(\s*\)group = freerad|\1#group = freerad|' \
           -e 's|^proxy_requests\s*=.*|proxy_requests = no|' \
           -e 's|^max_requests = .*|max_requests = 65536|' "$rd/radiusd.conf"
    printf 'listen {\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = %s\n}\n' "$port" >"$state/run/listen.conf"
    rm -f "$rd/sites-enabled/default" "$rd/sites-enabled/inner-tunnel"
    # Every listen { } block out of both virtual servers, ours in place of the default's first
    # (brace depth counted on the code before any '#').
    python3 - "$rd" "$state/run/listen.conf" <<'PY'
import re, sys
rd, listen = sys.argv[1], sys.argv[2]
def strip(src, dst, repl=''):
    out, depth, skip, done = [], 0, False, False
    for line in open(src).read().split('\n'):
        code = line.split('#', 1)[0]
        if not skip and re.match(r'^\s*listen\s*\{', code):
            skip, ld = True, depth
            if repl and not done: out.append(repl.rstrip('\n')); done = True
        depth += code.count('{') - code.count('}')
        if skip:
            if depth == ld: skip = False
            continue
        out.append(line)
    open(dst, 'w').write('\n'.join(out))
strip(f'{rd}/sites-available/default', f'{rd}/sites-enabled/default', open(listen).read())
strip(f'{rd}/sites-available/inner-tunnel', f'{rd}/sites-enabled/inner-tunnel')
PY
    printf 'client localhost {\n\tipaddr = 127.0.0.1\n\tsecret = testing123\n}\n' >"$rd/clients.conf"
    {
        printf 'alice\tCleartext-Password := "alicepw"\n\n'
        [ -z "$users" ] || cat "$users"
        cat "$rd/mods-config/files/authorize"
    } >"$rd/users.tmp"
    mv "$rd/users.tmp" "$rd/mods-config/files/authorize"
    local eap=$rd/mods-available/eap
    sed -i -e 's|^\(\s*\)private_key_password = .*|\1#private_key_password = (unencrypted key)|' \
           -e "s|^\(\s*\)private_key_file = .*|\1private_key_file = $c/server.key|" \
           -e "s|^\(\s*\)certificate_file = .*|\1certificate_file = $c/server.pem|" \
           -e "s|^\(\s*\)ca_file = .*|\1ca_file = $c/$ca_file|" \
           -e 's|^\(\s*\)ca_path = \${cadir}|\1#ca_path = ${cadir}|' "$eap"
    if [ "$tls13" = 1 ]; then
        sed -i 's|^\(\s*\)tls_max_version = "1.2"|\1tls_max_version = "1.3"|' "$eap"
    fi
    if [ "$check_crl" = 1 ]; then
        sed -i 's|^\(\s*\)#\+\s*check_crl = yes$|\1check_crl = yes|' "$eap"
        grep -q '^\s*check_crl = yes$' "$eap" || { echo "no '#check_crl = yes' in $eap" >&2; return 1; }
    fi
    if [ "$resume" = 1 ]; then
        mkdir -p -m 700 "$state/tlscache"
        python3 - "$eap" "$state/tlscache" <<'PY'
import re, sys
p, d = sys.argv[1], sys.argv[2]; L = open(p).read().split('\n'); i = next(n for n, l in enumerate(L) if re.match(r'^\s*cache \{', l))
done = set()
for n in range(i, len(L)):
    if 'en' not in done and re.match(r'^\s*enable = no', L[n]): L[n] = L[n].replace('enable = no', 'enable = yes'); done.add('en')
    elif 'nm' not in done and re.match(r'^\s*#\s*name = ', L[n]): L[n] = '\t\t\tname = "EAP module"'; done.add('nm')
    elif 'pd' not in done and re.match(r'^\s*#\s*persist_dir = ', L[n]): L[n] = f'\t\t\tpersist_dir = "{d}"'; done.add('pd')
    if len(done) == 3: break
assert len(done) == 3, done
open(p, 'w').write('\n'.join(L))
PY
    fi
    if [ -n "$post_auth" ] && [ -s "$post_auth" ]; then
        python3 - "$rd/sites-enabled/default" "$post_auth" <<'PY'
import re, sys
p, extra = sys.argv[1], open(sys.argv[2]).read()
L = open(p).read().split('\n'); i = next(n for n, l in enumerate(L) if re.match(r'^post-auth\s*\{', l))
L.insert(i + 1, extra)
open(p, 'w').write('\n'.join(L))
PY
    fi
)

freeradius_eap_check() {
    freeradius -C -d "$1" >"$2/log/config-check.log" 2>&1
}

# Run directly: the first argument names the function.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    "$@"
fi
