//! LDAP search filters from templates (RFC 4515) and realm handling of RADIUS user names.

/// Escapes `value` for use inside an RFC 4515 filter: `*`, `(`, `)`, `\` and NUL become `\XX`,
/// so `alice)(uid=*` stays one assertion value and cannot change the filter's structure.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Substitutes every `{user}` in `template` with the escaped `user`.
pub fn user_filter(template: &str, user: &str) -> String {
    template.replace("{user}", &escape_filter_value(user))
}

/// What to do with a realm in the User-Name (`user@realm`, `DOMAIN\user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RealmMode {
    /// Search the directory with the bare user name.
    #[default]
    Strip,
    /// Search with the name exactly as the NAS sent it.
    Keep,
}

/// A RADIUS user name split into user and realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName<'a> {
    pub user: &'a str,
    pub realm: Option<&'a str>,
}

/// Splits `DOMAIN\user` or `user@realm` (the last `@`, as in NPS). Names without either, or
/// with an empty side, are left whole.
pub fn split_realm(name: &str) -> UserName<'_> {
    if let Some((domain, user)) = name.split_once('\\') {
        if !domain.is_empty() && !user.is_empty() {
            return UserName {
                user,
                realm: Some(domain),
            };
        }
    }
    if let Some((user, realm)) = name.rsplit_once('@') {
        if !user.is_empty() && !realm.is_empty() {
            return UserName {
                user,
                realm: Some(realm),
            };
        }
    }
    UserName {
        user: name,
        realm: None,
    }
}

/// The name to look up in the directory for `name` under `mode`, or `None` when the realm is
/// not one of `realms` (an empty list accepts any realm).
pub fn directory_name<'a>(name: &'a str, mode: RealmMode, realms: &[String]) -> Option<&'a str> {
    let parsed = split_realm(name);
    if let Some(realm) = parsed.realm {
        if !realms.is_empty() && !realms.iter().any(|r| r.eq_ignore_ascii_case(realm)) {
            return None;
        }
    }
    Some(match mode {
        RealmMode::Strip => parsed.user,
        RealmMode::Keep => name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        let table = [
            ("alice", "alice"),
            ("alice)(uid=*", "alice\\29\\28uid=\\2a"),
            ("*", "\\2a"),
            ("a\\b", "a\\5cb"),
            ("nul\0", "nul\\00"),
            ("jürgen", "jürgen"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(escape_filter_value(input), want, "{input:?}");
        }
    }

    #[test]
    fn injection_cannot_change_the_filter() {
        let f = user_filter("(&(objectClass=inetOrgPerson)(uid={user}))", "alice)(uid=*");
        assert_eq!(
            f,
            "(&(objectClass=inetOrgPerson)(uid=alice\\29\\28uid=\\2a))"
        );
        // Parentheses stay balanced and the value adds none.
        assert_eq!(f.matches('(').count(), f.matches(')').count());
        assert_eq!(
            f.matches('(').count(),
            3,
            "no parenthesis added by the value"
        );
    }

    #[test]
    fn realms_split_and_strip() {
        let table: &[(&str, RealmMode, &[&str], Option<&str>)] = &[
            ("alice", RealmMode::Strip, &[], Some("alice")),
            ("alice@example.org", RealmMode::Strip, &[], Some("alice")),
            ("EXAMPLE\\alice", RealmMode::Strip, &[], Some("alice")),
            (
                "alice@example.org",
                RealmMode::Keep,
                &[],
                Some("alice@example.org"),
            ),
            ("a@b@example.org", RealmMode::Strip, &[], Some("a@b")),
            ("alice@", RealmMode::Strip, &[], Some("alice@")),
            ("@example.org", RealmMode::Strip, &[], Some("@example.org")),
            (
                "alice@EXAMPLE.org",
                RealmMode::Strip,
                &["example.org"],
                Some("alice"),
            ),
            ("alice@other.org", RealmMode::Strip, &["example.org"], None),
            ("OTHER\\alice", RealmMode::Keep, &["EXAMPLE"], None),
            ("alice", RealmMode::Strip, &["example.org"], Some("alice")),
        ];
        for (name, mode, realms, want) in table {
            let realms: Vec<String> = realms.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                directory_name(name, *mode, &realms),
                *want,
                "{name:?} {mode:?}"
            );
        }
    }
}
