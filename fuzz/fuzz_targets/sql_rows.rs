//! Untrusted rows of FreeRADIUS's SQL tables (whoever fills the database) → the rlm_sql
//! evaluation and the decision after it: operators, quoted values, attribute values of every
//! dictionary type, groups and Fall-Through, list moves, Expiration and Auth-Type, every
//! fast known-good password form against an input-chosen password. Must never panic.
//!
//! Input: lines of `attribute \t op \t value`; a line `#check`, `#reply` or `#group NAME`
//! starts a list (rows before any go to the user's check list); `#pw TEXT` is the password.

#![no_main]

use libfuzzer_sys::fuzz_target;
use radshard::backend::sql::authorize::{authorize, Decided};
use radshard::backend::sql::eval::{evaluate, GroupRows, RequestView, UserRows};
use radshard::backend::sql::rows::RawRow;
use radshard::dict::{AttrKey, Dictionary};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut rows = UserRows::default();
    let mut target = 0usize; // 0 check, 1 reply, 2.. group check/reply
    let mut password = "pw".to_string();
    for line in text.lines().take(512) {
        if let Some(name) = line.strip_prefix("#group ") {
            rows.groups.push(GroupRows {
                name: name.to_string(),
                ..GroupRows::default()
            });
            target = 2;
            continue;
        }
        match line {
            "#check" => target = if rows.groups.is_empty() { 0 } else { 2 },
            "#reply" => target = if rows.groups.is_empty() { 1 } else { 3 },
            _ if line.starts_with("#pw ") => password = line[4..].to_string(),
            _ => {
                let mut f = line.splitn(3, '\t');
                let row = RawRow {
                    attribute: f.next().unwrap_or_default().to_string(),
                    op: f.next().map(str::to_string),
                    value: f.next().map(str::to_string),
                };
                let list = match (target, rows.groups.last_mut()) {
                    (0, _) | (2.., None) => &mut rows.check,
                    (1, _) => &mut rows.reply,
                    (2, Some(g)) => &mut g.check,
                    (_, Some(g)) => &mut g.reply,
                };
                list.push(row);
            }
        }
    }
    let dict = Dictionary::builtin();
    let view = RequestView {
        attrs: vec![
            (AttrKey::standard(1), b"alice".as_slice()),
            (AttrKey::standard(2), password.as_bytes()),
            (AttrKey::standard(4), &[10, 0, 0, 1]),
            (AttrKey::standard(30), b"00-11-22-33-44-55:ssid"),
            (AttrKey::new(311, 11), &[1; 16]),
        ],
    };
    let Ok(evaluated) = evaluate(&rows, &view, &dict, 1_900_000_000) else {
        return;
    };
    let a = authorize(evaluated, 1_900_000_000);
    if let Decided::Check(p) = a.decided {
        for k in [&p.pap, &p.cleartext, &p.nt].into_iter().flatten() {
            // Crypt's cost comes from the row: bounded in radshard, still slow to fuzz.
            if !k.is_slow() {
                let _ = std::hint::black_box(k.verify(password.as_bytes()));
            }
        }
    }
    std::hint::black_box(a.reply);
});
