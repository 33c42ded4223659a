//! FreeRADIUS's radclient/radtest (3.2) as real clients against an in-process server.
//!
//! radtest always adds a Message-Authenticator; radclient sends one only when the attribute list
//! names `Message-Authenticator = 0x00`.

mod common;

use std::time::Duration;

use common::*;
use radshard::metrics::DropReason;
use radshard::proto::Code;

fn radtest(args: &[&str]) -> String {
    let o = run_tool("radtest", args, "", Duration::from_secs(20));
    stdout_of(&o)
}

fn assert_received(out: &str, code: &str) {
    assert!(
        out.contains(&format!("Received {code} Id")),
        "expected {code}, radclient said:\n{out}"
    );
}

fn assert_no_reply(out: &str) {
    assert!(
        out.contains("No reply from server") && !out.contains("Received "),
        "expected no reply, radclient said:\n{out}"
    );
}

#[test]
fn radtest_pap_accept_carries_reply_attributes() {
    let s = TestServer::start(2, STANDARD_BODY);
    let out = radtest(&["alice", "alice-pw", &s.auth.to_string(), "0", SECRET]);
    assert_received(&out, "Access-Accept");
    assert!(out.contains("Reply-Message = \"Welcome, alice\""), "{out}");
    assert!(out.contains("Session-Timeout = 3600"), "{out}");
    // radclient checked the Response Authenticator and Message-Authenticator; so do the counters.
    assert_eq!(s.replies(Code::AccessAccept), 1);
    assert_eq!(s.total_drops(), 0, "{:?}", s.drop_breakdown());
}

#[test]
fn radtest_pap_wrong_password_is_rejected() {
    let s = TestServer::start(2, STANDARD_BODY);
    let out = radtest(&["alice", "not-alice-pw", &s.auth.to_string(), "0", SECRET]);
    assert_received(&out, "Access-Reject");
    assert!(
        !out.contains("Welcome"),
        "a reject carries no user reply items:\n{out}"
    );
    assert_eq!(s.replies(Code::AccessReject), 1);
    assert_eq!(s.replies(Code::AccessAccept), 0);
}

#[test]
fn radtest_chap_accept_and_wrong_chap_reject() {
    let s = TestServer::start(2, STANDARD_BODY);
    let out = radtest(&[
        "-t",
        "chap",
        "alice",
        "alice-pw",
        &s.auth.to_string(),
        "0",
        SECRET,
    ]);
    assert!(out.contains("CHAP-Password"), "radtest sent CHAP:\n{out}");
    assert_received(&out, "Access-Accept");
    assert!(out.contains("Reply-Message = \"Welcome, alice\""), "{out}");
    let out = radtest(&[
        "-t",
        "chap",
        "alice",
        "wrong",
        &s.auth.to_string(),
        "0",
        SECRET,
    ]);
    assert_received(&out, "Access-Reject");
}

#[test]
fn radtest_unknown_user_is_rejected() {
    let s = TestServer::start(2, STANDARD_BODY);
    let out = radtest(&["mallory", "alice-pw", &s.auth.to_string(), "0", SECRET]);
    assert_received(&out, "Access-Reject");
    assert_eq!(s.replies(Code::AccessReject), 1);
}

#[test]
fn radclient_wrong_secret_gets_no_reply_and_is_counted() {
    let s = TestServer::start(2, STANDARD_BODY);
    let o = radclient(
        s.auth,
        "auth",
        "not-the-secret",
        "User-Name = alice\nUser-Password = alice-pw\nMessage-Authenticator = 0x00\n",
    );
    let out = stdout_of(&o);
    assert_no_reply(&out);
    assert!(!o.status.success(), "radclient reports the missing reply");
    assert!(
        wait_until(Duration::from_secs(2), || s
            .dropped(DropReason::BadMessageAuthenticator)
            >= 1),
        "{:?}",
        s.drop_breakdown()
    );
    assert_eq!(
        s.total_drops(),
        s.dropped(DropReason::BadMessageAuthenticator),
        "{:?}",
        s.drop_breakdown()
    );
    assert_eq!(s.sum(|m| m.replies.iter().map(|c| c.get()).sum()), 0);
}

#[test]
fn radclient_without_message_authenticator_is_dropped_and_counted() {
    let s = TestServer::start(2, STANDARD_BODY);
    let o = radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = alice\nUser-Password = alice-pw\n",
    );
    assert_no_reply(&stdout_of(&o));
    assert!(
        wait_until(Duration::from_secs(2), || s
            .dropped(DropReason::MissingMessageAuthenticator)
            >= 1),
        "{:?}",
        s.drop_breakdown()
    );
    assert_eq!(
        s.total_drops(),
        s.dropped(DropReason::MissingMessageAuthenticator)
    );
    assert_eq!(s.replies(Code::AccessAccept), 0);
}

#[test]
fn radclient_without_message_authenticator_is_accepted_when_not_required() {
    let body = STANDARD_BODY.replace(
        "require_message_authenticator = true",
        "require_message_authenticator = false",
    );
    assert_ne!(body, STANDARD_BODY);
    let s = TestServer::start(2, &body);
    let o = radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = alice\nUser-Password = alice-pw\n",
    );
    let out = stdout_of(&o);
    // radclient sent none (the request part of its output: the reply carries ours, whose value
    // may well start with 00).
    let sent = out.split("Received").next().unwrap_or_default();
    assert!(!sent.contains("Message-Authenticator"), "{out}");
    assert_received(&out, "Access-Accept");
    assert!(out.contains("Reply-Message = \"Welcome, alice\""), "{out}");
    assert_eq!(s.total_drops(), 0, "{:?}", s.drop_breakdown());
}

#[test]
fn radclient_status_server_on_both_ports() {
    let s = TestServer::start(2, STANDARD_BODY);
    let o = radclient(s.auth, "status", SECRET, "Message-Authenticator = 0x00\n");
    let out = stdout_of(&o);
    assert_received(&out, "Access-Accept");
    assert!(o.status.success(), "{out}");
    let o = radclient(s.acct, "status", SECRET, "Message-Authenticator = 0x00\n");
    let out = stdout_of(&o);
    assert_received(&out, "Accounting-Response");
    assert!(o.status.success(), "{out}");
    assert_eq!(s.requests(Code::StatusServer), 2);
    assert_eq!(s.replies(Code::AccessAccept), 1);
    assert_eq!(s.replies(Code::AccountingResponse), 1);
    // Status-Server is never answered from the reply cache (RFC 5997 §3).
    assert_eq!(s.sum(|m| m.reply_cache_entries.get()), 0);
}
