use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(text, Path::new("test.toml"), None)
}

fn err(text: &str) -> String {
    parse(text)
        .expect_err("config should be refused")
        .to_string()
}

const CLIENT: &str =
    "[[clients]]\nname = \"lo\"\naddresses = [\"127.0.0.1\"]\nsecret = \"testing123\"\n";

#[test]
fn embedded_default_is_valid() {
    let c = Config::from_str(EMBEDDED_DEFAULT, Path::new("radshard.toml"), None)
        .expect("default config");
    assert_eq!(c.clients.len(), 1);
    assert_eq!(c.clients[0].secret.expose(), "testing123");
    assert_eq!(c.users[0].name, "alice");
    assert!(c
        .server
        .listen_auth
        .contains(&"127.0.0.1:1812".parse().unwrap()));
    assert!(c
        .server
        .listen_auth
        .contains(&"[::1]:1812".parse().unwrap()));
    assert!(c
        .server
        .listen_acct
        .contains(&"[::1]:1813".parse().unwrap()));
    assert_eq!(c.server.reply_cache_ttl, Duration::from_secs(30));
}

#[test]
fn unknown_key_names_its_line() {
    let e = err("[server]\nshards = 2\nlisten_auht = [\"127.0.0.1:1812\"]\n");
    assert!(e.starts_with("test.toml:3: "), "{e}");
    assert!(e.contains("listen_auht"), "{e}");
}

#[test]
fn wrong_type_names_its_line() {
    let e = err("[server]\n\nshards = \"two\"\n");
    assert!(e.starts_with("test.toml:3: "), "{e}");
}

#[test]
fn bad_address_names_its_line() {
    let e = err("[server]\nlisten_auth = [\"127.0.0.1:99999\"]\n");
    assert!(e.starts_with("test.toml:2: "), "{e}");
    let e = err("[[clients]]\nname = \"x\"\naddresses = [\"10.0.0.300\"]\nsecret = \"s\"\n");
    assert!(e.starts_with("test.toml:3: "), "{e}");
    assert!(e.contains("10.0.0.300"), "{e}");
}

#[test]
fn cidr_with_host_bits_is_refused() {
    let e = err("[[clients]]\nname = \"x\"\naddresses = [\"10.0.0.1/8\"]\nsecret = \"s\"\n");
    assert!(e.contains("did you mean 10.0.0.0/8"), "{e}");
}

#[test]
fn missing_or_empty_secret_is_refused() {
    let e = err("[[clients]]\nname = \"x\"\naddresses = [\"10.0.0.1\"]\n");
    assert!(e.starts_with("test.toml:1: "), "{e}");
    assert!(e.contains("secret"), "{e}");
    let e = err("[[clients]]\nname = \"x\"\naddresses = [\"10.0.0.1\"]\nsecret = \"\"\n");
    assert!(e.starts_with("test.toml:4: "), "{e}");
    assert!(e.contains("must not be empty"), "{e}");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let c = parse(CLIENT).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("testing123"), "{dbg}");
}

#[test]
fn overlapping_clients_are_refused() {
    let text = format!("{CLIENT}{}", CLIENT.replace("\"lo\"", "\"again\""));
    let e = err(&text);
    assert!(e.starts_with("test.toml:5: "), "{e}");
    assert!(e.contains("already used by client \"lo\""), "{e}");
}

#[test]
fn user_password_rules() {
    let e = err("[[users]]\nname = \"u\"\n");
    assert!(
        e.contains("needs password, password_hash or nt_hash"),
        "{e}"
    );
    let e = err("[[users]]\nname = \"u\"\npassword = \"a\"\npassword_hash = \"$6$x$y\"\n");
    assert!(e.contains("not both"), "{e}");
    let e = err("[[users]]\nname = \"u\"\npassword_hash = \"{SSHA}abc\"\n");
    assert!(e.starts_with("test.toml:3: "), "{e}");
    let e = err(
        "[[users]]\nname = \"u\"\npassword = \"a\"\n[[users]]\nname = \"u\"\npassword = \"b\"\n",
    );
    assert!(e.starts_with("test.toml:4: "), "{e}");
    assert!(e.contains("already defined at test.toml:1"), "{e}");
}

#[test]
fn hashed_password_warns_about_chap() {
    let c = parse("[[users]]\nname = \"u\"\npassword_hash = \"$6$salt$hash\"\n").unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].to_string().contains("CHAP"));
}

#[test]
fn reply_attributes_keep_values_and_lines() {
    let c = parse("[[users]]\nname = \"u\"\npassword = \"p\"\nreply = { Session-Timeout = 3600, Class = [\"a\", \"b\"] }\n").unwrap();
    let r: Vec<_> = c.users[0]
        .reply
        .iter()
        .map(|l| (l.value.0.as_str(), l.value.1.as_str(), l.line))
        .collect();
    assert_eq!(
        r,
        vec![
            ("Class", "a", 4),
            ("Class", "b", 4),
            ("Session-Timeout", "3600", 4)
        ]
    );
}

#[test]
fn durations_need_units() {
    let e = err("[server]\nreply_cache_ttl = 30\n");
    assert!(e.starts_with("test.toml:2: "), "{e}");
    assert!(e.contains("unit"), "{e}");
    let c = parse("[server]\nreply_cache_ttl = \"2m\"\n").unwrap();
    assert_eq!(c.server.reply_cache_ttl, Duration::from_secs(120));
}

#[test]
fn invalid_log_level_is_refused() {
    let e = err("[log]\nlevel = \"loud=[\"\n");
    assert!(e.starts_with("test.toml:2: "), "{e}");
}

#[test]
fn users_file_errors_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.toml"),
        "[[users]]\nname = \"x\"\npassword = \"p\"\nbogus = 1\n",
    )
    .unwrap();
    let main = dir.path().join("main.toml");
    std::fs::write(&main, "[local]\nusers_file = \"users.toml\"\n").unwrap();
    let e = Config::load_file(&main).unwrap_err();
    assert_eq!(e.file, dir.path().join("users.toml"));
    assert_eq!(e.line, 4);
    std::fs::write(
        dir.path().join("users.toml"),
        "[[users]]\nname = \"x\"\npassword = \"p\"\n",
    )
    .unwrap();
    let c = Config::load_file(&main).unwrap();
    assert_eq!(c.users[0].name, "x");
}

#[test]
fn unreadable_file_is_reported() {
    let e = Config::load_file(Path::new("/nonexistent/radshard.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/radshard.toml:0: cannot read config file"),
        "{e}"
    );
}

#[test]
fn overrides_win() {
    let mut c = parse(CLIENT).unwrap();
    c.apply(&Overrides {
        shards: Some(3),
        listen_auth: vec!["127.0.0.1:11812".parse().unwrap()],
        ..Overrides::default()
    });
    assert_eq!(c.server.shards, Some(3));
    assert_eq!(
        c.server.listen_auth,
        vec!["127.0.0.1:11812".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(c.server.listen_acct.len(), 2, "untouched values stay");
}

const LDAP: &str = "[ldap]\nservers = [\"ldap://127.0.0.1:3890\"]\nbind_dn = \"cn=admin\"\nbind_password = \"pw\"\nbase_dn = \"dc=x\"\nuser_filter = \"(uid={user})\"\n";

#[test]
fn example_directory_configs_are_valid() {
    for f in [
        "config/ldap-openldap.toml",
        "config/ldap-samba-ad.toml",
        "config/mfa-privacyidea.toml",
        "config/mfa-duo.toml",
        "config/mfa-rest-push.toml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
        let c = Config::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.ldap.is_some(), "{f}");
        assert!(!c.policies.is_empty(), "{f}");
        assert_eq!(c.clients[0].secret.expose(), "testing123");
        crate::dataplane::runtime::Runtime::build(&c).unwrap_or_else(|e| panic!("{e}"));
        // Push works with CHAP: the push examples have no CHAP warning.
        if f.contains("duo") || f.contains("rest-push") {
            assert!(c.warnings.is_empty(), "{f}: {:?}", c.warnings);
        }
    }
}

#[test]
fn ldap_and_backend_sections_are_checked_with_lines() {
    let ok = parse(&format!("{CLIENT}{LDAP}")).unwrap();
    let l = ok.ldap.unwrap();
    assert_eq!(l.group_attribute, "memberOf");
    assert_eq!(l.group_base_dn, "dc=x");
    assert!(
        !format!("{l:?}").contains("\"pw\""),
        "service password in Debug"
    );
    assert_eq!(ok.backend, BackendConfig::default());

    let cases = [
        (
            format!("{LDAP}bogus = 1\n"),
            "test.toml:7:",
            "unknown field",
        ),
        (
            LDAP.replace("(uid={user})", "(uid=alice)"),
            "test.toml:6:",
            "{user}",
        ),
        (
            LDAP.replace("(uid={user})", "uid={user}"),
            "test.toml:6:",
            "parenthesised",
        ),
        (
            LDAP.replace("ldap://127.0.0.1:3890", "http://x"),
            "test.toml:2:",
            "ldap://",
        ),
        (
            format!("{LDAP}pool_size = 0\n"),
            "test.toml:7:",
            "pool_size",
        ),
        (
            format!("{LDAP}reject_messages = {{ nope = \"x\" }}\n"),
            "test.toml:7:",
            "unknown reason",
        ),
        (
            format!("{LDAP}ca_file = \"/nonexistent/ca.pem\"\n"),
            "test.toml:7:",
            "ca_file",
        ),
        (
            "[backend]\nqueue = 0\n".to_string(),
            "test.toml:2:",
            "backend.queue",
        ),
        (
            "[backend]\non_overload = \"explode\"\n".to_string(),
            "test.toml:2:",
            "unknown variant",
        ),
        (
            "[backend]\ndeadline = 3\n".to_string(),
            "test.toml:2:",
            "unit",
        ),
    ];
    for (text, at, what) in cases {
        let e = err(&text);
        assert!(e.starts_with(at) && e.contains(what), "{text}\n→ {e}");
    }
}

#[test]
fn users_and_clients_carry_policy_groups() {
    let c = parse(&format!(
        "{CLIENT}group = \"wifi\"\n[[users]]\nname = \"a\"\npassword = \"b\"\ngroups = [\"admins\", \"vpn\"]\n"
    ))
    .unwrap();
    assert_eq!(c.clients[0].group.as_deref(), Some("wifi"));
    assert_eq!(c.users[0].groups, ["admins", "vpn"]);
}

#[test]
fn mfa_section_and_totp_secrets_are_checked_with_lines() {
    let user = "[[users]]\nname = \"alice\"\npassword = \"pw\"\n";
    // Valid, with defaults.
    let c = parse(&format!(
        "{CLIENT}{user}totp_secret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n[mfa]\nprovider = \"totp\"\n"
    ))
    .expect("valid");
    let m = c.mfa.expect("[mfa]");
    assert_eq!(m.challenge_ttl, Duration::from_secs(120));
    assert!(m.exempt_clients.is_empty() && m.exempt_groups.is_empty());
    let c = parse(&format!(
        "{CLIENT}[mfa]\nprovider = \"totp\"\nexempt_clients = [\"lo\"]\nexempt_groups = [\"g\"]\n"
    ))
    .expect("valid");
    let m = c.mfa.expect("[mfa]");
    assert_eq!(
        (m.exempt_clients, m.exempt_groups),
        (vec!["lo".to_string()], vec!["g".to_string()])
    );
    assert!(!m.accept_unenrolled);
    // The secret never shows in Debug output.
    let dbg = format!("{:?}", c.users);
    assert!(!dbg.contains("GEZDGNBV"), "{dbg}");
    // Bad secret: the user's line... the totp_secret line.
    let e = err(&format!(
        "{CLIENT}[mfa]\nprovider = \"totp\"\nexempt_clients = [\"typo\"]\n"
    ));
    assert!(e.starts_with("test.toml:5: ") && e.contains("typo"), "{e}");
    let e = err(&format!("{CLIENT}{user}totp_secret = \"not base32!\"\n"));
    assert!(e.starts_with("test.toml:8: "), "{e}");
    assert!(e.contains("alice") && e.contains("base32"), "{e}");
    assert!(!e.contains("not base32!"), "the secret is not echoed: {e}");
    // Unknown key, unknown provider, bad values.
    let e = err(&format!(
        "{CLIENT}[mfa]\nprovider = \"totp\"\nprompts = \"x\"\n"
    ));
    assert!(
        e.starts_with("test.toml:7: ") && e.contains("prompts"),
        "{e}"
    );
    let e = err(&format!("{CLIENT}[mfa]\nprovider = \"sms\"\n"));
    assert!(e.starts_with("test.toml:6: ") && e.contains("sms"), "{e}");
    let e = err(&format!(
        "{CLIENT}[mfa]\nprovider = \"totp\"\nchallenge_ttl = \"1h\"\n"
    ));
    assert!(e.starts_with("test.toml:7: "), "{e}");
    let e = err(&format!(
        "{CLIENT}[mfa]\nprovider = \"totp\"\nunenrolled = \"maybe\"\n"
    ));
    assert!(e.starts_with("test.toml:7: "), "{e}");
}

#[test]
fn privacyidea_service_account_and_push_keys() {
    use crate::backend::mfa::Provider;
    let pi =
        "[mfa]\nprovider = \"privacyidea\"\n[mfa.privacyidea]\nurl = \"http://127.0.0.1:5001\"\n";
    let c = parse(&format!(
        "{CLIENT}{pi}service_user = \"svc\"\nservice_password = \"s3cret-pw\"\npush_wait = \"20s\"\n"
    ))
    .expect("valid");
    let m = c.mfa.as_ref().expect("[mfa]");
    let Provider::PrivacyIdea(p) = &m.provider else {
        panic!("privacyidea expected: {m:?}");
    };
    assert_eq!(p.service.as_ref().map(|s| s.user.as_str()), Some("svc"));
    assert_eq!(p.push_wait, Duration::from_secs(20));
    assert_eq!(p.poll_interval, Duration::from_secs(1));
    assert!(p.prefer_push);
    // The service password never shows in Debug output.
    let dbg = format!("{:?}", c.mfa);
    assert!(!dbg.contains("s3cret-pw") && dbg.contains("svc"), "{dbg}");
    // Without the service account: radshard's own challenge, as before.
    let c = parse(&format!("{CLIENT}{pi}prefer_push = false\n")).expect("valid");
    let Some(Provider::PrivacyIdea(p)) = c.mfa.map(|m| m.provider) else {
        panic!("privacyidea expected");
    };
    assert!(p.service.is_none() && !p.prefer_push);
    for (extra, what) in [
        ("service_user = \"svc\"\n", "service_password"),
        ("service_password = \"pw\"\n", "service_user"),
        ("push_wait = \"1h\"\n", "push_wait"),
        ("poll_interval = \"10ms\"\n", "poll_interval"),
    ] {
        let e = err(&format!("{CLIENT}{pi}{extra}"));
        assert!(
            e.starts_with("test.toml:9: ") && e.contains(what),
            "{extra} → {e}"
        );
        assert!(!e.contains("\"pw\""), "{e}");
    }
}

#[test]
fn mfa_policies_warn_about_chap_and_a_missing_section() {
    let policy = "[[policies]]\nname = \"vpn\"\nmfa = true\n";
    let c = parse(&format!("{CLIENT}{policy}")).expect("valid");
    assert_eq!(c.warnings.len(), 1);
    let w = c.warnings[0].to_string();
    assert!(
        w.starts_with("test.toml:5: ") && w.contains("no [mfa] section"),
        "{w}"
    );

    let c = parse(&format!("{CLIENT}{policy}[mfa]\nprovider = \"totp\"\n")).expect("valid");
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].to_string().contains("CHAP"),
        "{}",
        c.warnings[0]
    );

    let c = parse(&format!(
        "{CLIENT}{policy}auth_methods = [\"pap\"]\n[mfa]\nprovider = \"totp\"\n"
    ))
    .expect("valid");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    // A one-time code cannot travel with MS-CHAP: a code policy that names it is refused; with
    // a push it is fine.
    for m in ["mschap", "mschapv2"] {
        let e = err(&format!(
            "{CLIENT}{policy}auth_methods = [\"pap\", \"{m}\"]\n[mfa]\nprovider = \"totp\"\n"
        ));
        assert!(
            e.starts_with("test.toml:5: ") && e.contains(&format!("allows {m}")),
            "{e}"
        );
        parse(&format!(
            "{CLIENT}{policy}auth_methods = [\"{m}\"]\n[mfa]\nprovider = \"rest_push\"\n[mfa.rest_push]\nurl = \"http://127.0.0.1:9/push\"\n"
        ))
        .expect("push serves MS-CHAP");
    }
}

#[test]
fn mfa_privacyidea_section_is_checked() {
    let pi = |body: &str| format!("{CLIENT}[mfa]\nprovider = \"privacyidea\"\n{body}");
    let c = parse(&pi(
        "on_unreachable = \"accept\"\n[mfa.privacyidea]\nurl = \"https://pi.example.org/\"\nrealm = \"r\"\n",
    ))
    .expect("valid");
    let m = c.mfa.expect("[mfa]");
    assert!(m.accept_unreachable);
    match m.provider {
        crate::backend::mfa::Provider::PrivacyIdea(p) => {
            assert_eq!(p.url, "https://pi.example.org");
            assert_eq!(p.realm, "r");
            assert_eq!(p.timeout, Duration::from_secs(5));
        }
        other => panic!("{other:?}"),
    }
    let e = err(&pi(""));
    assert!(
        e.starts_with("test.toml:6: ") && e.contains("[mfa.privacyidea]"),
        "{e}"
    );
    let e = err(&pi("[mfa.privacyidea]\nurl = \"http://pi.example.org\"\n"));
    assert!(e.starts_with("test.toml:8: ") && e.contains("https"), "{e}");
    let e = err(&pi(
        "[mfa.privacyidea]\nurl = \"http://127.0.0.1:5001\"\nuser = \"x\"\n",
    ));
    assert!(e.starts_with("test.toml:9: ") && e.contains("user"), "{e}");
    let e = err(&pi(
        "on_unreachable = \"maybe\"\n[mfa.privacyidea]\nurl = \"http://127.0.0.1:5001\"\n",
    ));
    assert!(e.starts_with("test.toml:7: "), "{e}");
}

#[test]
fn mfa_rest_push_section_is_checked() {
    let push = |body: &str| format!("{CLIENT}[mfa]\nprovider = \"rest_push\"\n{body}");
    let c = parse(&push(
        "[mfa.rest_push]\nurl = \"https://push.example.org/push\"\n",
    ))
    .expect("valid");
    match c.mfa.expect("[mfa]").provider {
        crate::backend::mfa::Provider::RestPush(p) => {
            assert_eq!(p.wait, Duration::from_secs(60), "default wait");
            assert_eq!(
                p.poll_interval,
                Duration::from_secs(1),
                "default poll interval"
            );
        }
        other => panic!("{other:?}"),
    }
    let e = err(&push(""));
    assert!(
        e.starts_with("test.toml:6: ") && e.contains("[mfa.rest_push]"),
        "{e}"
    );
    let e = err(&push(
        "[mfa.rest_push]\nurl = \"http://push.example.org\"\n",
    ));
    assert!(e.starts_with("test.toml:8: ") && e.contains("https"), "{e}");
    let e = err(&push(
        "[mfa.rest_push]\nurl = \"http://127.0.0.1:1\"\nwait = \"1h\"\n",
    ));
    assert!(e.starts_with("test.toml:9: "), "{e}");
    let e = err(&push(
        "[mfa.rest_push]\nurl = \"http://127.0.0.1:1\"\npoll_interval = \"10ms\"\n",
    ));
    assert!(
        e.starts_with("test.toml:9: ") && e.contains("poll_interval"),
        "{e}"
    );
    // Push works with CHAP: no warning for an MFA policy matching CHAP.
    let c = parse(&format!(
        "{CLIENT}[[policies]]\nname = \"vpn\"\nmfa = true\n[mfa]\nprovider = \"rest_push\"\n[mfa.rest_push]\nurl = \"http://127.0.0.1:1\"\n"
    ))
    .expect("valid");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn mfa_rest_push_mapping_is_checked() {
    use crate::backend::mfa::config::StatusValue;
    let push = |body: &str| {
        format!(
            "{CLIENT}[mfa]\nprovider = \"rest_push\"\n[mfa.rest_push]\nurl = \"https://mfa.example.org/api/\"\n{body}"
        )
    };
    let rest = |body: &str| match parse(&push(body))
        .expect("valid")
        .mfa
        .expect("[mfa]")
        .provider
    {
        crate::backend::mfa::Provider::RestPush(p) => p,
        other => panic!("{other:?}"),
    };
    // Defaults: the original protocol.
    let p = rest("");
    assert_eq!(
        (p.user_field.as_str(), p.client_field.as_str()),
        ("user", "client")
    );
    assert_eq!(p.id_pointer, "/id");
    assert_eq!(p.decision_pointer, "/approved");
    assert_eq!(p.status_pointer, "/status");
    assert_eq!(p.status_url, "https://mfa.example.org/api/{id}");
    assert_eq!(p.approved, vec![StatusValue::Text("approved".into())]);
    assert_eq!(p.denied, vec![StatusValue::Text("denied".into())]);
    assert_eq!(p.pending, vec![StatusValue::Text("pending".into())]);
    assert_eq!(p.long_poll, None);
    assert!(p.extra.is_empty() && p.headers.is_empty());

    let p = rest(
        "user_field = \"upn\"\nclient_field = \"nas\"\nextra = { app = \"vpn\", version = 2 }\n\
         headers = { Authorization = \"Bearer s3cr3t-token\" }\nid_pointer = \"/data/requestId\"\n\
         status_url = \"{url}/requests/{id}?full=1\"\nstatus_pointer = \"/data/state\"\n\
         approved = [\"Approved\", true]\ndenied = [\"Denied\", false]\npending = [\"Pending\"]\n\
         long_poll = true\n",
    );
    assert_eq!(
        (p.user_field.as_str(), p.client_field.as_str()),
        ("upn", "nas")
    );
    assert_eq!(
        p.extra,
        vec![
            ("app".to_string(), serde_json::json!("vpn")),
            ("version".to_string(), serde_json::json!(2))
        ]
    );
    assert_eq!(
        p.status_url,
        "https://mfa.example.org/api/requests/{id}?full=1"
    );
    assert_eq!(
        p.approved,
        vec![
            StatusValue::Text("Approved".into()),
            StatusValue::Bool(true)
        ]
    );
    assert_eq!(
        p.long_poll,
        Some(Duration::from_secs(30)),
        "default long-poll timeout"
    );
    assert_eq!(p.headers[0].1.expose(), "Bearer s3cr3t-token");
    assert!(
        !format!("{p:?}").contains("s3cr3t"),
        "header value in Debug: {p:?}"
    );

    // Each mistake names its line (line 9 is the first after url).
    for (body, line, says) in [
        ("id_pointer = \"data.id\"\n", 9, "JSON pointer"),
        ("status_pointer = \"/a~2b\"\n", 9, "JSON pointer"),
        ("approved = []\n", 9, "must not be empty"),
        ("denied = [1]\n", 9, "strings or booleans"),
        (
            "approved = [\"ok\"]\npending = [\"wait\", \"ok\"]\n",
            10,
            "both approved and pending",
        ),
        (
            "denied = [false]\npending = [false]\n",
            10,
            "both denied and pending",
        ),
        (
            "wait = \"5s\"\napproved = [\"denied\"]\n",
            10,
            "both approved and denied",
        ),
        ("status_url = \"{url}/status\"\n", 9, "{id}"),
        ("status_url = \"http://mfa.example.org/{id}\"\n", 9, "https"),
        ("user_field = \"\"\n", 9, "user_field"),
        ("client_field = \"user\"\n", 9, "differ"),
        ("wait = \"5s\"\nuser_field = \"client\"\n", 10, "differ"),
        ("extra = { user = \"x\" }\n", 9, "overwrite"),
        ("extra = { a = [1] }\n", 9, "string, number or boolean"),
        ("headers = { \"Bad Name\" = \"x\" }\n", 9, "header"),
        ("headers = { Host = \"x\" }\n", 9, "header"),
        ("headers = { Authorization = \"a\\nb\" }\n", 9, "printable"),
        ("long_poll_timeout = \"500ms\"\n", 9, "long_poll_timeout"),
    ] {
        let e = err(&push(body));
        assert!(
            e.starts_with(&format!("test.toml:{line}: ")) && e.contains(says),
            "{body}: {e}"
        );
        assert!(
            !e.contains("\"x\"") || !body.contains("headers"),
            "header value echoed: {e}"
        );
    }
}

#[test]
fn mfa_duo_section_is_checked() {
    let duo = |body: &str| format!("{CLIENT}[mfa]\nprovider = \"duo\"\n{body}");
    let keys = "integration_key = \"DIXXXXXXXXXXXXXXXXXX\"\nsecret_key = \"s3cr3t-key\"\n";
    let c = parse(&duo(&format!(
        "[mfa.duo]\napi_host = \"API-abc.duosecurity.com\"\n{keys}"
    )))
    .expect("valid");
    match c.mfa.expect("[mfa]").provider {
        crate::backend::mfa::Provider::Duo(d) => {
            assert_eq!(d.base, "https://API-abc.duosecurity.com");
            assert_eq!(d.host, "api-abc.duosecurity.com", "signed lowercase");
            assert_eq!(d.factor, crate::backend::mfa::config::DuoFactor::Push);
            assert_eq!(d.wait, Duration::from_secs(60), "default wait");
            assert_eq!(d.timeout, Duration::from_secs(10), "default timeout");
            let shown = format!("{d:?}");
            assert!(!shown.contains("s3cr3t"), "secret redacted: {shown}");
        }
        other => panic!("{other:?}"),
    }
    let e = err(&duo(""));
    assert!(
        e.starts_with("test.toml:6: ") && e.contains("[mfa.duo]"),
        "{e}"
    );
    // http:// only on loopback.
    let e = err(&duo(&format!(
        "[mfa.duo]\napi_host = \"http://api-abc.duosecurity.com\"\n{keys}"
    )));
    assert!(e.starts_with("test.toml:8: ") && e.contains("https"), "{e}");
    let e = err(&duo(&format!(
        "[mfa.duo]\napi_host = \"api-abc.duosecurity.com/auth\"\n{keys}"
    )));
    assert!(
        e.starts_with("test.toml:8: ") && e.contains("bare host"),
        "{e}"
    );
    let e = err(&duo(
        "[mfa.duo]\napi_host = \"api-abc.duosecurity.com\"\nintegration_key = \"DI\"\nsecret_key = \"\"\n",
    ));
    assert!(
        e.starts_with("test.toml:10: ") && e.contains("secret_key"),
        "{e}"
    );
    let e = err(&duo(&format!(
        "[mfa.duo]\napi_host = \"http://127.0.0.1:1\"\n{keys}factor = \"sms\"\n"
    )));
    assert!(
        e.starts_with("test.toml:11: ") && e.contains("factor"),
        "{e}"
    );
    let e = err(&duo(&format!(
        "[mfa.duo]\napi_host = \"http://127.0.0.1:1\"\n{keys}wait = \"1h\"\n"
    )));
    assert!(e.starts_with("test.toml:11: ") && e.contains("wait"), "{e}");
    let e = err(&format!(
        "{CLIENT}[mfa]\nprovider = \"totp\"\n[mfa.duo]\napi_host = \"http://127.0.0.1:1\"\n{keys}"
    ));
    assert!(
        e.starts_with("test.toml:6: ") && e.contains("[mfa.duo]"),
        "{e}"
    );
    // Push works with CHAP (no warning); passcode cannot (warning).
    let policy = "[[policies]]\nname = \"vpn\"\nmfa = true\n";
    let c = parse(&format!(
        "{CLIENT}{policy}[mfa]\nprovider = \"duo\"\n[mfa.duo]\napi_host = \"http://127.0.0.1:1\"\n{keys}"
    ))
    .expect("valid");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c = parse(&format!(
        "{CLIENT}{policy}[mfa]\nprovider = \"duo\"\n[mfa.duo]\napi_host = \"http://127.0.0.1:1\"\n{keys}factor = \"passcode\"\n"
    ))
    .expect("valid");
    assert!(
        c.warnings.iter().any(|w| w.to_string().contains("CHAP")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn combined_mfa_modes_and_mfa_only_users_are_checked_with_their_line() {
    let refused = [
        (
            "[[policies]]\nname = \"p\"\nmfa = true\nmfa_mode = \"password_code\"\n\
             [mfa]\nprovider = \"rest_push\"\n[mfa.rest_push]\nurl = \"http://127.0.0.1:9/push\"\n",
            "t.toml:4: ",
            "cannot work with a push provider",
        ),
        (
            "[[policies]]\nname = \"p\"\nmfa = true\nmfa_mode = \"appended_code\"\nmfa_code_digits = 8\n\
             [mfa]\nprovider = \"totp\"\n",
            "t.toml:4: ",
            "must be 6",
        ),
        (
            "[[users]]\nname = \"a\"\npassword = \"x\"\n[[users]]\nname = \"b\"\ngroups = [\"g\"]\n",
            "t.toml:4: ",
            "needs password, password_hash or nt_hash (or, for a directory user's second factor only, totp_secret)",
        ),
        (
            "[[users]]\nname = \"b\"\ntotp_secret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\ngroups = [\"g\"]\n",
            "t.toml:1: ",
            "MFA-only entry",
        ),
    ];
    for (text, at, what) in refused {
        let e = Config::from_str(text, Path::new("t.toml"), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(at) && e.contains(what), "{e}");
    }
    // Accepted: an MFA-only entry, and a combined mode with privacyIDEA and any digits.
    let c = Config::from_str(
        "[[users]]\nname = \"alice@example.org\"\ntotp_secret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n\
         [[policies]]\nname = \"p\"\nmfa = true\nauth_methods = [\"pap\"]\nmfa_mode = \"appended_code\"\nmfa_code_digits = 8\n\
         [mfa]\nprovider = \"privacyidea\"\n[mfa.privacyidea]\nurl = \"http://127.0.0.1:9\"\n",
        Path::new("t.toml"),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.users[0].password.is_none());
    assert_eq!(
        c.policies[0].mfa_mode,
        crate::policy::MfaMode::AppendedCode(8)
    );
}

#[test]
fn a_policy_whose_read_mode_is_shadowed_is_warned_about() {
    let c = parse(&format!(
        "{CLIENT}[[policies]]\nname = \"staff\"\ngroups = [\"staff\"]\nauth_methods = [\"pap\"]\nmfa = true\nmfa_mode = \"password_code\"\n\
         [[policies]]\nname = \"vpn\"\nclients = [\"lo\"]\nmfa = true\nauth_methods = [\"pap\"]\nmfa_mode = \"password_code\"\n\
         [[policies]]\nname = \"others\"\n\
         [mfa]\nprovider = \"totp\"\n"
    ))
    .expect("valid");
    let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("test.toml:17: ")
            && w[0].contains("\"others\"")
            && w[0].contains("mfa_mode_mismatch"),
        "{w:?}"
    );
}

#[test]
fn mfa_only_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mfa-only.toml");
    let c = Config::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.policies[0].primary_by_nas);
    assert_eq!(c.clients[0].secret.expose(), "testing123");
    crate::dataplane::runtime::Runtime::build(&c).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn primary_nas_is_refused_unless_it_names_clients_and_requires_the_second_factor() {
    let mfa = "\n[mfa]\nprovider = \"totp\"\n";
    let policy = |extra: &str| {
        format!("{CLIENT}\n[[policies]]\nname = \"gw\"\n{extra}primary = \"nas\"\nmfa = true\n")
    };
    // (body, line of the error, what it says)
    for (body, line, says) in [
        (policy("") + mfa, 8, "must name the clients it trusts"),
        (
            format!("{CLIENT}\n[[policies]]\nname = \"gw\"\nclients = [\"lo\"]\nprimary = \"nas\"\n{mfa}"),
            9,
            "needs mfa = true",
        ),
        (
            policy("clients = [\"lo\"]\nmfa_mode = \"password_code\"\n") + mfa,
            10,
            "leave mfa_mode out",
        ),
        (
            policy("clients = [\"lo\"]\ngroups = [\"staff\"]\n") + mfa,
            10,
            "cannot match groups",
        ),
        (
            policy("clients = [\"lo\"]\nprimary_typo = 1\n") + mfa,
            9,
            "unknown field",
        ),
        (policy("clients = [\"lo\"]\n"), 9, "needs an [mfa] section"),
        (
            policy("clients = [\"lo\"]\n") + mfa + "exempt_clients = [\"lo\"]\n",
            9,
            "exempts from the second factor",
        ),
        (
            policy("clients = [\"lo\"]\n").replace("\"nas\"", "\"gateway\"") + mfa,
            9,
            "is not \"radshard\" or \"nas\"",
        ),
    ] {
        let e = err(&body);
        assert!(e.starts_with(&format!("test.toml:{line}: ")), "{e}\n{body}");
        assert!(e.contains(says), "{e}");
    }
    let ok = parse(&(policy("clients = [\"lo\"]\n") + mfa)).expect("valid");
    assert!(ok.policies[0].primary_by_nas);
    assert_eq!(
        crate::config::read_mode(&ok.policies[0]),
        crate::policy::MfaMode::CodeOnly
    );
}

#[test]
fn a_code_policy_over_tunnels_without_gtc_warns() {
    let dir = tempfile::tempdir().expect("dir");
    crate::tls::pki::write_test_pki(dir.path(), Default::default(), false).expect("pki");
    let d = dir.path().display();
    let text = |inner: &str| {
        format!(
            "[[policies]]\nname = \"wifi\"\nauth_methods = [\"peap\"]\nmfa = true\n\
             [mfa]\nprovider = \"totp\"\n\
             [eap]\n{inner}\n[eap.tls]\ncertificate = \"{d}/server.pem\"\nprivate_key = \"{d}/server.key\"\n"
        )
    };
    let gtc_warning = |c: &Config| {
        c.warnings
            .iter()
            .any(|w| w.to_string().contains("inner_methods offers no \"gtc\""))
    };
    let c = parse(&text("inner_methods = [\"mschapv2\"]")).expect("valid");
    assert!(gtc_warning(&c), "{:?}", c.warnings);
    assert!(
        c.warnings[0].to_string().starts_with("test.toml:1: "),
        "{:?}",
        c.warnings
    );
    let c = parse(&text("")).expect("valid");
    assert!(!gtc_warning(&c), "{:?}", c.warnings);
}
