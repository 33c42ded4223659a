//! Generic REST push: the Access-Request is held while the push is pending; retransmissions
//! and copies of the attempt are absorbed — exactly one push reaches the provider and every
//! retransmission gets the same reply bytes. Approve → Accept (with the policy's attributes),
//! deny → Reject, no answer within `wait` → Reject. CHAP works with push.
//!
//! The provider is a local HTTP test double of the generic protocol: `POST /push` with
//! `{"user": …, "client": …}` answered `{"id": …}`, then `GET /push/{id}` polled until it
//! answers `{"status": "approved"}` or `"denied"`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mfa::*;
use common::*;
use radshard::metrics::DuplicateKind;
use radshard::proto::{attr, Code};

type Pushes = Arc<Mutex<HashMap<String, usize>>>;

/// The push service: `POST /push` → `{"id"}` at once; `GET /push/<id>` → pending until the
/// "user" decides: alice and dave approve after 500 ms, bob denies after 200 ms, carol never
/// answers, erin approves after 10 s. Counts the pushes (POSTs) per user.
fn push_double() -> (String, Pushes) {
    let pushes: Pushes = Arc::new(Mutex::new(HashMap::new()));
    let log = pushes.clone();
    let started: Arc<Mutex<HashMap<String, (String, Instant)>>> = Arc::default();
    let base = http_double(move |req| {
        let answer = if req.method == "POST" && req.target == "/push" {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let user = v["user"].as_str().unwrap_or("").to_string();
            assert_eq!(v["client"].as_str(), Some("localhost"));
            let mut log = log.lock().expect("lock");
            let n = log.entry(user.clone()).or_insert(0);
            *n += 1;
            let id = format!("{user}-{n}");
            started
                .lock()
                .expect("lock")
                .insert(id.clone(), (user, Instant::now()));
            format!("{{\"id\":\"{id}\"}}")
        } else {
            assert_eq!(req.method, "GET");
            let id = req.target.strip_prefix("/push/").unwrap_or("");
            let (user, at) = started
                .lock()
                .expect("lock")
                .get(id)
                .cloned()
                .expect("a known push id");
            let age = at.elapsed();
            let status = match user.as_str() {
                "alice" | "dave" if age >= Duration::from_millis(500) => "approved",
                "bob" if age >= Duration::from_millis(200) => "denied",
                "erin" if age >= Duration::from_secs(10) => "approved",
                _ => "pending",
            };
            format!("{{\"status\":\"{status}\"}}")
        };
        (200, answer)
    });
    (format!("{base}/push"), pushes)
}

/// Users alice, bob, carol, dave and erin in `staff`, whose policy needs a push; `wait` is how
/// long a push may stay unanswered.
fn body(url: &str, wait: &str) -> String {
    let users = staff_users(&["alice", "bob", "carol", "dave", "erin"]);
    let policy = staff_mfa_policy("staff-push", "");
    let mfa = mfa_section(
        "rest_push",
        "",
        &format!("url = \"{url}\"\nwait = \"{wait}\"\npoll_interval = \"100ms\""),
    );
    format!("{MFA_CLIENT}{users}{policy}{mfa}")
}

#[test]
fn push_holds_the_request_and_sends_once() {
    let (url, pushes) = push_double();
    let (s, m) = start_mfa_server(2, &body(&url, "1s"));
    let c = RadClient::new();
    let sec = secret(SECRET);

    // One request, five retransmissions while the push is pending, and a copy with a new
    // Identifier (as a NAS that gave up on the first id): one push, one reply per packet.
    approved_push_with_copies(&s, "alice");
    assert_eq!(
        pushes.lock().expect("lock").get("alice"),
        Some(&1),
        "exactly one push"
    );

    // Two devices (Calling-Station-Id) logging in as alice at once: one push each.
    let station = |id: u8, mac: &[u8]| {
        access_request_with(
            &sec,
            id,
            &random_authenticator(),
            "alice",
            "alice-pw",
            false,
            &[(attr::CALLING_STATION_ID, mac)],
        )
    };
    c.send(&station(6, b"aa-aa"), s.auth);
    c.send(&station(7, b"bb-bb"), s.auth);
    assert!(c.recv_timeout(REPLY_WAIT).is_some());
    assert!(c.recv_timeout(REPLY_WAIT).is_some());
    assert_eq!(
        pushes.lock().expect("lock").get("alice"),
        Some(&3),
        "one push per device"
    );

    // Denied → Reject.
    let req = access_request(&sec, 3, &random_authenticator(), "bob", "bob-pw", false);
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);

    // Not answered within wait (1 s) → Reject, after about the wait.
    let started = Instant::now();
    let req = access_request(&sec, 4, &random_authenticator(), "carol", "carol-pw", false);
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );

    // Wrong primary password: no push at all.
    let req = access_request(&sec, 5, &random_authenticator(), "dave", "wrong", false);
    let reply = c.exchange(&req, s.auth).expect("a reply");
    assert_eq!(check_reply(&reply, &req, &sec), Code::AccessReject);
    assert_eq!(pushes.lock().expect("lock").get("dave"), None);

    // CHAP works with push (radclient computes CHAP-Password from the cleartext).
    let out = stdout_of(&radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = dave\nCHAP-Password = dave-pw\n",
    ));
    assert!(
        out.contains("Received Access-Accept"),
        "radclient said:\n{out}"
    );

    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(
        m.pushes_sent.load(Relaxed),
        6,
        "alice (3 devices), bob, carol, dave"
    );
    assert!(m.push_joined.load(Relaxed) >= 1, "the copy joined");
    assert_eq!(
        m.outcome_count("accept"),
        5,
        "alice: request, copy, 2 devices; dave"
    );
    assert_eq!(m.outcome_count("mfa_push_denied"), 2, "bob, carol");
    assert_eq!(m.pushes_pending.load(Relaxed), 0);
}

/// Five retransmissions during a push that takes 10 s: the Access-Request, then the very same
/// datagram (same Identifier and authenticator) five more times 1.5 s apart while the push is
/// pending. Exactly one push reaches the provider, every reply is the same bytes (one reply for
/// the six copies: those absorbed while pending get none), an Access-Accept, and a
/// retransmission after the answer gets those bytes again.
#[test]
fn five_retransmissions_during_a_ten_second_push() {
    let (url, pushes) = push_double();
    let (s, m) = start_mfa_server(2, &body(&url, "20s"));
    let c = RadClient::new();
    let sec = secret(SECRET);
    let req = access_request(&sec, 42, &random_authenticator(), "erin", "erin-pw", false);

    let started = Instant::now();
    let mut replies = send_with_retransmissions(&c, s.auth, &req, 5, Duration::from_millis(1500));
    assert!(
        replies.is_empty(),
        "no reply while the push is pending: {replies:?}"
    );
    replies.extend(c.recv_timeout(Duration::from_secs(10)));
    let answered = started.elapsed();
    replies.extend(c.drain(Duration::from_millis(500), Duration::from_secs(2)));
    assert!(
        answered >= Duration::from_secs(10),
        "held until the approval, answered after {answered:?}"
    );
    assert_eq!(
        replies.len(),
        1,
        "one reply for the request and its five retransmissions: {replies:?}"
    );
    let first = replies[0].clone();
    assert!(replies.iter().all(|r| r == &first), "identical replies");
    assert_eq!(check_reply(&first, &req, &sec), Code::AccessAccept);
    assert_eq!(
        reply_attr(&first, attr::SESSION_TIMEOUT),
        session_timeout_3600()
    );

    assert_eq!(
        s.duplicates(DuplicateKind::InProgress),
        5,
        "the five retransmissions were absorbed as in progress"
    );

    // A retransmission after the answer: the very same bytes, from the reply cache.
    c.send(&req, s.auth);
    assert_eq!(c.recv_timeout(REPLY_WAIT).as_deref(), Some(&first[..]));
    assert_eq!(
        s.duplicates(DuplicateKind::Replayed),
        1,
        "answered from the cache"
    );

    assert_eq!(
        pushes.lock().expect("lock").get("erin"),
        Some(&1),
        "exactly one push at the provider"
    );
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(m.pushes_sent.load(Relaxed), 1, "one push sent");
    assert_eq!(m.outcome_count("accept"), 1, "one decision");
    assert_eq!(m.pushes_pending.load(Relaxed), 0);
}

/// CHAP under a CHAP-only push policy: the push is sent, the user approves, and the policy that
/// asked for the push — matched again after the approval, with the method the user logged in by —
/// grants its attributes. (The policies used to be re-run as if the request were PAP, so the
/// approved user got Access-Reject `policy_reject`.)
#[test]
fn chap_push_under_a_chap_only_policy_is_accepted_with_its_attributes() {
    let (url, pushes) = push_double();
    let users = staff_users(&["dave"]);
    let policy = staff_mfa_policy("staff-chap-push", "auth_methods = [\"chap\"]\n");
    let mfa = mfa_section(
        "rest_push",
        "",
        &format!("url = \"{url}\"\nwait = \"5s\"\npoll_interval = \"100ms\""),
    );
    let (s, m) = start_mfa_server(1, &format!("{MFA_CLIENT}{users}{policy}{mfa}"));
    let out = stdout_of(&radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = dave\nCHAP-Password = dave-pw\n",
    ));
    assert!(
        out.contains("Received Access-Accept"),
        "radclient said:\n{out}"
    );
    assert!(out.contains("Session-Timeout = 3600"), "{out}");
    assert_eq!(pushes.lock().expect("lock").get("dave"), Some(&1));
    assert_eq!(m.outcome_count("accept"), 1);
    assert_eq!(m.outcome_count("policy_reject"), 0);

    // PAP does not match the CHAP-only policy: rejected before any push.
    let out = stdout_of(&radclient(
        s.auth,
        "auth",
        SECRET,
        "User-Name = dave\nUser-Password = dave-pw\n",
    ));
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert_eq!(pushes.lock().expect("lock").get("dave"), Some(&1));
}

/// MS-CHAPv2 with a push (what the NPS extension does for MS-CHAPv2: push, no code): the
/// request is held, and the accept after the approval still carries MS-CHAP2-Success and the
/// MPPE keys; a denied push is an Access-Reject with MS-CHAP-Error.
#[test]
fn mschapv2_push_holds_and_answers_with_s_and_keys() {
    use radshard::proto::crypto::mschap::{
        authenticator_response, generate_nt_response, nt_password_hash, nt_password_hash_hash,
    };
    let (url, pushes) = push_double();
    let users = staff_users(&["dave", "bob"]);
    let policy = staff_mfa_policy("staff-mschap-push", "auth_methods = [\"mschapv2\"]\n");
    let mfa = mfa_section(
        "rest_push",
        "",
        &format!("url = \"{url}\"\nwait = \"5s\"\npoll_interval = \"100ms\""),
    );
    let (s, m) = start_mfa_server(1, &format!("{MFA_CLIENT}{users}{policy}{mfa}"));
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let login = |user: &str| {
        let (ac, pc): ([u8; 16], [u8; 16]) = (rand::random(), rand::random());
        let hash = nt_password_hash(format!("{user}-pw").as_bytes()).unwrap();
        let nt = generate_nt_response(&ac, &pc, user.as_bytes(), &hash);
        let mut response = vec![9u8, 0];
        response.extend_from_slice(&pc);
        response.extend_from_slice(&[0; 8]);
        response.extend_from_slice(&nt);
        let attrs = format!(
            "User-Name = {user}\nMS-CHAP-Challenge = 0x{}\nMS-CHAP2-Response = 0x{}\nMessage-Authenticator = 0x00\n",
            hex(&ac),
            hex(&response)
        );
        let s = authenticator_response(
            &nt_password_hash_hash(&hash),
            &nt,
            &pc,
            &ac,
            user.as_bytes(),
        );
        let success = format!(
            "09{}",
            hex(format!("S={}", hex(&s).to_uppercase()).as_bytes())
        );
        (attrs, success)
    };
    let (attrs, success) = login("dave");
    let started = Instant::now();
    let out = stdout_of(&radclient(s.auth, "auth", SECRET, &attrs));
    assert!(
        out.contains("Received Access-Accept"),
        "radclient said:\n{out}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "held for the push"
    );
    assert!(out.contains(&success), "S= in\n{out}");
    assert!(out.contains("MS-MPPE-Send-Key"), "{out}");
    assert_eq!(pushes.lock().expect("lock").get("dave"), Some(&1));
    assert_eq!(m.outcome_count("accept"), 1);

    let (attrs, _) = login("bob");
    let out = stdout_of(&radclient(s.auth, "auth", SECRET, &attrs));
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert!(out.contains("E=691"), "{out}");
    assert_eq!(pushes.lock().expect("lock").get("bob"), Some(&1));
}
