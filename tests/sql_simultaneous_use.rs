//! `[sql] sessions = true`: Simultaneous-Use counts the user's open sessions in `radacct`
//! (FreeRADIUS's `simul_count_query`), so a cap of 1 holds across two radshard nodes on one
//! PostgreSQL 15 (started by the test with FreeRADIUS 3.2's schema.sql).

mod common;

use common::postgres::Postgres;
use common::*;
use radshard::proto::Code;

fn node_body(pg_port: u16) -> String {
    format!(
        r#"
[[clients]]
name = "localhost"
addresses = ["127.0.0.1"]
secret = "testing123"
require_message_authenticator = true

[[users]]
name = "bob"
password = "bob-pw"
simultaneous_use = 1

[[users]]
name = "carol"
password = "carol-pw"

[backend]
deadline = "3s"

[sql]
server = "127.0.0.1"
port = {pg_port}
database = "radius"
login = "radius"
password = "radpass"
users = false
sessions = true
"#
    )
}

fn login(node: &TestServer, user: &str, password: &str) -> Code {
    let c = RadClient::new();
    let s = secret(SECRET);
    let req = access_request(&s, 5, &random_authenticator(), user, password, true);
    let reply = c.exchange(&req, node.auth).expect("an answer");
    check_reply(&reply, &req, &s)
}

#[test]
fn simultaneous_use_one_across_nodes() {
    let pg = Postgres::start();
    let a = TestServer::start(1, &node_body(pg.port));
    let b = TestServer::start(1, &node_body(pg.port));
    // No open session anywhere: both nodes admit bob.
    assert_eq!(login(&a, "bob", "bob-pw"), Code::AccessAccept);
    assert_eq!(login(&b, "bob", "bob-pw"), Code::AccessAccept);
    // An open session in radacct (written by any node or FreeRADIUS): both refuse.
    pg.sql(
        "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, acctstarttime) \
         VALUES ('s-1', 'u-1', 'bob', '192.0.2.1', now())",
    );
    assert_eq!(login(&a, "bob", "bob-pw"), Code::AccessReject);
    assert_eq!(login(&b, "bob", "bob-pw"), Code::AccessReject);
    // A user without a cap is not counted.
    pg.sql(
        "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, acctstarttime) \
         VALUES ('s-2', 'u-2', 'carol', '192.0.2.1', now())",
    );
    assert_eq!(login(&a, "carol", "carol-pw"), Code::AccessAccept);
    // The session stopped: admitted again.
    pg.sql("UPDATE radacct SET acctstoptime = now() WHERE acctuniqueid = 'u-1'");
    assert_eq!(login(&b, "bob", "bob-pw"), Code::AccessAccept);
    // Database gone: [backend] on_unavailable (drop by default) → no answer, never an Accept.
    drop(pg);
    let c = RadClient::new();
    let s = secret(SECRET);
    let req = access_request(&s, 6, &random_authenticator(), "bob", "bob-pw", true);
    c.send(&req, a.auth);
    assert!(c.recv_timeout(std::time::Duration::from_secs(5)).is_none());
}
