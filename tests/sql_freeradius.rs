//! The SQL user store against FreeRADIUS 3.2 with rlm_sql on the same PostgreSQL 15 database
//! (FreeRADIUS's own schema.sql, loaded unchanged): users given check, reply and group rows as
//! FreeRADIUS would be given them get the same Access-Accept or Access-Reject and the same
//! reply attributes from both servers, asked by radclient. Then what FreeRADIUS is not needed
//! for: names that look like SQL injection, a database that stalls (the deadline), a
//! connection killed mid-way, the nas table as clients, Simultaneous-Use from radcheck.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::freeradius;
use common::postgres::{lit, Postgres};
use common::*;

// ---------------------------------------------------------------------------------------------
// FreeRADIUS 3.2 with rlm_sql (postgresql dialect)
// ---------------------------------------------------------------------------------------------

/// After [`freeradius::radiusd_head`].
const FR_CONF: &str = r#"
cleanup_delay = 0
max_requests = 4096
hostname_lookups = no
log {
    destination = files
    file = ${logdir}/radius.log
    colourise = no
}
security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}
thread pool {
    start_servers = 2
    max_servers = 2
    min_spare_servers = 1
    max_spare_servers = 2
    max_requests_per_server = 0
}
client localhost {
    ipaddr = 127.0.0.1
    secret = testing123
}
modules {
    pap {
    }
    chap {
    }
    mschap {
    }
    expiration {
    }
    # %{tolower:…} and %{integer:…} in queries.conf's accounting and post-auth queries.
    expr {
    }
    # As the stock default site: an Access-Reject carries none of the reply items but these.
    attr_filter attr_filter.access_reject {
        key = "%{User-Name}"
        filename = ${modconfdir}/attr_filter/access_reject
    }
    sql {
        driver = "rlm_sql_postgresql"
        dialect = "postgresql"
        server = "127.0.0.1"
        port = @PGPORT@
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
        delete_stale_sessions = yes
        read_groups = yes
        read_profiles = yes
        read_clients = no
        client_table = "nas"
        group_attribute = "SQL-Group"
        pool {
            start = 1
            min = 1
            max = 2
            spare = 1
            uses = 0
            retry_delay = 1
            lifetime = 0
            idle_timeout = 60
        }
        $INCLUDE /etc/freeradius/3.0/mods-config/sql/main/postgresql/queries.conf
    }
}
server default {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = @AUTH@
    }
    authorize {
        chap
        mschap
        sql
        expiration
        pap
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
        Auth-Type CHAP {
            chap
        }
        Auth-Type MS-CHAP {
            mschap
        }
    }
    post-auth {
        Post-Auth-Type REJECT {
            attr_filter.access_reject
        }
    }
}
"#;

struct FreeRadiusSql {
    child: Child,
    auth: SocketAddr,
    dir: tempfile::TempDir,
}

impl FreeRadiusSql {
    fn start(pg_port: u16) -> FreeRadiusSql {
        assert!(
            std::path::Path::new("/usr/lib/freeradius/rlm_sql_postgresql.so").exists(),
            "these tests need FreeRADIUS's PostgreSQL driver: apt-get install -y \
             --no-install-recommends freeradius-postgresql (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["log", "run", "radacct"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        std::fs::copy(
            "/etc/freeradius/3.0/dictionary",
            dir.path().join("dictionary"),
        )
        .expect("the FreeRADIUS 3.2 server: apt-get install -y freeradius");
        let port = ports::free_udp_port();
        let conf = freeradius::radiusd_head(dir.path(), "/etc/freeradius/3.0/mods-config")
            + &FR_CONF
                .replace("@DIR@", &dir.path().display().to_string())
                .replace("@AUTH@", &port.to_string())
                .replace("@PGPORT@", &pg_port.to_string());
        std::fs::write(dir.path().join("radiusd.conf"), conf).expect("radiusd.conf");
        let child = Command::new("freeradius")
            .arg("-f")
            .arg("-d")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("freeradius");
        let mut fr = FreeRadiusSql {
            child,
            auth: ([127, 0, 0, 1], port).into(),
            dir,
        };
        fr.wait_ready();
        fr
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/radius.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log().contains("Ready to process requests") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("freeradius exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("freeradius not ready after 20 s:\n{}", self.log());
    }
}

impl Drop for FreeRadiusSql {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// radclient
// ---------------------------------------------------------------------------------------------

/// A reply as radclient printed it: the code and the attributes (strings unquoted).
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    code: String,
    attrs: Vec<(String, String)>,
}

/// Sends one Access-Request (radclient's attribute syntax, one per line) and reads the reply.
fn ask(server: SocketAddr, request: &str) -> Answer {
    let input = format!("{request}\nNAS-IP-Address = 127.0.0.1\nMessage-Authenticator = 0x00\n");
    let out = run_tool(
        "radclient",
        &[
            "-x",
            "-r",
            "1",
            "-t",
            "5",
            &server.to_string(),
            "auth",
            "testing123",
        ],
        &input,
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut answer = Answer {
        code: "none".into(),
        attrs: Vec::new(),
    };
    let mut lines = text.lines();
    for l in lines.by_ref() {
        if let Some(rest) = l.strip_prefix("Received ") {
            answer.code = rest.split_whitespace().next().unwrap_or("?").to_string();
            break;
        }
    }
    for l in lines {
        let Some(l) = l.strip_prefix('\t') else { break };
        if let Some((n, v)) = l.split_once(" = ") {
            answer
                .attrs
                .push((n.to_string(), v.trim_matches('"').to_string()));
        }
    }
    answer
}

/// What both servers must agree on: the code, and the attributes but Message-Authenticator,
/// sorted by name (radshard puts the method's attributes first; values of one name keep
/// their order), with the values of per-request ones (MS-CHAP keys and success, salted and
/// derived from each request's challenge) left out, MS-CHAP-Error reduced to its error code
/// (radshard never offers a retry: `R=0`, no `C=`), Session-Timeouts of an Expiration
/// (seconds left, asked a moment apart) rounded to the minute. A reject's Reply-Message is
/// left out: FreeRADIUS's stock filter lets the user's radreply Reply-Message into an
/// Access-Reject, radshard sends only `reject_reply_message`.
fn comparable(a: &Answer) -> Answer {
    let mut attrs: Vec<(String, String)> = a
        .attrs
        .iter()
        .filter(|(n, _)| n != "Message-Authenticator")
        .filter(|(n, _)| !(a.code == "Access-Reject" && n == "Reply-Message"))
        .map(|(n, v)| {
            let v = match n.as_str() {
                "MS-CHAP-MPPE-Keys" | "MS-MPPE-Send-Key" | "MS-MPPE-Recv-Key"
                | "MS-CHAP2-Success" => "<per request>".to_string(),
                "MS-CHAP-Error" => v
                    .split_whitespace()
                    .find_map(|w| w.find("E=").map(|i| w[i..].to_string()))
                    .unwrap_or_default(),
                "Session-Timeout" => match v.parse::<u64>() {
                    Ok(n) if n > 86_400 => format!("~{}", (n + 30) / 60),
                    _ => v.clone(),
                },
                _ => v.clone(),
            };
            (n.clone(), v)
        })
        .collect();
    attrs.sort_by(|x, y| x.0.cmp(&y.0));
    Answer {
        code: a.code.clone(),
        attrs,
    }
}

// ---------------------------------------------------------------------------------------------
// The users, as rows
// ---------------------------------------------------------------------------------------------

fn insert(pg: &Postgres, table: &str, user: &str, rows: &[(&str, &str, &str)]) {
    let col = if table.starts_with("radgroup") {
        "groupname"
    } else {
        "username"
    };
    for (a, op, v) in rows {
        pg.sql(&format!(
            "INSERT INTO {table} ({col}, attribute, op, value) VALUES ({}, {}, {}, {})",
            lit(user),
            lit(a),
            lit(op),
            lit(v)
        ));
    }
}

fn member(pg: &Postgres, user: &str, group: &str, priority: i32) {
    pg.sql(&format!(
        "INSERT INTO radusergroup (username, groupname, priority) VALUES ({}, {}, {priority})",
        lit(user),
        lit(group)
    ));
}

fn openssl_passwd(kind: &str, pw: &str) -> String {
    let out = Command::new("openssl")
        .args(["passwd", kind, pw])
        .output()
        .expect("openssl passwd");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn load_users(pg: &Postgres) {
    use md5::{Digest, Md5};
    insert(
        pg,
        "radcheck",
        "pap-user",
        &[("Cleartext-Password", ":=", "pap-pw")],
    );
    insert(
        pg,
        "radreply",
        "pap-user",
        &[
            ("Reply-Message", ":=", "hello pap"),
            ("Session-Timeout", ":=", "3600"),
            ("Framed-IP-Address", ":=", "10.1.2.3"),
            ("Tunnel-Type", ":=", "VLAN"),
            ("Tunnel-Medium-Type", ":=", "IEEE-802"),
            ("Tunnel-Private-Group-Id", ":=", "42"),
        ],
    );
    let nt = radshard::auth::mschap::NtHash::of_password(b"nt-pw").expect("utf-8");
    insert(
        pg,
        "radcheck",
        "nt-user",
        &[("NT-Password", ":=", &data_encoding::HEXUPPER.encode(&nt.0))],
    );
    insert(pg, "radreply", "nt-user", &[("Reply-Message", ":=", "nt")]);
    insert(
        pg,
        "radcheck",
        "crypt6-user",
        &[("Crypt-Password", ":=", &openssl_passwd("-6", "crypt-pw"))],
    );
    insert(
        pg,
        "radcheck",
        "crypt1-user",
        &[("Crypt-Password", ":=", &openssl_passwd("-1", "crypt-pw"))],
    );
    let md5 = data_encoding::HEXLOWER.encode(&Md5::digest(b"md5-pw"));
    insert(pg, "radcheck", "md5-user", &[("MD5-Password", ":=", &md5)]);
    let salt = b"s4lt";
    let ssha = [
        sha1::Sha1::new()
            .chain_update(b"ssha-pw")
            .chain_update(salt)
            .finalize()
            .to_vec(),
        salt.to_vec(),
    ]
    .concat();
    let ssha = data_encoding::BASE64.encode(&ssha);
    insert(
        pg,
        "radcheck",
        "ssha-user",
        &[("SSHA-Password", ":=", &ssha)],
    );
    insert(
        pg,
        "radcheck",
        "header-user",
        &[("Password-With-Header", ":=", &format!("{{SSHA}}{ssha}"))],
    );
    insert(
        pg,
        "radcheck",
        "reject-user",
        &[
            ("Cleartext-Password", ":=", "reject-pw"),
            ("Auth-Type", ":=", "Reject"),
        ],
    );
    insert(
        pg,
        "radcheck",
        "accept-user",
        &[("Auth-Type", ":=", "Accept")],
    );
    insert(
        pg,
        "radreply",
        "accept-user",
        &[("Reply-Message", ":=", "no password needed")],
    );
    insert(
        pg,
        "radcheck",
        "expired-user",
        &[
            ("Cleartext-Password", ":=", "exp-pw"),
            ("Expiration", ":=", "Jan  1 2020 00:00:00"),
        ],
    );
    insert(
        pg,
        "radcheck",
        "future-user",
        &[
            ("Cleartext-Password", ":=", "exp-pw"),
            ("Expiration", ":=", "Jan  1 2037 00:00:00"),
        ],
    );
    insert(
        pg,
        "radcheck",
        "nas-user",
        &[
            ("Cleartext-Password", ":=", "nas-pw"),
            ("NAS-IP-Address", "==", "10.9.9.9"),
        ],
    );
    insert(
        pg,
        "radcheck",
        "nas-ok-user",
        &[
            ("Cleartext-Password", ":=", "nas-pw"),
            ("NAS-IP-Address", "==", "127.0.0.1"),
        ],
    );
    insert(
        pg,
        "radcheck",
        "eq-user",
        &[("Cleartext-Password", "=", "eq-pw")],
    );
    // Groups by priority: gold falls through; silver's check fails (another NAS); bronze is
    // the last one processed (no Fall-Through); never is not reached.
    insert(
        pg,
        "radcheck",
        "grouped",
        &[("Cleartext-Password", ":=", "group-pw")],
    );
    insert(
        pg,
        "radreply",
        "grouped",
        &[("Class", "+=", "user"), ("Session-Timeout", ":=", "50")],
    );
    member(pg, "grouped", "bronze", 3);
    member(pg, "grouped", "gold", 1);
    member(pg, "grouped", "silver", 2);
    member(pg, "grouped", "never", 4);
    insert(
        pg,
        "radgroupreply",
        "gold",
        &[
            ("Reply-Message", ":=", "gold"),
            ("Class", "+=", "gold"),
            ("Fall-Through", "=", "Yes"),
        ],
    );
    insert(
        pg,
        "radgroupcheck",
        "silver",
        &[("NAS-IP-Address", "==", "10.9.9.9")],
    );
    insert(
        pg,
        "radgroupreply",
        "silver",
        &[("Reply-Message", ":=", "silver")],
    );
    insert(
        pg,
        "radgroupreply",
        "bronze",
        &[
            ("Session-Timeout", ":=", "100"),
            ("Reply-Message", "=", "bronze"),
            ("Idle-Timeout", "=", "30"),
            ("Class", "+=", "bronze"),
        ],
    );
    insert(
        pg,
        "radgroupreply",
        "never",
        &[("Reply-Message", ":=", "never")],
    );
    // A user whose only password comes from a group, and whose own check fails.
    insert(
        pg,
        "radcheck",
        "group-pw-user",
        &[("NAS-IP-Address", "==", "10.9.9.9")],
    );
    member(pg, "group-pw-user", "pw-group", 1);
    insert(
        pg,
        "radgroupcheck",
        "pw-group",
        &[("Cleartext-Password", ":=", "from-group")],
    );
    insert(
        pg,
        "radgroupreply",
        "pw-group",
        &[("Reply-Message", ":=", "pw from group")],
    );
}

/// Each login and whether it must be accepted.
fn logins() -> Vec<(&'static str, String, bool)> {
    let pap = |u: &str, p: &str| format!("User-Name = \"{u}\"\nUser-Password = \"{p}\"");
    let chap = |u: &str, p: &str| format!("User-Name = \"{u}\"\nCHAP-Password = \"{p}\"");
    let mschap = |u: &str, p: &str| format!("User-Name = \"{u}\"\nMS-CHAP-Password = \"{p}\"");
    vec![
        ("PAP cleartext", pap("pap-user", "pap-pw"), true),
        ("PAP wrong password", pap("pap-user", "nope"), false),
        ("CHAP cleartext", chap("pap-user", "pap-pw"), true),
        ("CHAP wrong", chap("pap-user", "nope"), false),
        ("MS-CHAP cleartext", mschap("pap-user", "pap-pw"), true),
        ("MS-CHAP NT-Password", mschap("nt-user", "nt-pw"), true),
        (
            "MS-CHAP NT-Password wrong",
            mschap("nt-user", "nope"),
            false,
        ),
        ("PAP NT-Password", pap("nt-user", "nt-pw"), true),
        (
            "CHAP NT-Password (no cleartext)",
            chap("nt-user", "nt-pw"),
            false,
        ),
        ("PAP SHA-512-crypt", pap("crypt6-user", "crypt-pw"), true),
        (
            "PAP SHA-512-crypt wrong",
            pap("crypt6-user", "crypt-px"),
            false,
        ),
        ("PAP MD5-crypt", pap("crypt1-user", "crypt-pw"), true),
        ("PAP MD5-Password (hex)", pap("md5-user", "md5-pw"), true),
        (
            "PAP SSHA-Password (base64)",
            pap("ssha-user", "ssha-pw"),
            true,
        ),
        (
            "PAP Password-With-Header",
            pap("header-user", "ssha-pw"),
            true,
        ),
        (
            "Auth-Type := Reject",
            pap("reject-user", "reject-pw"),
            false,
        ),
        ("Auth-Type := Accept", pap("accept-user", "anything"), true),
        ("Expired", pap("expired-user", "exp-pw"), false),
        ("Expires later", pap("future-user", "exp-pw"), true),
        (
            "NAS-IP-Address == mismatch",
            pap("nas-user", "nas-pw"),
            false,
        ),
        (
            "NAS-IP-Address == match",
            pap("nas-ok-user", "nas-pw"),
            true,
        ),
        ("= in radcheck compares", pap("eq-user", "eq-pw"), false),
        (
            "groups, priority, Fall-Through",
            pap("grouped", "group-pw"),
            true,
        ),
        (
            "password from a group",
            pap("group-pw-user", "from-group"),
            true,
        ),
        ("unknown user", pap("nobody", "x"), false),
        ("injection 1", pap("' OR 1=1 --", "x"), false),
        (
            "injection 2",
            pap("alice'; DROP TABLE radcheck; --", "x"),
            false,
        ),
        (
            "injection 3",
            pap("x' UNION SELECT 'Auth-Type',':=','Accept' --", "x"),
            false,
        ),
    ]
}

fn radshard_body(pg_port: u16, extra: &str) -> String {
    format!(
        "[[clients]]\nname = \"localhost\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n\n\
         [[users]]\nname = \"local-user\"\npassword = \"local-pw\"\n\n\
         [backend]\ndeadline = \"3s\"\non_unavailable = \"reject\"\n\n\
         [sessions]\nenabled = false\n\n\
         [sql]\nserver = \"127.0.0.1\"\nport = {pg_port}\ndatabase = \"radius\"\nlogin = \"radius\"\n\
         password = \"radpass\"\ncache_ttl = \"0s\"\n{extra}\n"
    )
}

#[test]
fn same_answers_as_freeradius_with_rlm_sql() {
    let pg = Postgres::start();
    load_users(&pg);
    let fr = FreeRadiusSql::start(pg.port);
    let rs = TestServer::start(2, &radshard_body(pg.port, ""));
    let mut failures = Vec::new();
    for (what, request, accept) in logins() {
        let theirs = ask(fr.auth, &request);
        let ours = ask(rs.auth, &request);
        let want = if accept {
            "Access-Accept"
        } else {
            "Access-Reject"
        };
        if theirs.code != want {
            failures.push(format!(
                "{what}: FreeRADIUS answered {theirs:?}, the case expects {want}"
            ));
        }
        if comparable(&theirs) != comparable(&ours) {
            failures.push(format!(
                "{what}:\n  FreeRADIUS {theirs:?}\n  radshard   {ours:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n--- FreeRADIUS log ---\n{}",
        failures.join("\n"),
        fr.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Nothing was dropped or changed by the hostile names.
    assert_eq!(
        pg.sql("SELECT count(*) FROM radcheck WHERE username = 'pap-user'"),
        "1"
    );
    let reply = ask(
        rs.auth,
        "User-Name = \"grouped\"\nUser-Password = \"group-pw\"",
    );
    assert!(
        reply
            .attrs
            .contains(&("Reply-Message".into(), "gold".into()))
            && reply
                .attrs
                .contains(&("Class".into(), "0x62726f6e7a65".into())),
        "{reply:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// radshard alone: deadlines, a broken connection, the nas table, Simultaneous-Use
// ---------------------------------------------------------------------------------------------

/// A TCP proxy in front of PostgreSQL that can be made to stall: bytes stop flowing both
/// ways (connections stay open), as a database that hangs.
struct StallProxy {
    port: u16,
    stalled: Arc<AtomicBool>,
}

impl StallProxy {
    fn start(to: u16) -> StallProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let stalled = Arc::new(AtomicBool::new(false));
        let s = stalled.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                for (mut a, mut b) in [
                    (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    ),
                    (server, client),
                ] {
                    let s = s.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match a.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            while s.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            if b.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = b.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        StallProxy { port, stalled }
    }
}

fn pap(server: SocketAddr, user: &str, pw: &str) -> Answer {
    ask(
        server,
        &format!("User-Name = \"{user}\"\nUser-Password = \"{pw}\""),
    )
}

#[test]
fn a_stalled_database_answers_by_the_deadline_and_local_users_go_on() {
    let pg = Postgres::start();
    insert(
        &pg,
        "radcheck",
        "sql-user",
        &[("Cleartext-Password", ":=", "sql-pw")],
    );
    let proxy = StallProxy::start(pg.port);
    let rs = TestServer::start(2, &radshard_body(proxy.port, "deadline = \"1s\"\n"));
    assert_eq!(pap(rs.auth, "sql-user", "sql-pw").code, "Access-Accept");
    proxy.stalled.store(true, Ordering::Relaxed);
    let t = Instant::now();
    let stalled = pap(rs.auth, "sql-user", "sql-pw");
    let took = t.elapsed();
    assert_eq!(stalled.code, "Access-Reject", "on_unavailable = reject");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The shards are not waiting: a local user is answered at once meanwhile.
    let t = Instant::now();
    assert_eq!(pap(rs.auth, "local-user", "local-pw").code, "Access-Accept");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    proxy.stalled.store(false, Ordering::Relaxed);
    assert!(
        wait_until(Duration::from_secs(10), || pap(
            rs.auth, "sql-user", "sql-pw"
        )
        .code
            == "Access-Accept"),
        "the database answers again"
    );
}

#[test]
fn a_killed_connection_is_remade() {
    let pg = Postgres::start();
    insert(
        &pg,
        "radcheck",
        "sql-user",
        &[("Cleartext-Password", ":=", "sql-pw")],
    );
    let rs = TestServer::start(1, &radshard_body(pg.port, "pool = 1\n"));
    assert_eq!(pap(rs.auth, "sql-user", "sql-pw").code, "Access-Accept");
    let killed = pg.sql_super(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'radshard'",
    );
    assert_eq!(killed, "1", "radshard's one connection");
    // The next lookup finds the connection gone, makes a new one and answers.
    assert_eq!(pap(rs.auth, "sql-user", "sql-pw").code, "Access-Accept");
    assert_eq!(pap(rs.auth, "sql-user", "wrong").code, "Access-Reject");
}

#[test]
fn the_nas_table_adds_clients() {
    let pg = Postgres::start();
    insert(
        &pg,
        "radcheck",
        "sql-user",
        &[("Cleartext-Password", ":=", "sql-pw")],
    );
    pg.sql("INSERT INTO nas (nasname, shortname, secret) VALUES ('127.0.0.2', 'ap-2', 'nas-table-secret')");
    pg.sql(
        "INSERT INTO nas (nasname, shortname, secret) VALUES ('nas.example.com', 'by-name', 'x')",
    );
    let rs = TestServer::start(1, &radshard_body(pg.port, "clients = true\n"));
    let c = RadClient::bind("127.0.0.2:0");
    let sec = secret("nas-table-secret");
    let req = access_request(&sec, 7, &random_authenticator(), "sql-user", "sql-pw", true);
    let reply = c
        .exchange(&req, rs.auth)
        .expect("an answer to the nas table's client");
    assert_eq!(
        check_reply(&reply, &req, &sec),
        radshard::proto::Code::AccessAccept
    );
}

#[test]
fn simultaneous_use_from_radcheck_caps_sessions() {
    let pg = Postgres::start();
    insert(
        &pg,
        "radcheck",
        "once",
        &[
            ("Cleartext-Password", ":=", "once-pw"),
            ("Simultaneous-Use", ":=", "1"),
        ],
    );
    let body = radshard_body(pg.port, "").replace("[sessions]\nenabled = false\n", "");
    let rs = TestServer::start(1, &body);
    let c = RadClient::new();
    let sec = secret("testing123");
    let req = access_request(&sec, 1, &random_authenticator(), "once", "once-pw", true);
    let reply = c.exchange(&req, rs.auth).expect("answer");
    assert_eq!(
        check_reply(&reply, &req, &sec),
        radshard::proto::Code::AccessAccept
    );
    let class = reply_attr(&reply, radshard::proto::CLASS).expect("our Class");
    let start = accounting_request(
        &sec,
        2,
        &[
            (radshard::proto::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (radshard::proto::USER_NAME, b"once"),
            (radshard::proto::ACCT_SESSION_ID, b"s1"),
            (radshard::proto::NAS_IP_ADDRESS, &[127, 0, 0, 1]),
            (radshard::proto::CLASS, &class),
        ],
    );
    c.exchange(&start, rs.acct).expect("Accounting-Response");
    let req = access_request(&sec, 3, &random_authenticator(), "once", "once-pw", true);
    let reply = c.exchange(&req, rs.auth).expect("answer");
    assert_eq!(
        check_reply(&reply, &req, &sec),
        radshard::proto::Code::AccessReject,
        "a second session is over the radcheck Simultaneous-Use"
    );
}

#[test]
fn cached_rows_are_decided_at_once_until_their_ttl() {
    let pg = Postgres::start();
    insert(
        &pg,
        "radcheck",
        "cached-user",
        &[("Cleartext-Password", ":=", "first-pw")],
    );
    let body = radshard_body(pg.port, "").replace("cache_ttl = \"0s\"", "cache_ttl = \"2s\"");
    let rs = TestServer::start(1, &body);
    let read_at = Instant::now();
    assert_eq!(
        pap(rs.auth, "cached-user", "first-pw").code,
        "Access-Accept"
    );
    pg.sql("UPDATE radcheck SET value = 'second-pw' WHERE username = 'cached-user'");
    // Within the TTL the shard decides on the rows it read: the old password still opens,
    // the new one does not yet, a wrong one never does.
    assert_eq!(
        pap(rs.auth, "cached-user", "first-pw").code,
        "Access-Accept"
    );
    assert_eq!(
        pap(rs.auth, "cached-user", "second-pw").code,
        "Access-Reject"
    );
    assert_eq!(pap(rs.auth, "cached-user", "wrong").code, "Access-Reject");
    assert!(
        read_at.elapsed() < Duration::from_secs(2),
        "the cached part ran past the TTL; the test proves nothing on a machine this slow"
    );
    std::thread::sleep(
        Duration::from_secs(2).saturating_sub(read_at.elapsed()) + Duration::from_millis(300),
    );
    assert_eq!(
        pap(rs.auth, "cached-user", "first-pw").code,
        "Access-Reject"
    );
    assert_eq!(
        pap(rs.auth, "cached-user", "second-pw").code,
        "Access-Accept"
    );
}
