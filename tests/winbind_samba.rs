//! MS-CHAP v1 and v2 through a real Samba AD DC's winbindd, in process via libwbclient
//! (radshard::backend::winbind): accepts with the right NT key, the NT_STATUS of each account
//! state mapped to its reject reason, outages answered `Unavailable` within the timeout, and
//! many threads at once.
//!
//! One test: the DC binds fixed ports and winbindd's fixed socket. Skipped (with a message)
//! when Samba is not installed or when not run as root (winbind's privileged pipe).

mod samba_common;

use std::time::{Duration, Instant};

use radshard::backend::winbind::{
    MsChapCheck, NtStatus, Outage, Winbind, WinbindAnswer, WinbindConfig, WinbindError,
};
use radshard::proto::crypto::mschap;
use radshard::vocab::RejectReason;
use rand::RngCore;
use samba_common::{descendants_named, Samba, DOMAIN};

/// A fresh MS-CHAPv2 exchange for `user_name` (maybe `DOMAIN\user`) and `password`, as a NAS
/// would hand it over, turned into a check the way the pipeline will: the domain prefix split
/// off, the ChallengeHash computed over the bare account name.
fn v2(user_name: &str, password: &str) -> (String, String, [u8; 8], [u8; 24]) {
    let mut auth = [0u8; 16];
    let mut peer = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut auth);
    rand::thread_rng().fill_bytes(&mut peer);
    let account = std::str::from_utf8(mschap::strip_domain(user_name.as_bytes()))
        .expect("utf-8")
        .to_string();
    let domain = match user_name.split_once('\\') {
        Some((d, _)) => d.to_string(),
        None => DOMAIN.to_string(),
    };
    let hash = mschap::nt_password_hash(password.as_bytes()).expect("password");
    let challenge = mschap::challenge_hash(&peer, &auth, account.as_bytes());
    let response = mschap::generate_nt_response(&auth, &peer, account.as_bytes(), &hash);
    (account, domain, challenge, response)
}

fn check_v2(w: &Winbind, user_name: &str, password: &str) -> WinbindAnswer {
    let (account, domain, challenge, nt_response) = v2(user_name, password);
    w.check(&MsChapCheck {
        account: &account,
        domain: &domain,
        challenge,
        nt_response,
        v2: true,
    })
}

fn check_v1(w: &Winbind, account: &str, password: &str) -> WinbindAnswer {
    let mut challenge = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut challenge);
    let hash = mschap::nt_password_hash(password.as_bytes()).expect("password");
    w.check(&MsChapCheck {
        account,
        domain: DOMAIN,
        challenge,
        nt_response: mschap::nt_challenge_response_v1(&challenge, &hash),
        v2: false,
    })
}

fn nt_key_of(password: &str) -> [u8; 16] {
    mschap::nt_password_hash_hash(&mschap::nt_password_hash(password.as_bytes()).expect("pw"))
}

fn assert_accepted(a: &WinbindAnswer, password: &str, what: &str) {
    match a {
        WinbindAnswer::Accepted { nt_key } => {
            assert!(nt_key.0 == nt_key_of(password), "{what}: wrong NT key")
        }
        other => panic!("{what}: {other:?}"),
    }
}

fn assert_rejected(a: &WinbindAnswer, reason: RejectReason, status: u32, what: &str) {
    assert_eq!(
        a,
        &WinbindAnswer::Rejected {
            reason,
            status: NtStatus(status)
        },
        "{what}"
    );
}

#[test]
fn winbind_mschap_against_samba_ad() {
    if !samba_common::installed() {
        eprintln!("SKIPPED: samba is not installed (apt-get install samba samba-ad-dc samba-ad-provision winbind ldap-utils)");
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: winbind's privileged pipe needs root");
        return;
    }
    let mut samba = Samba::start();
    samba.tool(&[
        "domain",
        "passwordsettings",
        "set",
        "--account-lockout-threshold=3",
        "--account-lockout-duration=30",
        "--reset-account-lockout-after=30",
    ]);
    for u in [
        "alice", "bob", "carol", "dave", "erin", "gina", "hank", "ivan",
    ] {
        let extra: &[&str] = if u == "dave" {
            &["--must-change-at-next-login"]
        } else {
            &[]
        };
        samba.create_user(u, &format!("{u}-Pw1"), extra);
    }
    samba.tool(&["user", "disable", "carol"]);
    samba.tool(&["user", "setexpiry", "erin", "--days=0"]);
    // hank may log on only from another workstation; ivan at no hour of the week (21 zero
    // octets of logonHours).
    samba.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: userWorkstations\nuserWorkstations: ELSEWHERE\n\n\
         dn: {}\nchangetype: modify\nreplace: logonHours\nlogonHours:: {}\n",
        Samba::user_dn("hank"),
        Samba::user_dn("ivan"),
        "A".repeat(28)
    ));
    let waited = samba.wait_mschapv2("alice", "alice-Pw1");
    eprintln!("MS-CHAPv2 through winbind ready after {waited:?}");

    // The DC's smb.conf names no socket directory: the default, which libwbclient uses.
    let mut config = WinbindConfig::from_smb_conf(&samba.conf()).expect("smb.conf");
    assert_eq!(config.domain, DOMAIN, "domain from the workgroup");
    config.threads = 4;
    config.timeout = Duration::from_secs(3);
    let w = Winbind::open(config.clone()).expect("open");
    w.ping().expect("ping");
    assert_eq!(w.served_domain().expect("details"), DOMAIN);

    // v2 accepts, with the NT key a NAS needs for MS-CHAP2-Success and MPPE.
    assert_accepted(&check_v2(&w, "alice", "alice-Pw1"), "alice-Pw1", "alice v2");
    assert_accepted(
        &check_v2(&w, "EXAMPLE\\bob", "bob-Pw1"),
        "bob-Pw1",
        "EXAMPLE\\bob",
    );
    assert_accepted(
        &check_v2(&w, "example\\bob", "bob-Pw1"),
        "bob-Pw1",
        "lower-case domain",
    );

    // Rejects, each with the DC's status.
    let bad = check_v2(&w, "alice", "wrong");
    assert_rejected(
        &bad,
        RejectReason::BadPassword,
        0xC000_006A,
        "wrong password",
    );
    assert!(format!("{bad:?}").contains("0xc000006a"), "{bad:?}");
    // Unknown users look like bad passwords (the DC says NO_SUCH_USER or LOGON_FAILURE).
    match check_v2(&w, "nobody", "x") {
        WinbindAnswer::Rejected {
            reason: RejectReason::BadPassword,
            ..
        } => {}
        other => panic!("unknown user: {other:?}"),
    }
    assert_rejected(
        &check_v2(&w, "carol", "carol-Pw1"),
        RejectReason::AccountDisabled,
        0xC000_0072,
        "disabled",
    );
    assert_rejected(
        &check_v2(&w, "dave", "dave-Pw1"),
        RejectReason::PasswordMustChange,
        0xC000_0224,
        "must change",
    );
    assert_rejected(
        &check_v2(&w, "erin", "erin-Pw1"),
        RejectReason::AccountExpired,
        0xC000_0193,
        "account expired",
    );
    assert_rejected(
        &check_v2(&w, "hank", "hank-Pw1"),
        RejectReason::LogonRestricted,
        0xC000_0070,
        "workstation restriction",
    );
    assert_rejected(
        &check_v2(&w, "ivan", "ivan-Pw1"),
        RejectReason::LogonRestricted,
        0xC000_006F,
        "logon hours",
    );
    // Lockout threshold 3: three bad responses, then even the right one is refused.
    for _ in 0..3 {
        assert_rejected(
            &check_v2(&w, "gina", "nope"),
            RejectReason::BadPassword,
            0xC000_006A,
            "gina bad",
        );
    }
    assert_rejected(
        &check_v2(&w, "gina", "gina-Pw1"),
        RejectReason::AccountLocked,
        0xC000_0234,
        "locked out",
    );

    // v1 is plain NTLMv1 to the DC: refused under `mschapv2-and-ntlmv2-only` (this is what
    // the ALLOW_MSVCHAPV2 bit makes the difference for), whatever status it says.
    match check_v1(&w, "alice", "alice-Pw1") {
        WinbindAnswer::Rejected { status, .. } => {
            eprintln!("v1 under mschapv2-and-ntlmv2-only: {status}")
        }
        other => panic!("v1 under mschapv2-and-ntlmv2-only: {other:?}"),
    }

    // Many threads at once: every answer right, keys per user.
    std::thread::scope(|s| {
        for t in 0..8 {
            let w = &w;
            s.spawn(move || {
                for i in 0..20 {
                    match (t + i) % 3 {
                        0 => assert_accepted(&check_v2(w, "alice", "alice-Pw1"), "alice-Pw1", "mt"),
                        1 => assert_accepted(&check_v2(w, "bob", "bob-Pw1"), "bob-Pw1", "mt"),
                        _ => assert_rejected(
                            &check_v2(w, "carol", "carol-Pw1"),
                            RejectReason::AccountDisabled,
                            0xC000_0072,
                            "mt",
                        ),
                    }
                }
            });
        }
    });

    // A winbindd that accepts but never answers (stopped): Unavailable at the timeout, not a
    // hang (libwbclient itself would wait up to 300 s).
    let master = samba.pid().expect("samba runs");
    let winbindd = descendants_named(master, "winbindd");
    assert!(!winbindd.is_empty(), "no winbindd under samba {master}");
    for &p in &winbindd {
        // SAFETY: kill(2) on a process of the DC this test started.
        unsafe { libc::kill(p as libc::pid_t, libc::SIGSTOP) };
    }
    let start = Instant::now();
    let a = check_v2(&w, "alice", "alice-Pw1");
    let took = start.elapsed();
    for &p in &winbindd {
        // SAFETY: as above.
        unsafe { libc::kill(p as libc::pid_t, libc::SIGCONT) };
    }
    assert_eq!(
        a,
        WinbindAnswer::Unavailable {
            status: None,
            cause: Outage::Timeout
        }
    );
    assert!(
        took >= config.timeout && took < config.timeout + Duration::from_secs(1),
        "{took:?}"
    );
    assert!(
        matches!(w.ping(), Ok(())),
        "winbindd answers again after SIGCONT"
    );

    // winbindd gone: Unavailable at once.
    samba.stop();
    let start = Instant::now();
    let a = check_v2(&w, "alice", "alice-Pw1");
    assert!(
        matches!(
            a,
            WinbindAnswer::Unavailable {
                cause: Outage::Wbc(_),
                ..
            }
        ),
        "{a:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(w.ping().is_err());

    // A socket directory libwbclient cannot be pointed at is refused when opening.
    let mut elsewhere = config.clone();
    elsewhere.socket_dir = samba.dir().join("winbindd");
    assert!(matches!(
        Winbind::open(elsewhere),
        Err(WinbindError::SocketDir { .. })
    ));

    // v1 accepted once the DC allows NTLMv1; the same Winbind reconnects by itself.
    samba.set_ntlm_auth("yes");
    samba.restart();
    samba.wait_mschapv2("alice", "alice-Pw1");
    assert_accepted(&check_v1(&w, "alice", "alice-Pw1"), "alice-Pw1", "alice v1");
    assert_rejected(
        &check_v1(&w, "bob", "wrong"),
        RejectReason::BadPassword,
        0xC000_006A,
        "v1 wrong password",
    );
    assert_accepted(
        &check_v2(&w, "alice", "alice-Pw1"),
        "alice-Pw1",
        "v2 after restart",
    );
}
