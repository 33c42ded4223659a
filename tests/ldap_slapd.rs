//! PAP through LDAP against a real OpenLDAP slapd (started per test on a free port), end to
//! end with radclient against radshard in-process: accept, reject reasons, filter injection,
//! network policies, failover, deadlines, single-flight, the negative cache and load shedding.

mod common;
mod ldap_common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use ldap_common::*;
use radshard::metrics::DropReason;

const POLICIES: &str = r#"
[[users]]
name = "local-admin"
password = "admin-pw"
groups = ["admins"]

[[policies]]
name = "radius-users-vlan"
groups = ["radius-users"]
auth_sources = ["ldap"]
reply = { Class = "radius-users", Tunnel-Type = "VLAN", Tunnel-Medium-Type = "IEEE-802", Tunnel-Private-Group-Id = "42" }

[[policies]]
name = "local-admins"
auth_sources = ["local"]
groups = ["admins"]
client_groups = ["lab"]
mfa = true
reply = { Filter-Id = "admin" }
"#;

#[test]
fn pap_through_slapd_with_policies() {
    let slapd = Slapd::start();
    let rs = Radshard::start(&format!(
        "{}{POLICIES}",
        ldap_section(&[slapd.url()], "realm = \"strip\"")
    ));
    let binds = || rs.backend().ldap_user_binds.load(Relaxed);

    let (code, text) = pap(rs.port, "alice", "alicepw");
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{text}");
    assert!(
        text.contains("Tunnel-Private-Group-Id:0 = \"42\""),
        "VLAN from the policy: {text}"
    );
    assert!(text.contains("Tunnel-Type:0 = VLAN"), "{text}");
    assert_eq!(binds(), 1);

    // Realm forms are stripped to the uid.
    for name in ["alice@example.org", "EXAMPLE\\alice"] {
        assert_eq!(
            pap(rs.port, name, "alicepw").0.as_deref(),
            Some("Access-Accept"),
            "{name}"
        );
    }
    assert_eq!(binds(), 3);

    assert_eq!(
        pap(rs.port, "alice", "wrong").0.as_deref(),
        Some("Access-Reject")
    );
    assert_eq!(binds(), 4, "a bad password is one bind");
    assert_eq!(rs.backend().outcome_count("bad_password"), 1);

    // Unknown users and injection attempts never reach a bind.
    for name in ["nobody", "alice)(uid=*", "*", "alice)(|(uid=*", "al*"] {
        assert_eq!(
            pap(rs.port, name, "alicepw").0.as_deref(),
            Some("Access-Reject"),
            "{name}"
        );
    }
    assert_eq!(binds(), 4, "no bind for unknown or injected names");
    assert_eq!(rs.backend().outcome_count("unknown_user"), 5);

    // An empty password never binds (radclient omits an empty User-Password; the directory
    // path's own guard is unit-tested in backend::ldap::pool).
    assert_eq!(
        pap(rs.port, "alice", "").0.as_deref(),
        Some("Access-Reject")
    );
    assert_eq!(binds(), 4);

    // carol authenticates but no policy matches her: rejected.
    assert_eq!(
        pap(rs.port, "carol", "carolpw").0.as_deref(),
        Some("Access-Reject")
    );
    assert_eq!(
        rs.backend().outcome_count("accept"),
        4,
        "carol's bind succeeded"
    );

    // Local users go through policies too, with their configured groups.
    let (code, text) = pap(rs.port, "local-admin", "admin-pw");
    assert_eq!(code.as_deref(), Some("Access-Accept"));
    assert!(text.contains("Filter-Id = \"admin\""), "{text}");
}

#[test]
fn directory_down_is_answered_within_the_deadline_by_policy() {
    // A port with nothing listening: connection refused at once.
    let dead = format!("ldap://127.0.0.1:{}", free_tcp_port());
    let rs = Radshard::start(&format!(
        "[backend]\ndeadline = \"1s\"\non_unavailable = \"reject\"\n{}",
        ldap_section(std::slice::from_ref(&dead), "")
    ));
    let t = Instant::now();
    assert_eq!(
        pap(rs.port, "alice", "alicepw").0.as_deref(),
        Some("Access-Reject")
    );
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    drop(rs);

    // A frozen server (accepts TCP, never answers): the deadline decides.
    let slapd = Slapd::start();
    slapd.pause();
    let rs = Radshard::start(&format!(
        "[backend]\ndeadline = \"800ms\"\non_unavailable = \"reject\"\n{}",
        ldap_section(&[slapd.url()], "timeout = \"10s\"")
    ));
    let t = Instant::now();
    assert_eq!(
        pap(rs.port, "alice", "alicepw").0.as_deref(),
        Some("Access-Reject")
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1600),
        "{took:?}"
    );
    // The shard's and the pool's deadline timers race; the pool counts its own a moment later.
    let until = Instant::now() + Duration::from_secs(2);
    while rs.backend().deadline_exceeded.load(Relaxed) == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(rs.backend().deadline_exceeded.load(Relaxed) >= 1);
    drop(rs);

    // With on_unavailable = "drop" there is no reply, and the drop is counted.
    let rs = Radshard::start(&format!(
        "[backend]\ndeadline = \"500ms\"\non_unavailable = \"drop\"\n{}",
        ldap_section(&[dead], "")
    ));
    let got = radclient(
        rs.port,
        &["User-Name = alice\nUser-Password = alicepw".into()],
        1,
        1,
        1,
    );
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(rs.drops(DropReason::BackendUnavailable), 1);
    slapd.resume();
}

#[test]
fn fails_over_to_the_second_server() {
    let mut a = Slapd::start();
    let b = Slapd::start();
    let dead = format!("ldap://127.0.0.1:{}", free_tcp_port());
    let rs = Radshard::start(&format!(
        "{POLICIES}{}",
        ldap_section(&[dead, a.url(), b.url()], "reconnect_backoff = \"5s\"")
    ));
    assert_eq!(
        pap(rs.port, "alice", "alicepw").0.as_deref(),
        Some("Access-Accept")
    );
    let failures = rs.backend().ldap_server_failures.load(Relaxed);
    assert!(failures >= 1, "the dead first server was skipped");
    // Stop the server that answered: the next request fails over to b.
    a.stop();
    assert_eq!(
        pap(rs.port, "bob", "bobpw").0.as_deref(),
        Some("Access-Accept")
    );
    assert_eq!(
        pap(rs.port, "bob", "wrong").0.as_deref(),
        Some("Access-Reject")
    );
    assert!(rs.backend().ldap_server_failures.load(Relaxed) > failures);
}

#[test]
fn copies_join_one_bind_and_bad_passwords_are_cached() {
    let slapd = std::sync::Arc::new(Slapd::start());
    let rs = Radshard::start(&format!(
        "[backend]\ndeadline = \"5s\"\nnegative_cache_ttl = \"30s\"\n{}{POLICIES}",
        ldap_section(&[slapd.url()], "")
    ));
    // Warm the connections so only user binds are counted below.
    assert_eq!(
        pap(rs.port, "bob", "bobpw").0.as_deref(),
        Some("Access-Accept")
    );
    let binds0 = rs.backend().ldap_user_binds.load(Relaxed);

    // Freeze slapd so the first copy is still in flight when the others arrive; each copy has
    // its own Identifier and authenticator (radclient), so the shards' reply caches do not
    // absorb them: the pool's single-flight must.
    slapd.pause();
    let reqs: Vec<String> = (0..8)
        .map(|_| "User-Name = alice\nUser-Password = alicepw".to_string())
        .collect();
    let resume = std::thread::spawn({
        let slapd = slapd.clone();
        move || {
            std::thread::sleep(Duration::from_millis(400));
            slapd.resume();
        }
    });
    let got = radclient(rs.port, &reqs, 8, 5, 1);
    resume.join().unwrap();
    assert_eq!(got.len(), 8, "{got:?}");
    assert!(got.iter().all(|c| c == "Access-Accept"), "{got:?}");
    assert_eq!(
        rs.backend().ldap_user_binds.load(Relaxed) - binds0,
        1,
        "one bind for 8 copies"
    );
    assert_eq!(rs.backend().joined.load(Relaxed), 7);

    // A device repeating a bad password: one bind, then the negative cache answers.
    let binds1 = rs.backend().ldap_user_binds.load(Relaxed);
    let bad: Vec<String> = (0..5)
        .map(|_| "User-Name = bob\nUser-Password = wrong".to_string())
        .collect();
    let got = radclient(rs.port, &bad, 1, 5, 1);
    assert_eq!(got, vec!["Access-Reject"; 5]);
    assert_eq!(rs.backend().ldap_user_binds.load(Relaxed) - binds1, 1);
    assert_eq!(rs.backend().cache_hits_negative.load(Relaxed), 4);
    // The right password is a different attempt: not blocked by the cache.
    assert_eq!(
        pap(rs.port, "bob", "bobpw").0.as_deref(),
        Some("Access-Accept")
    );
}

#[test]
fn full_queue_sheds_while_local_users_are_served() {
    let slapd = Slapd::start();
    let rs = Radshard::start(&format!(
        "[backend]\nqueue = 1\nmax_in_flight = 1\ndeadline = \"5s\"\non_overload = \"reject\"\n{}{POLICIES}",
        ldap_section(&[slapd.url()], "")
    ));
    assert_eq!(
        pap(rs.port, "bob", "bobpw").0.as_deref(),
        Some("Access-Accept")
    );
    slapd.pause();
    // Ten different users: one runs, one waits, the rest are shed (rejected at once).
    let reqs: Vec<String> = (0..10)
        .map(|i| format!("User-Name = user{i}\nUser-Password = pw{i}"))
        .collect();
    let t = Instant::now();
    let shedder = std::thread::spawn({
        let port = rs.port;
        move || radclient(port, &reqs, 10, 8, 1)
    });
    std::thread::sleep(Duration::from_millis(300));
    // While the directory is frozen and the queue full, local users answer at once.
    let t_local = Instant::now();
    assert_eq!(
        pap(rs.port, "local-admin", "admin-pw").0.as_deref(),
        Some("Access-Accept")
    );
    assert!(t_local.elapsed() < Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(300));
    slapd.resume();
    let got = shedder.join().unwrap();
    assert_eq!(got.len(), 10, "{got:?}");
    let shed = rs.backend().shed.load(Relaxed);
    assert!(shed >= 7, "shed {shed}");
    assert_eq!(
        got.iter().filter(|c| *c == "Access-Reject").count() as u64,
        shed
    );
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn ldaps_and_starttls_with_a_ca_file() {
    let slapd = Slapd::start_tls();
    let ca = slapd.ca_file().display().to_string();
    let ldaps = format!("ldaps://127.0.0.1:{}", slapd.tls_port.unwrap());
    for (url, starttls) in [(ldaps.clone(), false), (slapd.url(), true)] {
        let rs = Radshard::start(&format!(
            "{POLICIES}{}",
            ldap_section(
                std::slice::from_ref(&url),
                &format!("ca_file = {ca:?}\nstarttls = {starttls}")
            )
        ));
        assert_eq!(
            pap(rs.port, "alice", "alicepw").0.as_deref(),
            Some("Access-Accept"),
            "{url}"
        );
        assert_eq!(
            pap(rs.port, "alice", "wrong").0.as_deref(),
            Some("Access-Reject"),
            "{url}"
        );
    }
    // Without our CA the certificate is not trusted: the directory is unavailable.
    let rs = Radshard::start(&format!(
        "[backend]\ndeadline = \"2s\"\non_unavailable = \"reject\"\n{}",
        ldap_section(&[ldaps], "")
    ));
    assert_eq!(
        pap(rs.port, "alice", "alicepw").0.as_deref(),
        Some("Access-Reject")
    );
    assert!(rs.backend().ldap_server_failures.load(Relaxed) >= 1);
    assert_eq!(rs.backend().ldap_user_binds.load(Relaxed), 0);
}

/// The pool's API directly, from several threads (as several shards would call it).
#[test]
fn pool_api_identity_single_flight_across_threads_and_positive_cache() {
    use radshard::backend::{AuthRequest, BackendPool, Outcome, Proof, Submitted};
    let slapd = std::sync::Arc::new(Slapd::start());
    let text = format!(
        "[backend]\npositive_cache_ttl = \"30s\"\ndeadline = \"5s\"\n{}",
        ldap_section(&[slapd.url()], "")
    );
    let config =
        radshard::config::Config::from_str(&text, std::path::Path::new("t.toml"), None).unwrap();
    let pool = BackendPool::start(&config.backend, config.ldap.as_ref(), None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ask = |pool: &BackendPool, user: &str, pw: &str| match pool.submit(AuthRequest {
        client: "nas1",
        user,
        proof: Proof::Password(pw.as_bytes()),
        deadline: Instant::now() + Duration::from_secs(5),
    }) {
        Submitted::Pending(rx) => rx,
        Submitted::Shed => panic!("shed"),
    };

    // Identity: the alternate login ID (mail) is presented; groups come from memberOf.
    let first = rt.block_on(ask(&pool, "alice", "alicepw")).unwrap();
    let Outcome::Accept(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(id.presented, "alice@example.org");
    assert_eq!(id.dn, "uid=alice,ou=people,dc=example,dc=org");
    assert_eq!(id.groups, ["cn=radius-users,ou=groups,dc=example,dc=org"]);
    let binds = pool.metrics().ldap_user_binds.load(Relaxed);

    // The positive cache answers the same attempt without a bind.
    assert!(matches!(
        rt.block_on(ask(&pool, "alice", "alicepw")).unwrap(),
        Outcome::Accept(_)
    ));
    assert_eq!(pool.metrics().cache_hits_positive.load(Relaxed), 1);
    assert_eq!(pool.metrics().ldap_user_binds.load(Relaxed), binds);

    // Four threads submit the same new attempt while slapd is frozen: one bind.
    slapd.pause();
    let pool = std::sync::Arc::new(pool);
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || ask(&pool, "bob", "bobpw"))
        })
        .map(|t| t.join().unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    slapd.resume();
    for rx in receivers {
        assert!(matches!(rt.block_on(rx).unwrap(), Outcome::Accept(_)));
    }
    let m = pool.metrics();
    let diag = format!(
        "binds {} (before {binds}), joined {}, submitted {}, failures {}, outcomes {:?}",
        m.ldap_user_binds.load(Relaxed),
        m.joined.load(Relaxed),
        m.submitted.load(Relaxed),
        m.ldap_server_failures.load(Relaxed),
        m.outcomes.lock().unwrap()
    );
    assert_eq!(m.ldap_user_binds.load(Relaxed), binds + 1, "{diag}");
    assert_eq!(m.joined.load(Relaxed), 3, "{diag}");
}

#[test]
fn reload_swaps_policies_and_keeps_the_directory_pool() {
    let slapd = Slapd::start();
    let ldap = ldap_section(&[slapd.url()], "");
    let vlan = |n: u32| {
        format!(
            "{ldap}[[policies]]\nname = \"v\"\ngroups = [\"radius-users\"]\n\
             reply = {{ Tunnel-Type = \"VLAN\", Tunnel-Medium-Type = \"IEEE-802\", Tunnel-Private-Group-Id = \"{n}\" }}\n"
        )
    };
    let rs = Radshard::start(&vlan(42));
    let (code, text) = pap(rs.port, "alice", "alicepw");
    assert_eq!(code.as_deref(), Some("Access-Accept"));
    assert!(
        text.contains("Tunnel-Private-Group-Id:0 = \"42\""),
        "{text}"
    );
    let connects = rs.backend().ldap_connects.load(Relaxed);

    assert!(
        rs.reload(&vlan(43)).is_empty(),
        "policies reload without a restart"
    );
    let (code, text) = pap(rs.port, "bob", "bobpw");
    assert_eq!(code.as_deref(), Some("Access-Accept"));
    assert!(
        text.contains("Tunnel-Private-Group-Id:0 = \"43\""),
        "{text}"
    );
    assert_eq!(
        rs.backend().ldap_connects.load(Relaxed),
        connects,
        "the pool and its connections survive the reload"
    );

    // Directory settings need a restart, and the reload says so.
    let changed = ldap.replace(
        "alternate_login_attribute = \"mail\"",
        "alternate_login_attribute = \"cn\"",
    );
    assert_eq!(rs.reload(&changed), ["backend/ldap/sql"]);
}

/// MS-CHAP against the directory's NT hash (`sambaNTPassword`, readable only by the service
/// account): v2 accepted with the policy's attributes and the right `S=`, v1 too; a bad
/// response repeated by a device is checked once (the negative cache), and a user without an
/// NT hash is refused as such.
#[test]
fn mschap_against_the_directory_nt_hash() {
    use radshard::proto::crypto::mschap::{
        authenticator_response, generate_nt_response, nt_password_hash, nt_password_hash_hash,
    };
    let slapd = Slapd::start();
    let hash = nt_password_hash(b"alicepw").unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    slapd.ldapadd(&format!(
        "dn: uid=alice,ou=people,{SUFFIX}\nchangetype: modify\nadd: objectClass\nobjectClass: sambaSamAccount\n-\n\
         add: sambaSID\nsambaSID: S-1-5-21-1-2-3-1001\n-\nadd: sambaNTPassword\nsambaNTPassword: {}\n",
        hex(&hash)
    ));
    // Anonymous readers do not see it.
    let anon = std::process::Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &slapd.url(),
            "-b",
            SUFFIX,
            "(uid=alice)",
            "sambaNTPassword",
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&anon.stdout).contains("sambaNTPassword"));

    let rs = Radshard::start(&format!(
        "[backend]\nnegative_cache_ttl = \"30s\"\n{}{POLICIES}",
        ldap_section(
            &[slapd.url()],
            "nt_password_attribute = \"sambaNTPassword\""
        )
    ));
    let v2 = |user: &str, password: &str| {
        let (ac, pc): ([u8; 16], [u8; 16]) = (rand::random(), rand::random());
        let h = nt_password_hash(password.as_bytes()).unwrap();
        let nt = generate_nt_response(&ac, &pc, user.as_bytes(), &h);
        let mut response = vec![5u8, 0];
        response.extend_from_slice(&pc);
        response.extend_from_slice(&[0; 8]);
        response.extend_from_slice(&nt);
        let attrs = format!(
            "User-Name = \"{user}\"\nMS-CHAP-Challenge = 0x{}\nMS-CHAP2-Response = 0x{}\n",
            hex(&ac),
            hex(&response)
        );
        let s = authenticator_response(&nt_password_hash_hash(&h), &nt, &pc, &ac, user.as_bytes());
        let success = format!("05{}", hex(format!("S={}", hex(&s)).as_bytes())).to_lowercase();
        (attrs, success)
    };
    let (attrs, success) = v2("alice", "alicepw");
    let (code, text) = ask(rs.port, &attrs);
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{text}");
    assert!(text.contains(&success), "S= in {text}");
    assert!(
        text.contains("Tunnel-Private-Group-Id:0 = \"42\""),
        "groups from LDAP: {text}"
    );
    assert!(text.contains("MS-MPPE-Recv-Key"), "{text}");
    assert_eq!(
        rs.backend().ldap_user_binds.load(Relaxed),
        0,
        "no bind for MS-CHAP"
    );

    // MS-CHAPv1 (radclient computes the response from MS-CHAP-Password).
    let (code, text) = ask(
        rs.port,
        "User-Name = \"alice\"\nMS-CHAP-Password = \"alicepw\"\n",
    );
    assert_eq!(code.as_deref(), Some("Access-Accept"), "{text}");
    assert!(text.contains("MS-CHAP-MPPE-Keys"), "{text}");

    // One bad response, sent five times by a device: checked once, 691 each time.
    let (bad, _) = v2("alice", "wrong");
    let got = radclient(rs.port, &vec![bad.trim_end().to_string(); 5], 1, 5, 1);
    assert_eq!(got, vec!["Access-Reject"; 5]);
    assert_eq!(rs.backend().outcome_count("bad_password"), 1);
    assert_eq!(rs.backend().cache_hits_negative.load(Relaxed), 4);
    let (_, text) = ask(rs.port, &bad);
    assert!(text.contains("E=691"), "{text}");

    // bob has no NT hash in the directory.
    let (code, _) = ask(rs.port, &v2("bob", "bobpw").0);
    assert_eq!(code.as_deref(), Some("Access-Reject"));
    assert_eq!(rs.backend().outcome_count("mschap_needs_nt_hash"), 1);
}
