//! A throwaway PostgreSQL 15 (Debian's) for the SQL tests, as shared/recipes/postgresql.md
//! runs it: a cluster in a temp directory, listening on a free 127.0.0.1 port only (and a
//! socket in that directory), role `radius`/`radpass` owning database `radius`, FreeRADIUS
//! 3.2's own schema.sql loaded unchanged. Stopped on drop.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (CI), the cluster belongs to
//! `postgres` and its tools run through `su`. scripts/test.sh installs postgresql-15 and
//! freeradius-config, so a missing one is a failure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::ports;

const BIN: &str = "/usr/lib/postgresql/15/bin";
pub const SCHEMA: &str = "/etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql";

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a shell command line as the cluster's owner.
fn as_owner(line: &str) -> Output {
    let mut c = if is_root() {
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", line]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", line]);
        c
    };
    c.output().expect("run a PostgreSQL tool")
}

fn ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    /// A cluster with FreeRADIUS's schema in database `radius`.
    pub fn start() -> Postgres {
        assert!(
            Path::new(&format!("{BIN}/initdb")).exists() && Path::new(SCHEMA).exists(),
            "these tests need PostgreSQL 15 and FreeRADIUS's schema: apt-get install -y \
             --no-install-recommends postgresql-15 freeradius-config (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let _ = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status();
        }
        let port = ports::free_tcp_port();
        let d = dir.path().display().to_string();
        ok(
            "initdb",
            &as_owner(&format!(
                "{BIN}/initdb -D {d}/data -A trust -U postgres >/dev/null"
            )),
        );
        ok(
            "pg_ctl start",
            &as_owner(&format!(
                "{BIN}/pg_ctl -D {d}/data -w -o \"-k {d} -h 127.0.0.1 -p {port}\" -l {d}/log start >/dev/null"
            )),
        );
        let pg = Postgres { port, dir };
        pg.psql_as(
            "postgres",
            "postgres",
            "CREATE ROLE radius LOGIN PASSWORD 'radpass'",
        );
        // CREATE DATABASE refuses to run inside a transaction block: a command of its own.
        pg.psql_as(
            "postgres",
            "postgres",
            "CREATE DATABASE radius OWNER radius",
        );
        let out = pg.psql_file(SCHEMA);
        ok("loading schema.sql", &out);
        pg
    }

    /// Runs an SQL file as `radius` (e.g. FreeRADIUS's ippool schema), panicking on error.
    pub fn load(&self, path: &str) {
        ok(path, &self.psql_file(path));
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn psql_cmd(&self, user: &str, db: &str) -> Command {
        let mut c = Command::new(format!("{BIN}/psql"));
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            user,
            "-d",
            db,
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-A", "-t"]);
        c
    }

    fn psql_as(&self, user: &str, db: &str, sql: &str) -> String {
        let out = self
            .psql_cmd(user, db)
            .args(["-c", sql])
            .output()
            .expect("psql");
        ok(&format!("psql {sql:?}"), &out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn psql_file(&self, path: &str) -> Output {
        self.psql_cmd("radius", "radius")
            .args(["-f", path])
            .output()
            .expect("psql")
    }

    /// Runs `sql` in database `radius` as `radius`; its output rows, `|`-separated.
    pub fn sql(&self, sql: &str) -> String {
        self.psql_as("radius", "radius", sql)
    }

    /// Runs `sql` as the superuser (pg_terminate_backend of other roles' sessions).
    pub fn sql_super(&self, sql: &str) -> String {
        self.psql_as("postgres", "radius", sql)
    }

    /// Stops the server (fast shutdown: sessions are cut), keeping the cluster.
    pub fn stop(&self) {
        let d = self.dir.path().display().to_string();
        ok(
            "pg_ctl stop",
            &as_owner(&format!(
                "{BIN}/pg_ctl -D {d}/data -w -m fast stop >/dev/null"
            )),
        );
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) {
        let (d, port) = (self.dir.path().display().to_string(), self.port);
        ok(
            "pg_ctl start",
            &as_owner(&format!(
                "{BIN}/pg_ctl -D {d}/data -w -o \"-k {d} -h 127.0.0.1 -p {port}\" -l {d}/log start >/dev/null"
            )),
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let d = self.dir.path().display().to_string();
        let _ = as_owner(&format!(
            "{BIN}/pg_ctl -D {d}/data -m immediate stop >/dev/null 2>&1"
        ));
    }
}

/// `'text'` as an SQL string literal (for the tests' own INSERTs; radshard's queries take
/// parameters).
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
