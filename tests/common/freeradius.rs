//! What every FreeRADIUS 3.2 the tests start has in common: the head of its radiusd.conf,
//! which puts every path (logs, run files, its dictionary, detail files) in the test's own
//! directory, so that instances never share a file with each other or with a system radiusd.

use std::path::Path;

/// The head of a radiusd.conf for an instance living in `dir`, reading module files from
/// `modconfdir` (`"${confdir}/mods-config"` for the test's own, or the package's directory).
/// The rest (limits, log, security, clients, modules, servers) is the caller's.
pub fn radiusd_head(dir: &Path, modconfdir: &str) -> String {
    let dir = dir.display();
    format!(
        "prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = {dir}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = {modconfdir}
run_dir = {dir}/run
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/${{name}}.pid
correct_escapes = true
max_request_time = 30
"
    )
}
