//! Accounting round trips against an in-process server: the Accounting-Response comes back only
//! after the record is in `<dir>/accounting-YYYY-MM-DD.jsonl`, retransmissions are written once,
//! and forged requests are neither answered nor written.

mod common;

use std::time::Duration;

use common::*;
use radshard::metrics::{DropReason, DuplicateKind};
use radshard::proto::{attr, Code};

fn records_for<'a>(all: &'a [serde_json::Value], session: &str) -> Vec<&'a serde_json::Value> {
    all.iter()
        .filter(|r| rec_attr(r, "Acct-Session-Id") == Some(session))
        .collect()
}

#[test]
fn radclient_start_interim_stop_are_logged() {
    let s = TestServer::start(2, STANDARD_BODY);
    for (status, extra) in [
        ("Start", ""),
        ("Interim-Update", "Acct-Session-Time = 60\n"),
        (
            "Stop",
            "Acct-Session-Time = 120\nAcct-Terminate-Cause = User-Request\n",
        ),
    ] {
        let attrs = format!(
            "Acct-Status-Type = {status}\nUser-Name = alice\nAcct-Session-Id = \"rc-session-1\"\n\
             Framed-IP-Address = 10.1.2.3\nNAS-Identifier = radclient-nas\n{extra}"
        );
        let o = radclient(s.acct, "acct", SECRET, &attrs);
        let out = stdout_of(&o);
        assert!(
            out.contains("Received Accounting-Response Id"),
            "{status}: radclient said:\n{out}"
        );
        // Acknowledged means durable: the record is already in the file.
        let all = s.accounting_records();
        let mine = records_for(&all, "rc-session-1");
        let last = mine.last().unwrap_or_else(|| panic!("{status} not logged"));
        assert_eq!(rec_attr(last, "Acct-Status-Type"), Some(status));
    }
    let log = read_accounting(s.dir.path());
    assert_eq!(log.files.len(), 1, "one daily file: {:?}", log.files);
    let name = log.files[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        name.len() == "accounting-YYYY-MM-DD.jsonl".len() && name.starts_with("accounting-20"),
        "{name}"
    );
    assert!(log.bad_lines.is_empty() && log.torn_tail.is_none());
    let mine = records_for(&log.records, "rc-session-1");
    let statuses: Vec<_> = mine
        .iter()
        .map(|r| rec_attr(r, "Acct-Status-Type").unwrap())
        .collect();
    assert_eq!(statuses, ["Start", "Interim-Update", "Stop"]);
    for r in &mine {
        assert_eq!(rec_attr(r, "User-Name"), Some("alice"));
        assert_eq!(rec_attr(r, "Framed-IP-Address"), Some("10.1.2.3"));
        assert_eq!(rec_attr(r, "NAS-Identifier"), Some("radclient-nas"));
        assert_eq!(r["client"], "localhost");
        assert!(r["nas"].as_str().unwrap().starts_with("127.0.0.1:"), "{r}");
        assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
    }
    assert_eq!(rec_attr(mine[1], "Acct-Session-Time"), Some("60"));
    assert_eq!(
        rec_attr(mine[2], "Acct-Terminate-Cause"),
        Some("User-Request")
    );
    assert_eq!(s.sum(|m| m.accounting_records.get()), 3);
    assert_eq!(s.replies(Code::AccountingResponse), 3);
}

#[test]
fn own_client_round_trip_with_repeated_attribute() {
    let s = TestServer::start(2, STANDARD_BODY);
    let c = RadClient::new();
    let sec = secret(SECRET);
    for (id, status) in [(1u8, 1u32), (2, 3), (3, 2)] {
        let req = accounting_request(
            &sec,
            id,
            &[
                (attr::ACCT_STATUS_TYPE, &status.to_be_bytes()),
                (attr::USER_NAME, b"bob"),
                (attr::ACCT_SESSION_ID, b"own-1"),
                (attr::CLASS, b"a"),
                (attr::CLASS, b"b"),
            ],
        );
        let reply = c.exchange(&req, s.acct).expect("Accounting-Response");
        assert_eq!(check_reply(&reply, &req, &sec), Code::AccountingResponse);
    }
    let all = s.accounting_records();
    let mine = records_for(&all, "own-1");
    let statuses: Vec<_> = mine
        .iter()
        .map(|r| rec_attr(r, "Acct-Status-Type").unwrap())
        .collect();
    assert_eq!(statuses, ["Start", "Interim-Update", "Stop"]);
    for r in mine {
        assert_eq!(rec_attr(r, "User-Name"), Some("bob"));
        assert_eq!(
            r["attributes"]["Class"],
            serde_json::json!(["0x61", "0x62"]),
            "a repeated attribute is an array in packet order: {r}"
        );
    }
}

#[test]
fn retransmitted_accounting_request_is_written_once() {
    let s = TestServer::start(2, STANDARD_BODY);
    let c = RadClient::new();
    let sec = secret(SECRET);

    // A retransmission after the answer: replayed from the cache.
    let req = accounting_for(&sec, 5, 1, "alice", "dup-after");
    let first = c.exchange(&req, s.acct).expect("response");
    assert_eq!(check_reply(&first, &req, &sec), Code::AccountingResponse);
    let second = c.exchange(&req, s.acct).expect("replayed response");
    assert_eq!(first, second, "identical response");
    assert_eq!(s.duplicates(DuplicateKind::Replayed), 1);

    // Copies sent back to back, before the fsync: absorbed or replayed, never written twice.
    let req2 = accounting_for(&sec, 6, 1, "alice", "dup-burst");
    for _ in 0..4 {
        c.send(&req2, s.acct);
    }
    let replies = c.drain(SILENCE, Duration::from_secs(5));
    assert!(!replies.is_empty(), "answered");
    assert_eq!(
        check_reply(&replies[0], &req2, &sec),
        Code::AccountingResponse
    );
    for r in &replies {
        assert_eq!(r, &replies[0], "every response is identical");
    }
    let absorbed = s.duplicates(DuplicateKind::InProgress);
    let replayed = s.duplicates(DuplicateKind::Replayed) - 1;
    assert_eq!(absorbed + replayed, 3, "three copies were duplicates");
    assert_eq!(replies.len() as u64, 1 + replayed);

    let all = s.accounting_records();
    assert_eq!(records_for(&all, "dup-after").len(), 1, "written once");
    assert_eq!(records_for(&all, "dup-burst").len(), 1, "written once");
    assert_eq!(s.sum(|m| m.accounting_records.get()), 2);
}

#[test]
fn wrong_secret_accounting_is_neither_answered_nor_written() {
    let s = TestServer::start(2, STANDARD_BODY);
    let c = RadClient::new();
    let bad = accounting_for(&secret("not-testing123"), 1, 1, "alice", "forged-1");
    c.send(&bad, s.acct);
    // And a good request with one attribute byte changed after signing.
    let mut tampered = accounting_for(&secret(SECRET), 2, 1, "alice", "forged-2");
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    c.send(&tampered, s.acct);
    assert_eq!(c.recv_timeout(SILENCE), None, "no response");
    assert!(s.wait_received(2, Duration::from_secs(2)));
    assert_eq!(s.dropped(DropReason::BadRequestAuthenticator), 2);
    assert_eq!(s.total_drops(), 2, "{:?}", s.drop_breakdown());
    assert_eq!(s.sum(|m| m.accounting_records.get()), 0);
    let log = read_accounting(s.dir.path());
    assert!(log.records.is_empty(), "nothing written: {:?}", log.records);

    // radclient with the wrong secret: the same.
    let o = radclient(
        s.acct,
        "acct",
        "wrong-secret",
        "Acct-Status-Type = Start\nUser-Name = alice\nAcct-Session-Id = forged-3\n",
    );
    assert!(
        stdout_of(&o).contains("No reply from server"),
        "{}",
        stdout_of(&o)
    );
    assert!(s.accounting_records().is_empty());
    assert!(s.dropped(DropReason::BadRequestAuthenticator) >= 3);
}

#[test]
fn accounting_request_on_the_auth_port_is_dropped() {
    let s = TestServer::start(2, STANDARD_BODY);
    let c = RadClient::new();
    let req = accounting_for(&secret(SECRET), 1, 1, "alice", "wrong-port");
    c.send(&req, s.auth);
    assert_eq!(c.recv_timeout(SILENCE), None);
    assert_eq!(s.dropped(DropReason::WrongPort), 1);
    assert!(s.accounting_records().is_empty());
}

/// Once the responses are out, nothing is in progress any more and the cache holds them.
#[test]
fn gauges_settle_after_accounting() {
    let s = TestServer::start(1, STANDARD_BODY);
    let c = RadClient::new();
    let sec = secret(SECRET);
    for i in 0..5u8 {
        let req = accounting_for(&sec, i, 1, "alice", &format!("g-{i}"));
        let r = c.exchange(&req, s.acct).expect("response");
        assert_eq!(check_reply(&r, &req, &sec), Code::AccountingResponse);
    }
    let settled = wait_until(Duration::from_secs(2), || {
        s.sum(|m| m.in_progress.get()) == 0 && s.sum(|m| m.reply_cache_entries.get()) == 5
    });
    assert!(
        settled,
        "gauges when idle: in_progress={} reply_cache_entries={} (expected 0 and 5)",
        s.sum(|m| m.in_progress.get()),
        s.sum(|m| m.reply_cache_entries.get())
    );
}
